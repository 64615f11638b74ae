// Generator 2, AVX2: 8 Philox blocks a step. The only initializer file
// compiled with -mavx2 (and -ffp-contract=off: no FMA may be formed, so
// every lane rounds as the scalar reference).
#include <immintrin.h>

#include "core/internal/init_fill_simd_impl.h"

namespace embedserve::internal {
namespace {

struct Avx2 {
  using I = __m256i;
  using F = __m256;
  using M = __m256;  // all-ones lanes where true
  static constexpr int64_t kLanes = 8;
  static constexpr int kGroup = 1;  // InitFill::StepGroup

  static I SetI(uint32_t x) { return _mm256_set1_epi32(static_cast<int>(x)); }
  static F SetF(float x) { return _mm256_set1_ps(x); }
  static I LoadI(const uint32_t* p) { return _mm256_load_si256(reinterpret_cast<const I*>(p)); }
  static I AsI(F x) { return _mm256_castps_si256(x); }
  static F AsF(I x) { return _mm256_castsi256_ps(x); }
  static I AddI(I a, I b) { return _mm256_add_epi32(a, b); }
  static I SubI(I a, I b) { return _mm256_sub_epi32(a, b); }
  static I AndI(I a, I b) { return _mm256_and_si256(a, b); }
  static I OrI(I a, I b) { return _mm256_or_si256(a, b); }
  static I XorI(I a, I b) { return _mm256_xor_si256(a, b); }
  template <int n>
  static I Srl(I a) {
    return _mm256_srli_epi32(a, n);
  }
  template <int n>
  static I Sll(I a) {
    return _mm256_slli_epi32(a, n);
  }
  template <int n>
  static I Sra(I a) {
    return _mm256_srai_epi32(a, n);
  }
  // Lanes whose bit 31 is set (blendv reads no other bit).
  static M SignMask(I a) { return _mm256_castsi256_ps(a); }
  static M GtI(I a, I b) { return _mm256_castsi256_ps(_mm256_cmpgt_epi32(a, b)); }
  static I SelI(M m, I t, I f) {
    return _mm256_castps_si256(
        _mm256_blendv_ps(_mm256_castsi256_ps(f), _mm256_castsi256_ps(t), m));
  }
  static F SelF(M m, F t, F f) { return _mm256_blendv_ps(f, t, m); }
  static M LtF(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
  static M GeF(F a, F b) { return _mm256_cmp_ps(a, b, _CMP_GE_OQ); }
  static F Add(F a, F b) { return _mm256_add_ps(a, b); }
  static F Sub(F a, F b) { return _mm256_sub_ps(a, b); }
  static F Mul(F a, F b) { return _mm256_mul_ps(a, b); }
  static F Sqrt(F a) { return _mm256_sqrt_ps(a); }
  static F CvtI32(I a) { return _mm256_cvtepi32_ps(a); }
  // uint32 -> float rounded to nearest: both halves convert exactly, and
  // hi * 2^16 + lo rounds once, as the scalar conversion does.
  static F CvtU32(I a) {
    const F hi = _mm256_cvtepi32_ps(_mm256_srli_epi32(a, 16));
    const F lo = _mm256_cvtepi32_ps(_mm256_and_si256(a, _mm256_set1_epi32(0xFFFF)));
    return _mm256_add_ps(_mm256_mul_ps(hi, _mm256_set1_ps(65536.0f)), lo);
  }
  // 32 x 32 -> 64-bit products of every lane with m: even lanes directly,
  // odd lanes shifted down.
  // Philox on 64-bit lanes (init_fill_simd_impl.h's Rounds).
  static I MulLow32(I a, I m) { return _mm256_mul_epu32(a, m); }
  static I HighHalf(I a) { return _mm256_srli_epi64(a, 32); }
  static I Merge(I e, I o) { return _mm256_blend_epi32(e, _mm256_slli_epi64(o, 32), 0xAA); }
  static I Xor3(I a, I b, I c) { return _mm256_xor_si256(_mm256_xor_si256(a, b), c); }
  static void MulHiLo(I a, I m, I* hi, I* lo) {
    const I even = _mm256_mul_epu32(a, m);
    const I odd = _mm256_mul_epu32(_mm256_srli_epi64(a, 32), m);
    *lo = _mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA);
    *hi = _mm256_blend_epi32(_mm256_srli_epi64(even, 32), odd, 0xAA);
  }
  // float(a + width * double(u)) per lane.
  static F AffineInDouble(F u, double a, double width) {
    const __m256d va = _mm256_set1_pd(a), vw = _mm256_set1_pd(width);
    const __m256d lo = _mm256_add_pd(_mm256_mul_pd(vw, _mm256_cvtps_pd(_mm256_castps256_ps128(u))), va);
    const __m256d hi = _mm256_add_pd(_mm256_mul_pd(vw, _mm256_cvtps_pd(_mm256_extractf128_ps(u, 1))), va);
    return _mm256_set_m128(_mm256_cvtpd_ps(hi), _mm256_cvtpd_ps(lo));
  }
  // Lane 4c + p of v[k] is value k of block 2p + c: in-chunk unpacks put
  // blocks 2p, 2p + 1 in t_p.
  static void Store4(float* out, const F* v) {
    const F ab_lo = _mm256_unpacklo_ps(v[0], v[1]), ab_hi = _mm256_unpackhi_ps(v[0], v[1]);
    const F cd_lo = _mm256_unpacklo_ps(v[2], v[3]), cd_hi = _mm256_unpackhi_ps(v[2], v[3]);
    auto lo = [](F x, F y) {
      return _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
    };
    auto hi = [](F x, F y) {
      return _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(x), _mm256_castps_pd(y)));
    };
    _mm256_storeu_ps(out, lo(ab_lo, cd_lo));
    _mm256_storeu_ps(out + 8, hi(ab_lo, cd_lo));
    _mm256_storeu_ps(out + 16, lo(ab_hi, cd_hi));
    _mm256_storeu_ps(out + 24, hi(ab_hi, cd_hi));
  }
};

}  // namespace

void InitFillAvx2(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                  float* out) {
  InitFill<Avx2>::Fill(p, row0, rows, blocks_per_row, out);
}

void InitFillIdsAvx2(const InitParams& p, const uint64_t* rows, int64_t n,
                     int64_t blocks_per_row, float* out) {
  InitFill<Avx2>::FillIds(p, rows, n, blocks_per_row, out);
}

}  // namespace embedserve::internal
