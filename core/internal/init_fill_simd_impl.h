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

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <tuple>

#include "core/internal/init_kernels.h"
#include "core/internal/philox.h"

namespace embedserve::internal {

// The bits of kSqrtHalf: exponent field 126, mantissa field 0x3504F3.
inline constexpr uint32_t kSqrtHalfBits = 0x3F3504F3u;
static_assert(std::bit_cast<uint32_t>(kSqrtHalf) == kSqrtHalfBits);

// K independent vectors of V, operation by operation: InitFill<Group<V, K>>
// runs the math of K steps at once, so that each of the long dependency
// chains (ten Philox rounds, then log, sqrt, sin / cos) has K - 1 others
// beside it to fill the execution ports. Each lane's operations are the
// very same as in InitFill<V> (only their order across lanes changes), so
// the bits are too.
template <typename V, int K>
struct Group {
  // K vectors (a plain array in a struct: std::array of vector types
  // drops their alignment attributes).
#define EMBEDSERVE_INIT_VECS(Name, T)                    \
  struct Name {                                          \
    T v[K];                                              \
    T& operator[](int j) { return v[j]; }                \
    const T& operator[](int j) const { return v[j]; }    \
  }
  EMBEDSERVE_INIT_VECS(I, typename V::I);
  EMBEDSERVE_INIT_VECS(F, typename V::F);
  EMBEDSERVE_INIT_VECS(M, decltype(V::LtF(V::SetF(0), V::SetF(0))));
#undef EMBEDSERVE_INIT_VECS
  static constexpr int64_t kLanes = K * V::kLanes;
  static constexpr int kGroup = 1;  // InitFill<Group> runs no groups of its own

  template <typename R, typename Op>
  static R Each(Op op) {
    R r;
    for (int j = 0; j < K; ++j) r[j] = op(j);
    return r;
  }
  static I SetI(uint32_t x) {
    return Each<I>([&](int) { return V::SetI(x); });
  }
  static F SetF(float x) {
    return Each<F>([&](int) { return V::SetF(x); });
  }
  static I AsI(const F& x) {
    return Each<I>([&](int j) { return V::AsI(x[j]); });
  }
  static F AsF(const I& x) {
    return Each<F>([&](int j) { return V::AsF(x[j]); });
  }
  static I AddI(const I& a, const I& b) {
    return Each<I>([&](int j) { return V::AddI(a[j], b[j]); });
  }
  static I SubI(const I& a, const I& b) {
    return Each<I>([&](int j) { return V::SubI(a[j], b[j]); });
  }
  static I AndI(const I& a, const I& b) {
    return Each<I>([&](int j) { return V::AndI(a[j], b[j]); });
  }
  static I OrI(const I& a, const I& b) {
    return Each<I>([&](int j) { return V::OrI(a[j], b[j]); });
  }
  static I XorI(const I& a, const I& b) {
    return Each<I>([&](int j) { return V::XorI(a[j], b[j]); });
  }
  template <int n>
  static I Srl(const I& a) {
    return Each<I>([&](int j) { return V::template Srl<n>(a[j]); });
  }
  template <int n>
  static I Sll(const I& a) {
    return Each<I>([&](int j) { return V::template Sll<n>(a[j]); });
  }
  template <int n>
  static I Sra(const I& a) {
    return Each<I>([&](int j) { return V::template Sra<n>(a[j]); });
  }
  static M SignMask(const I& a) {
    return Each<M>([&](int j) { return V::SignMask(a[j]); });
  }
  static I SelI(const M& m, const I& t, const I& f) {
    return Each<I>([&](int j) { return V::SelI(m[j], t[j], f[j]); });
  }
  static F SelF(const M& m, const F& t, const F& f) {
    return Each<F>([&](int j) { return V::SelF(m[j], t[j], f[j]); });
  }
  static M LtF(const F& a, const F& b) {
    return Each<M>([&](int j) { return V::LtF(a[j], b[j]); });
  }
  static M GeF(const F& a, const F& b) {
    return Each<M>([&](int j) { return V::GeF(a[j], b[j]); });
  }
  static F Add(const F& a, const F& b) {
    return Each<F>([&](int j) { return V::Add(a[j], b[j]); });
  }
  static F Sub(const F& a, const F& b) {
    return Each<F>([&](int j) { return V::Sub(a[j], b[j]); });
  }
  static F Mul(const F& a, const F& b) {
    return Each<F>([&](int j) { return V::Mul(a[j], b[j]); });
  }
  static F Sqrt(const F& a) {
    return Each<F>([&](int j) { return V::Sqrt(a[j]); });
  }
  static F CvtI32(const I& a) {
    return Each<F>([&](int j) { return V::CvtI32(a[j]); });
  }
  static F CvtU32(const I& a) {
    return Each<F>([&](int j) { return V::CvtU32(a[j]); });
  }
  static I MulLow32(const I& a, const I& m) {
    return Each<I>([&](int j) { return V::MulLow32(a[j], m[j]); });
  }
  static I HighHalf(const I& a) {
    return Each<I>([&](int j) { return V::HighHalf(a[j]); });
  }
  static I Merge(const I& e, const I& o) {
    return Each<I>([&](int j) { return V::Merge(e[j], o[j]); });
  }
  static I Xor3(const I& a, const I& b, const I& c) {
    return Each<I>([&](int j) { return V::Xor3(a[j], b[j], c[j]); });
  }
  static F AffineInDouble(const F& u, double a, double width) {
    return Each<F>([&](int j) { return V::AffineInDouble(u[j], a, width); });
  }
};

template <typename V>
struct InitFill {
  using I = typename V::I;
  using F = typename V::F;
  static constexpr int64_t L = V::kLanes;

