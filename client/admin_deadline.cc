#include "client/admin_deadline.h"

#include <algorithm>
#include <limits>

namespace embedserve {

absl::Duration AdminTimeout(int64_t bytes, absl::Duration base) {
  return base + absl::Seconds(static_cast<double>(std::max<int64_t>(bytes, 0)) /
                              kAdminBytesPerSecond);
}

int64_t TableBytes(const v1::TableSpec& spec) {
  // Optimizer state per element, in float32 slots (core/optimizer.cc's
  // ElementStateSlots); ROWWISE_ADAGRAD keeps one float per row besides.
  int64_t slots = 0, row_extra = 0;
  switch (spec.optimizer().kind()) {
    case v1::OptimizerSpec::ADAGRAD:
      slots = 1;
      break;
    case v1::OptimizerSpec::SPARSE_ADAM:
      slots = 2;
      break;
    case v1::OptimizerSpec::ROWWISE_ADAGRAD:
      row_extra = 4;
      break;
    default:
      break;
  }
  const int64_t rows = std::max<int64_t>(spec.num_embeddings(), 0);
  const int64_t per_row = 4 * std::max<int64_t>(spec.embedding_dim(), 0) * (1 + slots) + row_extra;
  if (per_row != 0 && rows > std::numeric_limits<int64_t>::max() / per_row) {
    return std::numeric_limits<int64_t>::max();
  }
  return rows * per_row;
}

}  // namespace embedserve
