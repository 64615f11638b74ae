#ifndef EMBEDSERVE_CORE_OPTIMIZER_H_
#define EMBEDSERVE_CORE_OPTIMIZER_H_

// Server-side optimizers for sparse gradient pushes, each equal to its
// PyTorch (or FBGEMM) counterpart applied to a coalesced sparse gradient.
// All arithmetic is float32 as in PyTorch; scalars computed from the step
// count are double and rounded to float where PyTorch does.
//
// For a pushed row w with coalesced gradient g (dim floats), per element j:
//
//   kSgd (torch.optim.SGD, sparse):
//     w -= lr * g
//   kAdagrad (torch.optim.Adagrad, sparse; s starts at initial_accumulator_value):
//     step += 1 (per table, per push);  clr = lr / (1 + (step - 1) * lr_decay)
//     s += g * g;  w -= clr * (g / (sqrt(s) + eps))
//   kRowWiseAdagrad (FBGEMM exact_rowwise_adagrad; one m per row):
//     m += mean_j(g_j^2);  w -= (lr / (sqrt(m) + eps)) * g
//   kSparseAdam (torch.optim.SparseAdam; m, v start at 0):
//     step += 1 (per table, per push)
//     m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2)
//     step_size = lr * sqrt(1 - beta2^step) / (1 - beta1^step)
//     w += -step_size * (m / (sqrt(v) + eps))
//
// Lazy: rows that are not pushed keep their state untouched (no decay).

#include <cstdint>
#include <optional>

#include "absl/status/statusor.h"

namespace embedserve {

enum class OptimizerKind { kSgd, kAdagrad, kRowWiseAdagrad, kSparseAdam };

struct OptimizerSpec {
  OptimizerKind kind = OptimizerKind::kSgd;
  // Defaults as PyTorch: 0.01 (SGD and the Adagrads), 0.001 for SparseAdam
  // (torch.optim.SparseAdam's default). >= 0 (> 0 for SparseAdam, as torch).
  std::optional<double> lr;
  double lr_decay = 0.0;                   // kAdagrad, >= 0
  double initial_accumulator_value = 0.0;  // kAdagrad, kRowWiseAdagrad, >= 0
  // Defaults as PyTorch: 1e-10 for the Adagrads, 1e-8 for SparseAdam.
  std::optional<double> eps;
  double beta1 = 0.9;    // kSparseAdam, in [0, 1)
  double beta2 = 0.999;  // kSparseAdam, in [0, 1)
};

// Validates as torch.optim's constructors do (InvalidArgument naming the
// field), and also that every value used as a float32 scalar fits a float
// (lr = 1e300 would step rows to inf). Fills lr's and eps's defaults.
absl::StatusOr<OptimizerSpec> NormalizeOptimizerSpec(OptimizerSpec spec);

// Optimizer state floats per element of a row (Adagrad: 1, SparseAdam: 2)
// and per row (row-wise Adagrad: 1).
int ElementStateSlots(OptimizerKind kind);
int RowStateSlots(OptimizerKind kind);
// Optimizer state floats of one row of `dim` values (what reading one id's
// state answers): ElementStateSlots(kind) * dim + RowStateSlots(kind).
int64_t StateFloatsPerRow(OptimizerKind kind, int64_t dim);
// Whether the optimizer keeps a per-table step count.
bool HasStepCount(OptimizerKind kind);

// Scalars shared by every row of one push.
struct StepScalars {
  float lr = 0;  // kSgd, kRowWiseAdagrad: lr; kAdagrad: clr
  float eps = 0;
  float one_minus_beta1 = 0, one_minus_beta2 = 0;
  float neg_step_size = 0;  // kSparseAdam
};

// The scalars for the push that makes the table's step count `step` (>= 1).
// REQUIRES: spec normalised.
StepScalars ComputeStepScalars(const OptimizerSpec& spec, int64_t step);

// One row's step, in place. `s0`, `s1`: element state rows (Adagrad: s0 = sum;
// SparseAdam: s0 = exp_avg, s1 = exp_avg_sq), `row_state`: the row's per-row
// state (row-wise Adagrad). Unused pointers may be null.
void ApplyRowStep(OptimizerKind kind, const StepScalars& k, const float* g, int64_t dim, float* w,
                  float* s0, float* s1, float* row_state);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_OPTIMIZER_H_
