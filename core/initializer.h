#ifndef EMBEDSERVE_CORE_INITIALIZER_H_
#define EMBEDSERVE_CORE_INITIALIZER_H_

#include <cstdint>

#include "core/table_spec.h"

namespace embedserve {

// Value of element `col` of row `row` of a new table. A pure function of
// (spec.initializer, num_embeddings, embedding_dim, row, col): counter-based
// (SplitMix64 of seed and element index), so the same spec gives the same
// table however it is sharded or in whatever order rows are filled.
//   kNormal:  Box-Muller N(mean, std)
//   kUniform: U[a, b)
//   kXavierUniform: U[-r, r), r = sqrt(6 / (num_embeddings + embedding_dim))
//                   (torch fan_in = embedding_dim, fan_out = num_embeddings)
float InitialValue(const TableSpec& spec, int64_t row, int64_t col);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_INITIALIZER_H_
