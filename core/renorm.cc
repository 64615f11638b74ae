#include "core/renorm.h"

#include <cmath>

namespace embedserve {

double RowNorm(const float* x, int64_t n, double p) {
  if (std::isinf(p)) {
    double m = 0;
    for (int64_t i = 0; i < n; ++i) m = std::fmax(m, std::fabs(static_cast<double>(x[i])));
    return m;
  }
  double s = 0;
  if (p == 1.0) {
    for (int64_t i = 0; i < n; ++i) s += std::fabs(static_cast<double>(x[i]));
    return s;
  }
  if (p == 2.0) {
    for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * x[i];
    return std::sqrt(s);
  }
  for (int64_t i = 0; i < n; ++i) s += std::pow(std::fabs(static_cast<double>(x[i])), p);
  return std::pow(s, 1.0 / p);
}

bool RenormRow(float* row, int64_t n, double max_norm, double p) {
  const double norm = RowNorm(row, n, p);
  if (!(norm > max_norm)) return false;
  // PyTorch multiplies the float row by the scale as a float scalar.
  const float scale = static_cast<float>(max_norm / (norm + 1e-7));
  for (int64_t i = 0; i < n; ++i) row[i] *= scale;
  return true;
}

}  // namespace embedserve
