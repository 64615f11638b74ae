#include "core/optimizer.h"

#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace embedserve {

absl::StatusOr<OptimizerSpec> NormalizeOptimizerSpec(OptimizerSpec spec) {
  auto bad = [](const char* field, double v, const char* rule) {
    return absl::InvalidArgumentError(absl::StrCat("optimizer ", field, " ", rule, ", got ", v));
  };
  // float32 scalars: a value past FLT_MAX would turn into inf on the way.
  constexpr double kFloatMax = std::numeric_limits<float>::max();
  const bool adam = spec.kind == OptimizerKind::kSparseAdam;
  if (!spec.lr.has_value()) spec.lr = adam ? 1e-3 : 1e-2;
  if (adam ? !(*spec.lr > 0) : !(*spec.lr >= 0)) {
    return bad("lr", *spec.lr, adam ? "must be > 0" : "must be >= 0");
  }
  if (!(*spec.lr <= kFloatMax)) return bad("lr", *spec.lr, "must be a finite float32");
  if (!(spec.lr_decay >= 0) || !std::isfinite(spec.lr_decay)) {
    return bad("lr_decay", spec.lr_decay, "must be finite and >= 0");
  }
  if (!(spec.initial_accumulator_value >= 0) || !(spec.initial_accumulator_value <= kFloatMax)) {
    return bad("initial_accumulator_value", spec.initial_accumulator_value,
               "must be a finite float32 >= 0");
  }
  if (!spec.eps.has_value()) spec.eps = spec.kind == OptimizerKind::kSparseAdam ? 1e-8 : 1e-10;
  if (!(*spec.eps > 0) || !(*spec.eps <= kFloatMax)) {
    return bad("eps", *spec.eps, "must be a finite float32 > 0");
  }
  if (!(spec.beta1 >= 0 && spec.beta1 < 1)) return bad("beta1", spec.beta1, "must be in [0, 1)");
  if (!(spec.beta2 >= 0 && spec.beta2 < 1)) return bad("beta2", spec.beta2, "must be in [0, 1)");
  return spec;
}

int ElementStateSlots(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdagrad:
      return 1;
    case OptimizerKind::kSparseAdam:
      return 2;
    default:
      return 0;
  }
}

int64_t StateFloatsPerRow(OptimizerKind kind, int64_t dim) {
  return ElementStateSlots(kind) * dim + RowStateSlots(kind);
}

int RowStateSlots(OptimizerKind kind) { return kind == OptimizerKind::kRowWiseAdagrad ? 1 : 0; }

bool HasStepCount(OptimizerKind kind) {
  return kind == OptimizerKind::kAdagrad || kind == OptimizerKind::kSparseAdam;
}

StepScalars ComputeStepScalars(const OptimizerSpec& spec, int64_t step) {
  StepScalars k;
  k.eps = static_cast<float>(*spec.eps);
  switch (spec.kind) {
    case OptimizerKind::kSgd:
    case OptimizerKind::kRowWiseAdagrad:
      k.lr = static_cast<float>(*spec.lr);
      break;
    case OptimizerKind::kAdagrad:
      k.lr = static_cast<float>(*spec.lr / (1 + (step - 1) * spec.lr_decay));
      break;
    case OptimizerKind::kSparseAdam: {
      const double bc1 = 1 - std::pow(spec.beta1, static_cast<double>(step));
      const double bc2 = 1 - std::pow(spec.beta2, static_cast<double>(step));
      k.neg_step_size = static_cast<float>(-(*spec.lr * std::sqrt(bc2) / bc1));
      k.one_minus_beta1 = static_cast<float>(1 - spec.beta1);
      k.one_minus_beta2 = static_cast<float>(1 - spec.beta2);
      break;
    }
  }
  return k;
}

void ApplyRowStep(OptimizerKind kind, const StepScalars& k, const float* g, int64_t dim, float* w,
                  float* s0, float* s1, float* row_state) {
  switch (kind) {
    case OptimizerKind::kSgd:
      for (int64_t j = 0; j < dim; ++j) w[j] += -k.lr * g[j];
      break;
    case OptimizerKind::kAdagrad:
      for (int64_t j = 0; j < dim; ++j) {
        s0[j] += g[j] * g[j];
        w[j] += -k.lr * (g[j] / (std::sqrt(s0[j]) + k.eps));
      }
      break;
    case OptimizerKind::kRowWiseAdagrad: {
      float sum_sq = 0;
      for (int64_t j = 0; j < dim; ++j) sum_sq += g[j] * g[j];
      *row_state += sum_sq / static_cast<float>(dim);
      const float multiplier = k.lr / (std::sqrt(*row_state) + k.eps);
      for (int64_t j = 0; j < dim; ++j) w[j] -= multiplier * g[j];
      break;
    }
    case OptimizerKind::kSparseAdam:
      for (int64_t j = 0; j < dim; ++j) {
        const float m_update = (g[j] - s0[j]) * k.one_minus_beta1;
        const float v_update = (g[j] * g[j] - s1[j]) * k.one_minus_beta2;
        s0[j] += m_update;
        s1[j] += v_update;
        w[j] += k.neg_step_size * (s0[j] / (std::sqrt(s1[j]) + k.eps));
      }
      break;
  }
}

}  // namespace embedserve
