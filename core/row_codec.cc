#include "core/row_codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace embedserve {
namespace {

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

int64_t CompactRowStride(RowType type, int64_t dim) {
  const int64_t lanes = RoundUp(dim, 16);
  switch (type) {
    case RowType::kFloat32:
      return RoundUp(lanes * 4, 64);
    case RowType::kFloat16:
    case RowType::kBFloat16:
      return RoundUp(lanes * 2, 64);
    // 16-byte rows: at one byte a value, 64-byte padding would waste up to
    // half the row (dim 64: 80 bytes instead of 128).
    case RowType::kInt8Rowwise:
      return RoundUp(8 + lanes, 16);
  }
  return 0;
}

void EncodeRow(RowType type, const float* src, int64_t dim, uint8_t* dst) {
  switch (type) {
    case RowType::kFloat32:
      std::memcpy(dst, src, dim * 4);
      return;
    case RowType::kFloat16:
    case RowType::kBFloat16:
      for (int64_t d = 0; d < dim; ++d) {
        const uint16_t v =
            type == RowType::kFloat16 ? FloatToHalf(src[d]) : FloatToBFloat16(src[d]);
        std::memcpy(dst + 2 * d, &v, 2);
      }
      return;
    case RowType::kInt8Rowwise: {
      // hi - lo of a row spanning +-3e38 overflows float: then the range is
      // taken in double. The scale is capped so that scale * 255 + bias stays
      // finite for every code (values past the top of such a row clamp to
      // it): finite in, finite out, never NaN. Ordinary rows round as before.
      const float lo = *std::min_element(src, src + dim), hi = *std::max_element(src, src + dim);
      constexpr float kMaxScale = std::numeric_limits<float>::max() / 256.0f;
      float scale = 1.0f;
      if (hi > lo) {
        const float range = hi - lo;
        scale = std::isfinite(range)
                    ? std::min(range / 255.0f, kMaxScale)
                    : static_cast<float>(std::min((static_cast<double>(hi) - lo) / 255.0,
                                                  static_cast<double>(kMaxScale)));
      }
      // A denormal range can divide down to 0: keep the scale positive so that
      // (x - lo) / scale is never 0 / 0 (NaN, and UB when cast to a code).
      if (!(scale > 0.0f)) scale = std::numeric_limits<float>::denorm_min();
      std::memcpy(dst, &scale, 4);
      std::memcpy(dst + 4, &lo, 4);
      for (int64_t d = 0; d < dim; ++d) {
        const float q = std::nearbyint((src[d] - lo) / scale);  // inf clamps to 255
        // A non-finite row (an initializer that overflowed, inf - inf) gives
        // NaN here: code 0, never a NaN cast (undefined behaviour).
        dst[8 + d] = q >= 0.0f ? static_cast<uint8_t>(std::min(q, 255.0f)) : 0;
      }
      return;
    }
  }
}

void DecodeRow(RowType type, const uint8_t* src, int64_t dim, float* dst) {
  switch (type) {
    case RowType::kFloat32:
      std::memcpy(dst, src, dim * 4);
      return;
    case RowType::kFloat16:
    case RowType::kBFloat16:
      for (int64_t d = 0; d < dim; ++d) {
        uint16_t v;
        std::memcpy(&v, src + 2 * d, 2);
        dst[d] = type == RowType::kFloat16 ? HalfToFloat(v) : BFloat16ToFloat(v);
      }
      return;
    case RowType::kInt8Rowwise: {
      float scale, bias;
      std::memcpy(&scale, src, 4);
      std::memcpy(&bias, src + 4, 4);
      for (int64_t d = 0; d < dim; ++d) dst[d] = scale * static_cast<float>(src[8 + d]) + bias;
      return;
    }
  }
}

}  // namespace embedserve

namespace embedserve {

int64_t FirstUnencodable(RowType type, const float* src, int64_t dim) {
  for (int64_t d = 0; d < dim; ++d) {
    const float v = src[d];
    bool ok = std::isfinite(v);
    if (ok && type == RowType::kFloat16) {
      ok = std::isfinite(HalfToFloat(FloatToHalf(v)));
    } else if (ok && type == RowType::kBFloat16) {
      ok = std::isfinite(BFloat16ToFloat(FloatToBFloat16(v)));
    }
    if (!ok) return d;
  }
  return -1;
}

}  // namespace embedserve
