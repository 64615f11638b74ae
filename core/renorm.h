#ifndef EMBEDSERVE_CORE_RENORM_H_
#define EMBEDSERVE_CORE_RENORM_H_

#include <cstdint>

namespace embedserve {

// The p-norm of x[0:n], accumulated in double:
//   p == inf: max |x_i|;  p == 1: sum |x_i|;  p == 2: sqrt(sum x_i^2);
//   otherwise (sum |x_i|^p)^(1/p).
double RowNorm(const float* x, int64_t n, double p);

// torch.embedding_renorm_ for one row:
//   norm = RowNorm(row, n, p)
//   if norm > max_norm: row *= float(max_norm / (norm + 1e-7))
// Returns true when the row changed.
bool RenormRow(float* row, int64_t n, double max_norm, double p);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_RENORM_H_
