// AVX-512F kernels. The only file compiled with -mavx512f.
#include <immintrin.h>

#include "core/internal/gather_kernels.h"
#include "core/internal/gather_simd_impl.h"

namespace embedserve::internal {
namespace {

struct Avx512 {
  using R = __m512;
  static constexpr int64_t kLanes = 16;
  static R Zero() { return _mm512_setzero_ps(); }
  static R Set1(float x) { return _mm512_set1_ps(x); }
  static R Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, R v) { _mm512_storeu_ps(p, v); }
  static void StoreN(float* p, R v, int64_t n) {
    _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
  }
  static R Add(R a, R b) { return _mm512_add_ps(a, b); }
  static R Fma(R a, R b, R c) { return _mm512_fmadd_ps(a, b, c); }
  // Same tie/NaN behaviour as std::max(acc, row): row only if row > acc.
  static R Max(R acc, R row) { return _mm512_max_ps(row, acc); }
  static R Div(R a, R b) { return _mm512_div_ps(a, b); }
  static R Mul(R a, R b) { return _mm512_mul_ps(a, b); }
  static R LoadF16(const uint8_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static R LoadBF16(const uint8_t* p) {
    const __m512i w =
        _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
  }
  static R LoadU8(const uint8_t* p) {
    return _mm512_cvtepi32_ps(
        _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
};

}  // namespace

int64_t GatherAvx512(const RowView& t, const int64_t* ids, int64_t n, float* out) {
  return SimdGather<Avx512>(t, ids, n, out);
}

int64_t PooledAvx512(const RowView& t, const BagArgs& a, float* out) {
  return SimdPooled<Avx512>(t, a, out);
}

int64_t CompactGatherAvx512(const CompactRowView& t, const int64_t* ids, int64_t n, float* out) {
  return SimdCompactGather<Avx512>(t, ids, n, out);
}

void ToHalfAvx512(const float* in, int64_t n, uint16_t* out) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i),
                        _mm512_cvtps_ph(_mm512_loadu_ps(in + i), _MM_FROUND_TO_NEAREST_INT));
  }
  if (i < n) {  // the last 1-15, masked
    const __mmask16 mask = static_cast<__mmask16>((1u << (n - i)) - 1);
    const __m256i h =
        _mm512_cvtps_ph(_mm512_maskz_loadu_ps(mask, in + i), _MM_FROUND_TO_NEAREST_INT);
    alignas(32) uint16_t halves[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(halves), h);
    for (int64_t j = i; j < n; ++j) out[j] = halves[j - i];
  }
}

int64_t CompactPooledAvx512(const CompactRowView& t, const BagArgs& a, float* out) {
  return SimdCompactPooled<Avx512>(t, a, out);
}

}  // namespace embedserve::internal
