// Generator 2, scalar reference: one Philox block at a time, the math of
// core/internal/init_kernels.h written out plainly. The oracle of the SIMD
// levels; compiled with -ffp-contract=off like them (core/CMakeLists.txt).
#include <bit>
#include <cmath>
#include <cstring>

#include "core/internal/init_kernels.h"
#include "core/internal/philox.h"

namespace embedserve::internal {
namespace {

// ln u for u in (0, 1], u normal (Cephes logf).
float LogUnit(float u) {
  const uint32_t bits = std::bit_cast<uint32_t>(u);
  int32_t e = static_cast<int32_t>(bits >> 23) - 126;
  const float m = std::bit_cast<float>((bits & 0x007FFFFFu) | 0x3F000000u);  // [0.5, 1)
  float x;
  if (m < kSqrtHalf) {
    e -= 1;
    x = (m + m) - 1.0f;
  } else {
    x = m - 1.0f;
  }
  const float z = x * x;
  float y = kLogP[0];
  for (int i = 1; i < 9; ++i) y = y * x + kLogP[i];
  y = (y * x) * z;
  const float fe = static_cast<float>(e);
  y = y + fe * kLogQ1;
  y = y - 0.5f * z;
  x = x + y;
  return x + fe * kLogQ2;
}

// sin and cos of 2 pi t / 2^24, t in [0, 2^24): reduced exactly (in
// integers) to the nearest quarter turn q and x in [-pi/4, pi/4].
void SinCosTurns(uint32_t t, float* sin_out, float* cos_out) {
  const uint32_t near = (t + (1u << 21)) >> 22;  // 0..4
  const int32_t r = static_cast<int32_t>(t) - static_cast<int32_t>(near << 22);
  const uint32_t q = near & 3;
  const float x = static_cast<float>(r) * kTurnStep;
  const float z = x * x;
  const float s = (((kSinS[0] * z + kSinS[1]) * z + kSinS[2]) * z) * x + x;
  const float c = ((((kCosC[0] * z + kCosC[1]) * z + kCosC[2]) * z) * z - 0.5f * z) + 1.0f;
  float sn = (q & 1) ? c : s;
  float cs = (q & 1) ? s : c;
  if (q & 2) sn = -sn;
  if ((q + 1) & 2) cs = -cs;
  *sin_out = sn;
  *cos_out = cs;
}

// The four values of one block.
void Block(const InitParams& p, const PhiloxWords& w, float* out) {
  if (p.normal) {
    for (int k = 0; k < 4; k += 2) {
      const float u = static_cast<float>(w[k]) * kTwoPow32Inv + kTwoPow33Inv;
      const float rho = std::sqrt(-2.0f * LogUnit(u));
      float s, c;
      SinCosTurns(w[k + 1] >> 8, &s, &c);
      out[k] = p.std * (rho * c) + p.mean;
      out[k + 1] = p.std * (rho * s) + p.mean;
    }
  } else {
    for (int k = 0; k < 4; ++k) {
      const float u = static_cast<float>(w[k] >> 8) * kTwoPow24Inv;
      const float x = static_cast<float>(p.a + p.width * static_cast<double>(u));
      out[k] = x >= p.below_b ? p.below_b : x;
    }
  }
}

}  // namespace

void InitBlockScalar(const InitParams& p, uint64_t row, uint32_t block, float out[4]) {
  const PhiloxWords ctr = {block, 0, static_cast<uint32_t>(row), static_cast<uint32_t>(row >> 32)};
  Block(p, Philox4x32(ctr, {p.key[0], p.key[1]}), out);
}

void InitFillScalar(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                    float* out) {
  for (int64_t i = 0; i < rows; ++i) {
    for (int64_t b = 0; b < blocks_per_row; ++b) {
      InitBlockScalar(p, row0 + static_cast<uint64_t>(i), static_cast<uint32_t>(b), out);
      out += 4;
    }
  }
}

void InitFillIdsScalar(const InitParams& p, const uint64_t* rows, int64_t n,
                       int64_t blocks_per_row, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t b = 0; b < blocks_per_row; ++b) {
      InitBlockScalar(p, rows[i], static_cast<uint32_t>(b), out);
      out += 4;
    }
  }
}

}  // namespace embedserve::internal
