// AVX2 + FMA (+ F16C for half rows) kernels. The only file compiled with
// -mavx2 -mfma -mf16c.
#include <immintrin.h>

#include "core/internal/gather_kernels.h"
#include "core/internal/gather_simd_impl.h"

namespace embedserve::internal {
namespace {

struct Avx2 {
  using R = __m256;
  static constexpr int64_t kLanes = 8;
  static R Zero() { return _mm256_setzero_ps(); }
  static R Set1(float x) { return _mm256_set1_ps(x); }
  static R Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, R v) { _mm256_storeu_ps(p, v); }
  static void StoreN(float* p, R v, int64_t n) {
    const __m256i lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), lanes);
    _mm256_maskstore_ps(p, mask, v);
  }
  static R Add(R a, R b) { return _mm256_add_ps(a, b); }
  static R Fma(R a, R b, R c) { return _mm256_fmadd_ps(a, b, c); }
  // Same tie/NaN behaviour as std::max(acc, row): row only if row > acc.
  static R Max(R acc, R row) { return _mm256_max_ps(row, acc); }
  static R Div(R a, R b) { return _mm256_div_ps(a, b); }
  static R Mul(R a, R b) { return _mm256_mul_ps(a, b); }
  static R LoadF16(const uint8_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static R LoadBF16(const uint8_t* p) {
    const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
  }
  static R LoadU8(const uint8_t* p) {
    return _mm256_cvtepi32_ps(
        _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace

int64_t GatherAvx2(const RowView& t, const int64_t* ids, int64_t n, float* out) {
  return SimdGather<Avx2>(t, ids, n, out);
}

int64_t PooledAvx2(const RowView& t, const BagArgs& a, float* out) {
  return SimdPooled<Avx2>(t, a, out);
}

int64_t CompactGatherAvx2(const CompactRowView& t, const int64_t* ids, int64_t n, float* out) {
  return SimdCompactGather<Avx2>(t, ids, n, out);
}

int64_t CompactPooledAvx2(const CompactRowView& t, const BagArgs& a, float* out) {
  return SimdCompactPooled<Avx2>(t, a, out);
}

void ToHalfAvx2(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  }
  if (i < n) {  // the last 1-7 through a buffer
    alignas(32) float tail[8] = {};
    alignas(16) uint16_t halves[8];
    for (int64_t j = i; j < n; ++j) tail[j - i] = in[j];
    _mm_store_si128(reinterpret_cast<__m128i*>(halves),
                    _mm256_cvtps_ph(_mm256_load_ps(tail), _MM_FROUND_TO_NEAREST_INT));
    for (int64_t j = i; j < n; ++j) out[j] = halves[j - i];
  }
}

}  // namespace embedserve::internal
