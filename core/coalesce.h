#ifndef EMBEDSERVE_CORE_COALESCE_H_
#define EMBEDSERVE_CORE_COALESCE_H_

// Turning a batch of per-id updates into one update per distinct row, before
// any row is touched (outside the table's lock). What a push or an assign
// applies is exactly the result: this is the unit an update log records.

#include <cstdint>
#include <optional>
#include <vector>

#include "absl/types/span.h"

namespace embedserve {

// A push's sparse gradient coalesced as nn.Embedding's backward leaves it
// for the optimizer (a sparse gradient, coalesced):
//   ids:  the distinct ids != padding_idx, in order of first occurrence
//   sums: ids.size() * dim floats; sums[u] = sum of the gradients of ids[u],
//         added in push order (float32), then divided by its number of
//         occurrences when scale_grad_by_freq
// Padding entries are dropped (their gradient never reaches the row).
struct CoalescedGradients {
  std::vector<int64_t> ids;
  std::vector<float> sums;
};

// REQUIRES: grads.size() == ids.size() * dim. padding_idx: none when unset
// (any int64 may be an id: dynamic tables).
CoalescedGradients CoalesceGradients(absl::Span<const int64_t> ids, absl::Span<const float> grads,
                                     int64_t dim, std::optional<int64_t> padding_idx,
                                     bool scale_grad_by_freq);

// The distinct ids of an assignment, the last occurrence of an id winning:
//   ids:       in order of their last occurrence
//   positions: positions[u] = the position in the request of ids[u]'s last
//              occurrence (its values are values[positions[u] * dim ...])
struct CoalescedAssignment {
  std::vector<int64_t> ids;
  std::vector<int64_t> positions;
};

CoalescedAssignment CoalesceAssignment(absl::Span<const int64_t> ids);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_COALESCE_H_
