// Generator 2, AVX-512F: 16 Philox blocks a step. The only initializer file
// compiled with -mavx512f (and -ffp-contract=off: no FMA may be formed, so
// every lane rounds as the scalar reference). AVX-512F instructions only, as
// SimdLevel::kAvx512 promises no more.
// GCC 12's _mm512_undefined_epi32 (inside _mm512_srli_epi64 and friends)
// initialises a variable with itself, which -Wuninitialized reports where
// the grouped steps (InitFill::StepGroup) inline it.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>

#include "core/internal/init_fill_simd_impl.h"

namespace embedserve::internal {
namespace {

struct Avx512 {
  using I = __m512i;
  using F = __m512;
  using M = __mmask16;
  static constexpr int64_t kLanes = 16;
  static constexpr int kGroup = 2;  // InitFill::StepGroup

  static I SetI(uint32_t x) { return _mm512_set1_epi32(static_cast<int>(x)); }
  static F SetF(float x) { return _mm512_set1_ps(x); }
  static I LoadI(const uint32_t* p) { return _mm512_load_si512(p); }
  static I AsI(F x) { return _mm512_castps_si512(x); }
  static F AsF(I x) { return _mm512_castsi512_ps(x); }
  static I AddI(I a, I b) { return _mm512_add_epi32(a, b); }
  static I SubI(I a, I b) { return _mm512_sub_epi32(a, b); }
  static I AndI(I a, I b) { return _mm512_and_si512(a, b); }
  static I OrI(I a, I b) { return _mm512_or_si512(a, b); }
  static I XorI(I a, I b) { return _mm512_xor_si512(a, b); }
  template <int n>
  static I Srl(I a) {
    return _mm512_srli_epi32(a, n);
  }
  template <int n>
  static I Sll(I a) {
    return _mm512_slli_epi32(a, n);
  }
  template <int n>
  static I Sra(I a) {
    return _mm512_srai_epi32(a, n);
  }
  // Lanes whose bit 31 is set: negative as int32.
  static M SignMask(I a) { return _mm512_cmplt_epi32_mask(a, _mm512_setzero_si512()); }
  static M GtI(I a, I b) { return _mm512_cmpgt_epi32_mask(a, b); }
  static I SelI(M m, I t, I f) { return _mm512_mask_blend_epi32(m, f, t); }
  static F SelF(M m, F t, F f) { return _mm512_mask_blend_ps(m, f, t); }
  static M LtF(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_LT_OQ); }
  static M GeF(F a, F b) { return _mm512_cmp_ps_mask(a, b, _CMP_GE_OQ); }
  static F Add(F a, F b) { return _mm512_add_ps(a, b); }
  static F Sub(F a, F b) { return _mm512_sub_ps(a, b); }
  static F Mul(F a, F b) { return _mm512_mul_ps(a, b); }
  static F Sqrt(F a) { return _mm512_sqrt_ps(a); }
  static F CvtI32(I a) { return _mm512_cvtepi32_ps(a); }
  static F CvtU32(I a) { return _mm512_cvtepu32_ps(a); }  // rounded to nearest
  // 32 x 32 -> 64-bit products of every lane with m: even lanes directly,
  // odd lanes shifted down.
  // Philox on 64-bit lanes (init_fill_simd_impl.h's Rounds): the 64-bit
  // product of each lane's low 32 bits, a 64-bit lane's high half moved
  // down / up, the even lanes of e with the odd of o's low halves, and a
  // three-way xor (vpternlogd).
  static I MulLow32(I a, I m) { return _mm512_mul_epu32(a, m); }
  static I HighHalf(I a) { return _mm512_srli_epi64(a, 32); }
  static I Merge(I e, I o) { return _mm512_mask_blend_epi32(0xAAAA, e, _mm512_slli_epi64(o, 32)); }
  static I Xor3(I a, I b, I c) { return _mm512_ternarylogic_epi32(a, b, c, 0x96); }
  static void MulHiLo(I a, I m, I* hi, I* lo) {
    const I even = _mm512_mul_epu32(a, m);
    const I odd = _mm512_mul_epu32(_mm512_srli_epi64(a, 32), m);
    *lo = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
    *hi = _mm512_mask_blend_epi32(0xAAAA, _mm512_srli_epi64(even, 32), odd);
  }
  // float(a + width * double(u)) per lane.
  static F AffineInDouble(F u, double a, double width) {
    const __m512d va = _mm512_set1_pd(a), vw = _mm512_set1_pd(width);
    const __m256 u_lo = _mm512_castps512_ps256(u);
    const __m256 u_hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1));
    const __m256 lo = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(vw, _mm512_cvtps_pd(u_lo)), va));
    const __m256 hi = _mm512_cvtpd_ps(_mm512_add_pd(_mm512_mul_pd(vw, _mm512_cvtps_pd(u_hi)), va));
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(lo)),
                                               _mm256_castps_pd(hi), 1));
  }
  // Lane 4c + p of v[k] is value k of block 4p + c: in-chunk unpacks put
  // blocks 4p .. 4p + 3 in t_p.
  static void Store4(float* out, const F* v) {
    const F ab_lo = _mm512_unpacklo_ps(v[0], v[1]), ab_hi = _mm512_unpackhi_ps(v[0], v[1]);
    const F cd_lo = _mm512_unpacklo_ps(v[2], v[3]), cd_hi = _mm512_unpackhi_ps(v[2], v[3]);
    auto lo = [](F x, F y) {
      return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    };
    auto hi = [](F x, F y) {
      return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(x), _mm512_castps_pd(y)));
    };
    _mm512_storeu_ps(out, lo(ab_lo, cd_lo));
    _mm512_storeu_ps(out + 16, hi(ab_lo, cd_lo));
    _mm512_storeu_ps(out + 32, lo(ab_hi, cd_hi));
    _mm512_storeu_ps(out + 48, hi(ab_hi, cd_hi));
  }
};

}  // namespace

void InitFillAvx512(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                    float* out) {
  InitFill<Avx512>::Fill(p, row0, rows, blocks_per_row, out);
}

void InitFillIdsAvx512(const InitParams& p, const uint64_t* rows, int64_t n,
                       int64_t blocks_per_row, float* out) {
  InitFill<Avx512>::FillIds(p, rows, n, blocks_per_row, out);
}

}  // namespace embedserve::internal
