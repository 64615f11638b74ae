#include "core/row_storage.h"

#include <cmath>

#include "core/optimizer.h"
#include "core/row_codec.h"

namespace embedserve {

RowFormat RowFormat::For(const TableSpec& spec) {
  RowFormat f;
  f.dim = spec.embedding_dim;
  f.type = spec.row_type;
  f.row_bytes = CompactRowStride(spec.row_type, spec.embedding_dim);
  f.element_slots = ElementStateSlots(spec.optimizer.kind);
  f.row_slots = RowStateSlots(spec.optimizer.kind);
  // SparseAdam's moments start at 0 whatever initial_accumulator_value says.
  if (spec.optimizer.kind == OptimizerKind::kAdagrad ||
      spec.optimizer.kind == OptimizerKind::kRowWiseAdagrad) {
    f.initial_state = static_cast<float>(spec.optimizer.initial_accumulator_value);
  }
  return f;
}

int64_t RowFormat::FirstUnstorable(const float* record) const {
  const int64_t bad = FirstUnencodable(type, record, dim);
  if (bad >= 0) return bad;
  for (int64_t j = dim; j < record_floats(); ++j) {
    if (!std::isfinite(record[j])) return j;
  }
  return -1;
}

}  // namespace embedserve
