#include "core/coalesce.h"

#include "absl/container/flat_hash_map.h"

namespace embedserve {

CoalescedGradients CoalesceGradients(absl::Span<const int64_t> ids, absl::Span<const float> grads,
                                     int64_t dim, std::optional<int64_t> padding_idx,
                                     bool scale_grad_by_freq) {
  CoalescedGradients out;
  absl::flat_hash_map<int64_t, int64_t> slot_of;
  slot_of.reserve(ids.size());
  std::vector<int32_t> count;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (padding_idx && ids[i] == *padding_idx) continue;
    auto [it, inserted] = slot_of.try_emplace(ids[i], static_cast<int64_t>(out.ids.size()));
    const float* g = grads.data() + i * dim;
    if (inserted) {
      out.ids.push_back(ids[i]);
      out.sums.insert(out.sums.end(), g, g + dim);
      count.push_back(1);
    } else {
      float* acc = out.sums.data() + it->second * dim;
      for (int64_t j = 0; j < dim; ++j) acc[j] += g[j];
      ++count[it->second];
    }
  }
  if (scale_grad_by_freq) {
    for (size_t u = 0; u < out.ids.size(); ++u) {
      if (count[u] == 1) continue;
      const float c = static_cast<float>(count[u]);
      for (int64_t j = 0; j < dim; ++j) out.sums[u * dim + j] /= c;
    }
  }
  return out;
}

CoalescedAssignment CoalesceAssignment(absl::Span<const int64_t> ids) {
  absl::flat_hash_map<int64_t, int64_t> last;
  last.reserve(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) last[ids[i]] = static_cast<int64_t>(i);
  CoalescedAssignment out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (last[ids[i]] == static_cast<int64_t>(i)) {
      out.ids.push_back(ids[i]);
      out.positions.push_back(static_cast<int64_t>(i));
    }
  }
  return out;
}

}  // namespace embedserve
