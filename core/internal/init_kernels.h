#ifndef EMBEDSERVE_CORE_INTERNAL_INIT_KERNELS_H_
#define EMBEDSERVE_CORE_INTERNAL_INIT_KERNELS_H_

// Generator 2 of the table initializer (core/initializer.h): the fill
// kernels, one file per instruction set (init_fill_scalar.cc is the reference
// and the test oracle; init_fill_avx2.cc and init_fill_avx512.cc are the only
// files compiled with ISA flags). Every level gives the same bits: the math
// below is IEEE float/double add, multiply, sqrt and exact integer and
// conversion steps only, in the same order at every level, with no
// contraction (-ffp-contract=off) and no library calls (std::log / std::sin
// differ between libm versions and vector code).
//
// The value at (seed, row, col). Block b = col / 4 of row `row` is
//   w[0..3] = Philox4x32-10(counter {b, 0, row lo 32 bits, row hi 32 bits},
//                           key {seed lo 32 bits, seed hi 32 bits})
// and column 4b + k takes, for k = 0..3:
//   uniform:  u_k = (w[k] >> 8) * 2^-24                         in [0, 1), exact
//             x = float(a + width * u_k)  (in double),  min(x, below_b)
//   normal:   per pair (w[0], w[1]) -> columns 4b, 4b+1 and (w[2], w[3]) ->
//             4b+2, 4b+3 (Box-Muller, as cuRAND's):
//             u = float(w_even) * 2^-32 + 2^-33                 in (0, 1]
//             rho = sqrt(-2 * LogUnit(u))
//             (s, c) = SinCosTurns(w_odd >> 8)   angle 2 pi (w_odd >> 8) / 2^24
//             column 4b:   std * (rho * c) + mean,  4b+1: std * (rho * s) + mean
// in float32, with float(w) rounded to nearest from the 32-bit integer.
// LogUnit and SinCosTurns are Cephes' logf / sinf / cosf polynomials (error
// about 1 ulp) written out in init_fill_scalar.cc; their coefficients are
// below so that every level uses the same ones.

#include <cstdint>

#include "core/gather.h"
#include "core/table_spec.h"

namespace embedserve::internal {

// A table's generator-2 parameters, computed once (core/initializer.cc).
struct InitParams {
  bool normal = true;  // else uniform
  uint32_t key[2] = {0, 0};
  float mean = 0.0f, std = 1.0f;  // normal
  double a = 0.0, width = 1.0;    // uniform: a + width * u
  float below_b = 1.0f;           // uniform: the largest value kept (b excluded)
};

// Fills out[4 * j + k] for j in [0, rows * blocks_per_row), k in [0, 4) with
// the value of (row0 + j / blocks_per_row, 4 * (j % blocks_per_row) + k):
// `rows` rows of blocks_per_row * 4 values each, back to back.
// REQUIRES: rows >= 1, 1 <= blocks_per_row <= 2^14, and all rows share their
// high 32 bits: (row0 >> 32) == ((row0 + rows - 1) >> 32).
using InitFillFn = void (*)(const InitParams& p, uint64_t row0, int64_t rows,
                            int64_t blocks_per_row, float* out);

// Fills the rows of any ids: for i in [0, n), out + 4 * blocks_per_row * i
// gets what fill(p, rows[i], 1, blocks_per_row, ...) writes (rows need not
// be consecutive nor share their high 32 bits). Full vectors of blocks
// whatever the rows: RowInitializer's path (dynamic tables' unseen ids).
// REQUIRES: n >= 0, 1 <= blocks_per_row <= 2^14.
using InitFillIdsFn = void (*)(const InitParams& p, const uint64_t* rows, int64_t n,
                               int64_t blocks_per_row, float* out);

// The four values of block `block` of row `row` (the reference, one block).
void InitBlockScalar(const InitParams& p, uint64_t row, uint32_t block, float out[4]);

struct InitKernels {
  SimdLevel level;
  InitFillFn fill;
  InitFillIdsFn fill_ids;
};

// The kernels of one level. REQUIRES: CpuSupports(level).
const InitKernels& InitKernelsFor(SimdLevel level);

void InitFillScalar(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                    float* out);
void InitFillAvx2(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                  float* out);
void InitFillAvx512(const InitParams& p, uint64_t row0, int64_t rows, int64_t blocks_per_row,
                    float* out);
void InitFillIdsScalar(const InitParams& p, const uint64_t* rows, int64_t n,
                       int64_t blocks_per_row, float* out);
void InitFillIdsAvx2(const InitParams& p, const uint64_t* rows, int64_t n, int64_t blocks_per_row,
                     float* out);
void InitFillIdsAvx512(const InitParams& p, const uint64_t* rows, int64_t n,
                       int64_t blocks_per_row, float* out);

// ---- The constants every level shares.
inline constexpr float kTwoPow32Inv = 0x1.0p-32f;
inline constexpr float kTwoPow33Inv = 0x1.0p-33f;
inline constexpr float kTwoPow24Inv = 0x1.0p-24f;
// Angle of one step of a 2^24-step turn: float(2 pi) * 2^-24 (the scaling
// by a power of two is exact, so this is the float nearest 2 pi / 2^24).
inline constexpr float kTurnStep = 6.28318548f * 0x1.0p-24f;

// LogUnit(u), u in (0, 1] normal: u = m * 2^e with m in [sqrt(1/2), sqrt(2)),
//   x = m - 1, z = x * x
//   y = ((((((((P0 x + P1) x + P2) x + P3) x + P4) x + P5) x + P6) x + P7) x + P8)
//   y = (y * x) * z + e * Q1 - 0.5 * z      (each step rounded, left to right)
//   ln u = (x + y) + e * Q2                   (Q1 + Q2 = ln 2)
inline constexpr float kSqrtHalf = 0.707106781186547524f;
inline constexpr float kLogP[9] = {7.0376836292e-2f,  -1.1514610310e-1f, 1.1676998740e-1f,
                                   -1.2420140846e-1f, 1.4249322787e-1f,  -1.6668057665e-1f,
                                   2.0000714765e-1f,  -2.4999993993e-1f, 3.3333331174e-1f};
inline constexpr float kLogQ1 = -2.12194440e-4f;
inline constexpr float kLogQ2 = 0.693359375f;

// sin and cos of x in [-pi/4, pi/4], z = x * x:
//   sin x = ((S0 z + S1) z + S2) z x + x    ((((S0*z)+S1)*z+S2)*z)*x + x
//   cos x = ((C0 z + C1) z + C2) z z - 0.5 z + 1
inline constexpr float kSinS[3] = {-1.9515295891e-4f, 8.3321608736e-3f, -1.6666654611e-1f};
inline constexpr float kCosC[3] = {2.443315711809948e-5f, -1.388731625493765e-3f,
                                   4.166664568298827e-2f};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_INIT_KERNELS_H_
