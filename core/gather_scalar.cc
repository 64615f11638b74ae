// Portable reference kernels: the fallback and the test oracle for the SIMD
// levels. Kept deliberately simple; the compiler may auto-vectorise them for
// the baseline ISA only (no ISA flags here).
#include <algorithm>
#include <cstring>
#include <limits>

#include "core/internal/gather_kernels.h"

namespace embedserve::internal {

int64_t GatherScalar(const RowView& t, const int64_t* ids, int64_t n, float* out) {
  const int64_t dim = t.dim;
  for (int64_t i = 0; i < n; ++i) {
    if (i + kPrefetchDistance < n) PrefetchRow(t, ids[i + kPrefetchDistance]);
    if (!IdInRange(t, ids[i])) return i;
    std::memcpy(out + i * dim, t.Row(ids[i]), dim * sizeof(float));
  }
  return kAllValid;
}

int64_t PooledScalar(const RowView& t, const BagArgs& a, float* out) {
  const int64_t dim = t.dim;
  for (int64_t b = 0; b < a.num_bags; ++b) {
    float* o = out + b * dim;
    const bool is_max = a.mode == PoolingMode::kMax;
    std::fill(o, o + dim, is_max ? -std::numeric_limits<float>::infinity() : 0.0f);
    int64_t count = 0;
    for (int64_t i = a.bounds[b]; i < a.bounds[b + 1]; ++i) {
      if (i + kPrefetchDistance < a.num_ids) PrefetchRow(t, a.ids[i + kPrefetchDistance]);
      const int64_t id = a.ids[i];
      if (!IdInRange(t, id)) return i;
      if (id == a.padding_idx) continue;
      ++count;
      const float* row = t.Row(id);
      if (is_max) {
        for (int64_t d = 0; d < dim; ++d) o[d] = std::max(o[d], row[d]);
      } else {
        const float w = a.weights ? a.weights[i] : 1.0f;
        for (int64_t d = 0; d < dim; ++d) o[d] += w * row[d];
      }
    }
    if (count == 0) {
      std::fill(o, o + dim, 0.0f);
    } else if (a.mode == PoolingMode::kMean) {
      const float c = static_cast<float>(count);
      for (int64_t d = 0; d < dim; ++d) o[d] /= c;
    }
  }
  return kAllValid;
}

}  // namespace embedserve::internal