  // The reference's LogUnit with its prologue done in integers: taking the
  // bits of sqrt(1/2) from u's borrows from the exponent field exactly when
  // u's mantissa is below sqrt(1/2)'s (the reference's m < sqrt(1/2), both
  // in [0.5, 1)), so the arithmetic shift of the difference is the
  // reference's e, and u's bits less e in the exponent are its m, or m + m
  // (exact) when it doubled m. The float steps from x on are the reference's.
  static F LogUnit(F u) {
    const I bits = V::AsI(u);
    const I e = V::template Sra<23>(V::SubI(bits, V::SetI(kSqrtHalfBits)));
    const F m = V::AsF(V::SubI(bits, V::template Sll<23>(e)));
    F x = V::Sub(m, V::SetF(1.0f));
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
    // The reference's swap and negations from q = near & 3: swap when
    // bit 0 of q is set, sin negated by bit 1 of q, cos by bit 1 of q + 1,
    // which is bit 1 xor bit 0 of q; each moved to the sign bit.
    const I odd = V::template Sll<31>(near);
    const auto swap = V::SignMask(odd);
    const I sin_sign = V::AndI(V::template Sll<30>(near), V::SetI(0x80000000u));
    const I cos_sign = V::XorI(sin_sign, odd);
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

  using Keys = std::array<PhiloxKey, kPhiloxRounds>;

  // Philox4x32-10 of the counters c[0..3], lane by lane. Each 32-bit lane
  // is kept in the low half of a 64-bit lane, even lanes in e and odd ones
  // in o: a 64-bit product of the low halves is then (hi, lo) of the
  // multiply in place, with no blend a round. High halves are garbage
  // that no step reads (products take the low halves, xor keeps halves
  // apart) until Merge puts the lanes back.
  static void Rounds(const Keys& keys, I* c) {
    I e[4], o[4];
    for (int k = 0; k < 4; ++k) {
      e[k] = c[k];
      o[k] = V::HighHalf(c[k]);
    }
    RoundsFrom(keys, 0, e, o);
    for (int k = 0; k < 4; ++k) c[k] = V::Merge(e[k], o[k]);
  }

  // Rounds [r0, kPhiloxRounds) on the split state of Rounds.
  static void RoundsFrom(const Keys& keys, int r0, I* e, I* o) {
    const I m0 = V::SetI(kPhiloxM0), m1 = V::SetI(kPhiloxM1);
    for (int r = r0; r < kPhiloxRounds; ++r) {
      const I k0 = V::SetI(keys[r][0]), k1 = V::SetI(keys[r][1]);
      for (I* h : {e, o}) {
        const I p0 = V::MulLow32(h[0], m0), p1 = V::MulLow32(h[2], m1);
        h[0] = V::Xor3(V::HighHalf(p1), h[1], k0);
        h[1] = p1;
        h[2] = V::Xor3(V::HighHalf(p0), h[3], k1);
        h[3] = p0;
      }
    }
  }

  // Rounds of the counters {cb, 0, row lo, row hi} of one row in every
  // lane, with the words that are the same in every lane computed once a
  // row in scalars (RowStart) and those that depend on the block alone
  // once a call (BlockStart): round 1 is then two xors, round 2 half of
  // one. Exact integer steps, as Rounds's.
  // With (c0, c1) = (hi(M1 row lo) ^ k1[0], lo(M1 row lo)), round 1's
  // words of the row, and (hi b, lo b) = M0 c0 of round 2:
  struct RowStart {
    uint32_t c2_xor;  // row hi ^ k1[1]: round 1's c[2] = hi(M0 cb) ^ c2_xor
    uint32_t c0_xor;  // c1 ^ k2[0]: round 2's c[0] = hi(M1 c[2]) ^ c0_xor
    uint32_t c2x;     // hi b ^ k2[1]: round 2's c[2] = round 1's c[3] ^ c2x
    uint32_t c3;      // lo b: round 2's c[3]
  };
  struct BlockStart {
    I hi_e, hi_o;  // hi(M0 cb) of the even and odd lanes (split)
    I lo_e, lo_o;  // lo(M0 cb), the same
  };
  static RowStart StartRow(const Keys& keys, uint64_t row) {
    const uint64_t a = uint64_t{kPhiloxM1} * static_cast<uint32_t>(row);
    const uint32_t c0 = static_cast<uint32_t>(a >> 32) ^ keys[0][0];  // ^ c[1] = 0
    const uint32_t c1 = static_cast<uint32_t>(a);
    const uint64_t b = uint64_t{kPhiloxM0} * c0;
    return RowStart{static_cast<uint32_t>(row >> 32) ^ keys[0][1], c1 ^ keys[1][0],
                    static_cast<uint32_t>(b >> 32) ^ keys[1][1], static_cast<uint32_t>(b)};
  }
  static BlockStart StartBlocks(I cb) {
    const I m0 = V::SetI(kPhiloxM0);
    const I pe = V::MulLow32(cb, m0), po = V::MulLow32(V::HighHalf(cb), m0);
    return BlockStart{V::HighHalf(pe), V::HighHalf(po), pe, po};
  }
  static void RowRounds(const Keys& keys, const RowStart& row, const BlockStart& blocks, I* c) {
    const I m1 = V::SetI(kPhiloxM1);
    const I c0_xor = V::SetI(row.c0_xor), c2_xor = V::SetI(row.c2_xor);
    const I c2x = V::SetI(row.c2x), c3 = V::SetI(row.c3);
    I e[4], o[4];
    for (auto [h, hi, lo] : {std::tuple(e, &blocks.hi_e, &blocks.lo_e),
                             std::tuple(o, &blocks.hi_o, &blocks.lo_o)}) {
      const I c2 = V::XorI(*hi, c2_xor);  // round 1's c[2]; its c[3] is *lo
      const I p1 = V::MulLow32(c2, m1);
      h[0] = V::XorI(V::HighHalf(p1), c0_xor);
      h[1] = p1;
      h[2] = V::XorI(*lo, c2x);
      h[3] = c3;
    }
    RoundsFrom(keys, 2, e, o);
    for (int k = 0; k < 4; ++k) c[k] = V::Merge(e[k], o[k]);
  }

  // L blocks: Philox4x32-10 of the counters {cb, 0, row_lo, row_hi} lane by
  // lane, transformed, and the first `blocks` of them stored at `out`.
  static void Step(const InitParams& p, const Keys& keys, I cb, I row_lo, I row_hi,
                   int64_t blocks, float* out) {
    I c[4] = {cb, V::SetI(0), row_lo, row_hi};
    Rounds(keys, c);
    F v[4];
    Transform(p, c, v);
    if (blocks == L) {
      V::Store4(out, v);
    } else {
      alignas(64) float tail[4 * L];
      V::Store4(tail, v);
      std::memcpy(out, tail, static_cast<size_t>(blocks) * 4 * sizeof(float));
    }
  }

  // kGroup whole steps at once (Group): their 4 * L * kGroup values are
  // stored back to back at `out`. V::kGroup: 2 for AVX-512 (32 registers
  // hold two steps' Philox state), 1 for AVX2 (16 do not: spills).
  static constexpr int kGroup = V::kGroup;
  using G = Group<V, kGroup>;
  static void StepGroup(const InitParams& p, const Keys& keys, const typename G::I& cb,
                        const typename G::I& row_lo, const typename G::I& row_hi, float* out) {
    typename G::I c[4] = {cb, G::SetI(0), row_lo, row_hi};
    InitFill<G>::Rounds(keys, c);
    typename G::F v[4];
    InitFill<G>::Transform(p, c, v);
    for (int j = 0; j < kGroup; ++j) {
      const F w[4] = {v[0][j], v[1][j], v[2][j], v[3][j]};
      V::Store4(out + 4 * L * j, w);
    }
  }

  // Rows of whole vectors (nb % L == 0, dim 64: two steps of 8 blocks),
  // row row_of(i) at out + 4 nb i: row by row, step by step (RowRounds),
  // the block words of a row's first steps computed once a call.
  // REQUIRES: n >= 1.
  template <typename RowOf>
  static void WholeRows(const InitParams& p, const Keys& keys, RowOf row_of, int64_t n,
                        int64_t nb, float* out) {
    alignas(64) uint32_t offset[L];
    for (int64_t i = 0; i < L; ++i) offset[i] = static_cast<uint32_t>(LaneOffset(i));
    const I lane = V::LoadI(offset);
    const int64_t per_row = nb / L;
    constexpr int64_t kCached = 4;
    BlockStart cached[kCached];
    for (int64_t j = 0; j < std::min(per_row, kCached); ++j) {
      cached[j] = StartBlocks(V::AddI(lane, V::SetI(static_cast<uint32_t>(j * L))));
    }
    // In batches of kBatch steps: Philox words of the batch, then their
    // transform; two short loops whose iterations overlap, where one long
    // one spilled registers (~10% faster on Zen 3; 8 or 32 steps no better).
    constexpr int64_t kBatch = 16;
    I words[kBatch][4];
    const int64_t steps = n * per_row;
    int64_t i = 0, j = 0;  // the row and step in it of the batch's next step
    RowStart row = StartRow(keys, row_of(0));
    for (int64_t s0 = 0; s0 < steps; s0 += kBatch) {
      const int64_t m = std::min(kBatch, steps - s0);
      for (int64_t t = 0; t < m; ++t) {
        if (j < kCached) {
          RowRounds(keys, row, cached[j], words[t]);
        } else {
          RowRounds(keys, row, StartBlocks(V::AddI(lane, V::SetI(static_cast<uint32_t>(j * L)))),
                    words[t]);
        }
        if (++j == per_row && ++i < n) {
          j = 0;
          row = StartRow(keys, row_of(i));
        }
      }
      for (int64_t t = 0; t < m; ++t) {
        F v[4];
        Transform(p, words[t], v);
        V::Store4(out + 4 * L * (s0 + t), v);
      }
    }
  }

  // Lane i = 4c + p runs block (L/4) p + c of a group of L blocks.
  static constexpr int64_t LaneOffset(int64_t i) { return (L / 4) * (i % 4) + i / 4; }

  static void FillIds(const InitParams& p, const uint64_t* rows, int64_t n, int64_t nb,
                      float* out) {
    if (n <= 0) return;
    const Keys keys = PhiloxRoundKeys({p.key[0], p.key[1]});
    alignas(64) uint32_t offset[L];
    for (int64_t i = 0; i < L; ++i) offset[i] = static_cast<uint32_t>(LaneOffset(i));
    if (nb % L == 0) {
      // Whole vectors within a row (dim 64: one vector of 16 or two of 8
      // blocks): the row is the same in every lane. Step s runs blocks
      // [(s % per_row) L, +L) of row s / per_row, kGroup steps at once.
      const I lane = V::LoadI(offset);
      const int64_t per_row = nb / L;
      if constexpr (kGroup == 1) {
        WholeRows(p, keys, [&](int64_t i) { return rows[i]; }, n, nb, out);
        return;
      }
      const int64_t steps = n * per_row;
      auto args = [&](int64_t s, I* cb, I* lo, I* hi) {
        const uint64_t row = rows[s / per_row];
        *cb = V::AddI(lane, V::SetI(static_cast<uint32_t>((s % per_row) * L)));
        *lo = V::SetI(static_cast<uint32_t>(row));
        *hi = V::SetI(static_cast<uint32_t>(row >> 32));
      };
      int64_t s = 0;
      for (; s + kGroup <= steps; s += kGroup) {
        typename G::I cb, lo, hi;
        for (int j = 0; j < kGroup; ++j) args(s + j, &cb[j], &lo[j], &hi[j]);
        StepGroup(p, keys, cb, lo, hi, out + 4 * L * s);
      }
      for (; s < steps; ++s) {
        I cb, lo, hi;
        args(s, &cb, &lo, &hi);
        Step(p, keys, cb, lo, hi, L, out + 4 * L * s);
      }
      return;
    }
    // Any width: lane k runs block offset[k] of the current group of L
    // blocks (rows back to back); its (row index, block) moves on by L
    // blocks a step. Lanes past the last row repeat it (stored nowhere).
    int64_t r[L];
    uint32_t b[L];
    for (int64_t k = 0; k < L; ++k) {
      int64_t o = offset[k];
      r[k] = 0;
      while (o >= nb) {
        o -= nb;
        ++r[k];
      }
      b[k] = static_cast<uint32_t>(o);
    }
    const int64_t step_rows = L / nb;
    const uint32_t step_blocks = static_cast<uint32_t>(L % nb);
    const uint32_t nb32 = static_cast<uint32_t>(nb);
    alignas(64) uint32_t cb[L], lo[L], hi[L];
    const int64_t total = n * nb;
    for (int64_t j = 0; j < total; j += L) {
      for (int64_t k = 0; k < L; ++k) {
        const uint64_t row = rows[std::min(r[k], n - 1)];
        cb[k] = b[k];
        lo[k] = static_cast<uint32_t>(row);
        hi[k] = static_cast<uint32_t>(row >> 32);
        b[k] += step_blocks;
        r[k] += step_rows;
        if (b[k] >= nb32) {
          b[k] -= nb32;
          ++r[k];
        }
      }
      Step(p, keys, V::LoadI(cb), V::LoadI(lo), V::LoadI(hi), std::min(L, total - j),
           out + 4 * j);
    }
  }

  static void Fill(const InitParams& p, uint64_t row0, int64_t rows, int64_t nb, float* out) {
    const auto keys = PhiloxRoundKeys({p.key[0], p.key[1]});
    if constexpr (kGroup == 1) {
      if (nb % L == 0) {
        WholeRows(p, keys, [&](int64_t i) { return row0 + static_cast<uint64_t>(i); }, rows, nb,
                  out);
        return;
      }
    }
    const I row_hi = V::SetI(static_cast<uint32_t>(row0 >> 32));
    alignas(64) uint32_t cb_init[L], row_init[L];
    for (int64_t i = 0; i < L; ++i) {
      const int64_t offset = LaneOffset(i);
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
      Step(p, keys, cb, row, row_hi, std::min(L, total - j), out + 4 * j);
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
