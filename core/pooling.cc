#include "core/pooling.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace embedserve {

absl::StatusOr<std::vector<int64_t>> BagBounds(int64_t num_ids, absl::Span<const int64_t> offsets,
                                               bool include_last_offset,
                                               absl::Span<const int64_t> shape, int64_t max_bags) {
  auto too_many = [&](int64_t bags) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the request asks for ", bags, " bags; the limit is ", max_bags,
                     " (the response size limit over the row width)"));
  };
  std::vector<int64_t> bounds;
  if (!offsets.empty()) {
    if (!shape.empty()) {
      return absl::InvalidArgumentError("give either offsets or a 2-D shape, not both");
    }
    if (offsets[0] != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("offsets[0] must be 0 (the first bag starts at id 0), got ", offsets[0]));
    }
    for (size_t i = 0; i < offsets.size(); ++i) {
      if (offsets[i] > num_ids) {
        return absl::InvalidArgumentError(absl::StrCat(
            "offsets[", i, "] = ", offsets[i], " is past the end of ids (", num_ids, " ids)"));
      }
      if (i > 0 && offsets[i] < offsets[i - 1]) {
        return absl::InvalidArgumentError(absl::StrCat("offsets must be non-decreasing: offsets[",
                                                       i, "] = ", offsets[i], " < offsets[", i - 1,
                                                       "] = ", offsets[i - 1]));
      }
    }
    const int64_t bags = static_cast<int64_t>(offsets.size()) - (include_last_offset ? 1 : 0);
    if (bags > max_bags) return too_many(bags);
    bounds.assign(offsets.begin(), offsets.end());
    if (!include_last_offset) bounds.push_back(num_ids);
    if (bounds.size() < 2) {
      // include_last_offset with a single offset: zero bags.
      bounds.assign(1, 0);
    }
    return bounds;
  }
  if (shape.size() == 2) {
    if (shape[0] < 0 || shape[1] < 0 ||
        (shape[1] != 0 && shape[0] > num_ids / std::max<int64_t>(shape[1], 1)) ||
        shape[0] * shape[1] != num_ids) {
      return absl::InvalidArgumentError(absl::StrCat("shape [", absl::StrJoin(shape, ", "),
                                                     "] does not match ", num_ids, " ids"));
    }
    if (shape[0] > max_bags) return too_many(shape[0]);
    bounds.resize(shape[0] + 1);
    for (int64_t b = 0; b <= shape[0]; ++b) bounds[b] = b * shape[1];
    return bounds;
  }
  if (!shape.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("a pooled query's shape must be 2-D [bags, bag_size], got [",
                     absl::StrJoin(shape, ", "), "]"));
  }
  return absl::InvalidArgumentError(
      "a pooled query needs offsets (bag starts) or a 2-D shape [bags, bag_size]");
}

absl::Status CheckBagWeights(size_t num_ids, PoolingMode mode, absl::Span<const float> weights) {
  if (!weights.empty()) {
    if (mode != PoolingMode::kSum) {
      return absl::InvalidArgumentError(
          "per_sample_weights are only supported with mode SUM (as nn.EmbeddingBag)");
    }
    if (weights.size() != num_ids) {
      return absl::InvalidArgumentError(absl::StrCat("per_sample_weights has ", weights.size(),
                                                     " entries, expected one per id (", num_ids,
                                                     ")"));
    }
    for (size_t i = 0; i < weights.size(); ++i) {
      if (!std::isfinite(weights[i])) {
        return absl::InvalidArgumentError(absl::StrCat("per_sample_weights[", i, "] is ",
                                                       weights[i], "; weights must be finite"));
      }
    }
  }
  return absl::OkStatus();
}

void PoolCopiedBag(absl::Span<const float> rows, int64_t dim, PoolingMode mode,
                   absl::Span<const float> weights, float* out) {
  const int64_t n = static_cast<int64_t>(rows.size()) / dim;
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) ids[i] = i;
  const int64_t bounds[2] = {0, n};
  const float* base = rows.data();
  // One shard holding every copied row.
  const RowView view{&base, /*shard_shift=*/62, n, dim, dim};
  const BagArgs bag{
      ids.data(),        n, bounds, 1, mode, weights.empty() ? nullptr : weights.data(),
      /*padding_idx=*/-1};
  KernelsFor(SimdLevel::kScalar).pooled(view, bag, out);
}

}  // namespace embedserve
