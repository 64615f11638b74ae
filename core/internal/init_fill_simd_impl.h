#ifndef EMBEDSERVE_CORE_INTERNAL_INIT_FILL_SIMD_IMPL_H_
#define EMBEDSERVE_CORE_INTERNAL_INIT_FILL_SIMD_IMPL_H_

// Generator 2 for one vector ISA, written once over the ISA's primitives `V`
// (see init_fill_avx2.cc / init_fill_avx512.cc). Included only by those
// files. Each lane runs one Philox block; the steps are those of
// init_fill_scalar.cc, operation for operation, so that every lane rounds as
// the reference does.
//
// Lanes and blocks. Lane i = 4c + p (c: 128-bit chunk, p: position in it)
// runs block (L/4) p + c of the current group of L blocks. Then the 4-way
// interleave of the four output vectors (V::Store4, in-chunk unpacks only)
// leaves the blocks in memory order: no cross-chunk shuffles.

#include <cstdint>
#include <cstring>

#include "core/internal/init_kernels.h"
#include "core/internal/philox.h"

namespace embedserve::internal {

template <typename V>
struct InitFill {
  using I = typename V::I;
  using F = typename V::F;
  static constexpr int64_t L = V::kLanes;

  static void MulHiLo(I a, uint32_t m, I* hi, I* lo) { V::MulHiLo(a, V::SetI(m), hi, lo); }

  static F LogUnit(F u) {
    const I bits = V::AsI(u);
    const I e0 = V::SubI(V::template Srl<23>(bits), V::SetI(126));
    const F m = V::AsF(V::OrI(V::AndI(bits, V::SetI(0x007FFFFFu)), V::SetI(0x3F000000u)));
    const auto small = V::LtF(m, V::SetF(kSqrtHalf));
    const I e = V::SelI(small, V::SubI(e0, V::SetI(1)), e0);
    const F one = V::SetF(1.0f);
    F x = V::SelF(small, V::Sub(V::Add(m, m), one), V::Sub(m, one));
    const F z = V::Mul(x, x);
    F y = V::SetF(kLogP[0]);
    for (int i = 1; i < 9; ++i) y = V::Add(V::Mul(y, x), V::SetF(kLogP[i]));
    y = V::Mul(V::Mul(y, x), z);
    const F fe = V::CvtI32(e);
    y = V::Add(y, V::Mul(fe, V::SetF(kLogQ1)));
    y = V::Sub(y, V::Mul(V::SetF(0.5f), z));
    x = V::Add(x, y);
    return V::Add(x, V::Mul(fe, V::SetF(kLogQ2)));
  }

  static void SinCosTurns(I t, F* sin_out, F* cos_out) {
    const I near = V::template Srl<22>(V::AddI(t, V::SetI(1u << 21)));
    const I r = V::SubI(t, V::template Sll<22>(near));
    const I q = V::AndI(near, V::SetI(3));
    const F x = V::Mul(V::CvtI32(r), V::SetF(kTurnStep));
    const F z = V::Mul(x, x);
    const F s = V::Add(
        V::Mul(V::Mul(V::Add(V::Mul(V::Add(V::Mul(V::SetF(kSinS[0]), z), V::SetF(kSinS[1])), z),
                             V::SetF(kSinS[2])),
                      z),
               x),
        x);
    const F c = V::Add(
        V::Sub(V::Mul(V::Mul(V::Add(V::Mul(V::Add(V::Mul(V::SetF(kCosC[0]), z), V::SetF(kCosC[1])),
                                           z),
                                    V::SetF(kCosC[2])),
                             z),
                      z),
               V::Mul(V::SetF(0.5f), z)),
        V::SetF(1.0f));
    const auto swap = V::NonZero(V::AndI(q, V::SetI(1)));
    // Sign flips as in the reference's negations: bit 1 of q for sin, of
    // q + 1 for cos, moved to the sign bit.
    const I sin_sign = V::template Sll<30>(V::AndI(q, V::SetI(2)));
    const I cos_sign = V::template Sll<30>(V::AndI(V::AddI(q, V::SetI(1)), V::SetI(2)));
    *sin_out = V::AsF(V::XorI(V::AsI(V::SelF(swap, c, s)), sin_sign));
    *cos_out = V::AsF(V::XorI(V::AsI(V::SelF(swap, s, c)), cos_sign));
  }

