#ifndef EMBEDSERVE_CORE_POOLING_H_
#define EMBEDSERVE_CORE_POOLING_H_

// The shape of a pooled (nn.EmbeddingBag) request, checked before anything
// runs: its bags and its per-sample weights. The pooling itself is the
// kernels' (core/gather.h, PooledFn).

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/gather.h"

namespace embedserve {

// Turns a pooled request's bag description into num_bags + 1 boundaries
// (BagArgs::bounds), as nn.EmbeddingBag reads it:
//  * offsets given: bag starts; offsets[0] must be 0, non-decreasing, each
//    <= num_ids. Without include_last_offset there are len(offsets) bags and
//    the last one ends at num_ids; with it, len(offsets) - 1 bags and the last
//    offset ends the last bag (ids past it belong to no bag, as in PyTorch).
//  * shape given instead ([bags, bag_size]): fixed-size bags; the product
//    must equal num_ids.
//  * neither: InvalidArgument.
// InvalidArgument names the offending field and position. ResourceExhausted
// if there would be more than `max_bags` bags: checked before anything is
// allocated (a 30-byte request can ask for [500000000, 0]).
absl::StatusOr<std::vector<int64_t>> BagBounds(int64_t num_ids, absl::Span<const int64_t> offsets,
                                               bool include_last_offset,
                                               absl::Span<const int64_t> shape,
                                               int64_t max_bags = int64_t{1} << 40);

// Checks a pooled request's per-sample weights against its ids and mode, as
// nn.EmbeddingBag: empty, or one finite weight per id, and only with kSum.
// InvalidArgument naming the problem (and the first non-finite position).
absl::Status CheckBagWeights(size_t num_ids, PoolingMode mode, absl::Span<const float> weights);

// Pools one bag from rows copied out of a table (`rows`: the bag's
// non-padding rows, packed, dim floats each; `weights`: empty or one per
// row) with the scalar reference kernel: exactly what a pooled kernel gives
// for that bag. For bags that must be recomputed from consistent copies.
void PoolCopiedBag(absl::Span<const float> rows, int64_t dim, PoolingMode mode,
                   absl::Span<const float> weights, float* out);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_POOLING_H_
