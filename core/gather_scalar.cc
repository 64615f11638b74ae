// Portable reference kernels: the fallback and the test oracle for the SIMD
// levels. Kept deliberately simple; the compiler may auto-vectorise them for
// the baseline ISA only (no ISA flags here).
#include <algorithm>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "core/internal/gather_kernels.h"
#include "core/row_codec.h"

namespace embedserve::internal {

void ToHalfScalar(const float* in, int64_t n, uint16_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = FloatToHalf(in[i]);
}

int64_t GatherScalar(const RowView& t, const int64_t* ids, int64_t n, float* out) {
  const int64_t dim = t.dim;
  const int64_t stopped = InPrefetchedBlocks(
      n, kPrefetchDistance, [&](int64_t j) { PrefetchRow(t, ids[j]); },
      [&](int64_t i) {
        if (!IdInRange(t, ids[i])) return false;
        std::memcpy(out + i * dim, t.Row(ids[i]), dim * sizeof(float));
        return true;
      });
  return stopped < n ? stopped : kAllValid;
}

namespace {

// The pooling reference over rows given by get(id) -> const float*.
template <typename GetRow>
int64_t PooledWith(int64_t num_rows, int64_t dim, const BagArgs& a, float* out, GetRow get,
                   const std::function<void(int64_t)>& prefetch) {
  for (int64_t b = 0; b < a.num_bags; ++b) {
    float* o = out + b * dim;
    const bool is_max = a.mode == PoolingMode::kMax;
    std::fill(o, o + dim, is_max ? -std::numeric_limits<float>::infinity() : 0.0f);
    int64_t count = 0;
    for (int64_t i = a.bounds[b]; i < a.bounds[b + 1]; ++i) {
      if (prefetch && i + kPrefetchDistance < a.num_ids) prefetch(a.ids[i + kPrefetchDistance]);
      const int64_t id = a.ids[i];
      if (static_cast<uint64_t>(id) >= static_cast<uint64_t>(num_rows)) return i;
      if (id == a.padding_idx) continue;
      ++count;
      const float* row = get(id);
      if (is_max) {
        for (int64_t d = 0; d < dim; ++d) o[d] = std::max(o[d], row[d]);
      } else {
        const float w = a.weights ? a.weights[i] : 1.0f;
        for (int64_t d = 0; d < dim; ++d) o[d] += w * row[d];
      }
    }
    if (count == 0) {
      std::fill(o, o + dim, 0.0f);
    } else if (a.mode == PoolingMode::kMean) {
      const float c = static_cast<float>(count);
      for (int64_t d = 0; d < dim; ++d) o[d] /= c;
    }
  }
  return kAllValid;
}

}  // namespace

int64_t PooledScalar(const RowView& t, const BagArgs& a, float* out) {
  return PooledWith(
      t.num_rows, t.dim, a, out, [&t](int64_t id) { return t.Row(id); },
      [&t](int64_t id) { PrefetchRow(t, id); });
}

int64_t CompactGatherScalar(const CompactRowView& t, const int64_t* ids, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    if (static_cast<uint64_t>(ids[i]) >= static_cast<uint64_t>(t.num_rows)) return i;
    DecodeRow(t.type, t.Row(ids[i]), t.dim, out + i * t.dim);
  }
  return kAllValid;
}

int64_t CompactPooledScalar(const CompactRowView& t, const BagArgs& a, float* out) {
  std::vector<float> row(t.dim);
  return PooledWith(
      t.num_rows, t.dim, a, out,
      [&](int64_t id) {
        DecodeRow(t.type, t.Row(id), t.dim, row.data());
        return static_cast<const float*>(row.data());
      },
      nullptr);
}

}  // namespace embedserve::internal