  // The four output vectors of L blocks with Philox words w[0..3].
  static void Transform(const InitParams& p, const I* w, F* out) {
    if (p.normal) {
      const F std = V::SetF(p.std), mean = V::SetF(p.mean);
      for (int k = 0; k < 4; k += 2) {
        const F u = V::Add(V::Mul(V::CvtU32(w[k]), V::SetF(kTwoPow32Inv)), V::SetF(kTwoPow33Inv));
        const F rho = V::Sqrt(V::Mul(V::SetF(-2.0f), LogUnit(u)));
        F s, c;
        SinCosTurns(V::template Srl<8>(w[k + 1]), &s, &c);
        out[k] = V::Add(V::Mul(std, V::Mul(rho, c)), mean);
        out[k + 1] = V::Add(V::Mul(std, V::Mul(rho, s)), mean);
      }
    } else {
      const F below_b = V::SetF(p.below_b);
      for (int k = 0; k < 4; ++k) {
        const F u = V::Mul(V::CvtI32(V::template Srl<8>(w[k])), V::SetF(kTwoPow24Inv));
        const F x = V::AffineInDouble(u, p.a, p.width);
        out[k] = V::SelF(V::GeF(x, below_b), below_b, x);
      }
    }
  }

  static void Fill(const InitParams& p, uint64_t row0, int64_t rows, int64_t nb, float* out) {
    const auto keys = PhiloxRoundKeys({p.key[0], p.key[1]});
    const I row_hi = V::SetI(static_cast<uint32_t>(row0 >> 32));
    const I zero = V::SetI(0);
    alignas(64) uint32_t cb_init[L], row_init[L];
    for (int64_t i = 0; i < L; ++i) {
      const int64_t offset = (L / 4) * (i % 4) + i / 4;
      cb_init[i] = static_cast<uint32_t>(offset % nb);
      row_init[i] = static_cast<uint32_t>(row0) + static_cast<uint32_t>(offset / nb);
    }
    I cb = V::LoadI(cb_init), row = V::LoadI(row_init);
    // Moving every lane on by L blocks: L / nb rows and L % nb blocks, with
    // a carry into the row when the block passes the end of its row.
    const I step_rows = V::SetI(static_cast<uint32_t>(L / nb));
    const I step_blocks = V::SetI(static_cast<uint32_t>(L % nb));
    const I nb_v = V::SetI(static_cast<uint32_t>(nb)), one = V::SetI(1);
    const int64_t total = rows * nb;
    for (int64_t j = 0; j < total; j += L) {
      I c[4] = {cb, zero, row, row_hi};
      for (int r = 0; r < kPhiloxRounds; ++r) {
        I hi0, lo0, hi1, lo1;
        MulHiLo(c[0], kPhiloxM0, &hi0, &lo0);
        MulHiLo(c[2], kPhiloxM1, &hi1, &lo1);
        c[0] = V::XorI(V::XorI(hi1, c[1]), V::SetI(keys[r][0]));
        c[1] = lo1;
        c[2] = V::XorI(V::XorI(hi0, c[3]), V::SetI(keys[r][1]));
        c[3] = lo0;
      }
      F v[4];
      Transform(p, c, v);
      if (j + L <= total) {
        V::Store4(out + 4 * j, v);
      } else {
        alignas(64) float tail[4 * L];
        V::Store4(tail, v);
        std::memcpy(out + 4 * j, tail, static_cast<size_t>(total - j) * 4 * sizeof(float));
      }
      cb = V::AddI(cb, step_blocks);
      row = V::AddI(row, step_rows);
      const auto carry = V::GtI(cb, V::SubI(nb_v, one));
      cb = V::SelI(carry, V::SubI(cb, nb_v), cb);
      row = V::SelI(carry, V::AddI(row, one), row);
    }
  }
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_INIT_FILL_SIMD_IMPL_H_
