#ifndef EMBEDSERVE_CORE_INITIALIZER_H_
#define EMBEDSERVE_CORE_INITIALIZER_H_

#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/row_storage.h"
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

// OK if `values` can be a new table's rows (nn.Embedding.from_pretrained):
// num_embeddings * embedding_dim floats, row-major, all finite; else
// InvalidArgument naming the count or the first bad value (row and column).
absl::Status CheckInitialValues(const TableSpec& spec, absl::Span<const float> values);

// Writes the rows of a new table into `rows` (ids 0 .. num_embeddings - 1),
// encoded in their row type: `initial_values` when given (padding row
// included), else InitialValue with the padding row zero.
// REQUIRES: CheckInitialValues passed, or initial_values empty.
void FillInitialRows(const TableSpec& spec, absl::Span<const float> initial_values,
                     RowStorage& rows);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_INITIALIZER_H_
