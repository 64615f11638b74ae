#ifndef EMBEDSERVE_CORE_INITIALIZER_H_
#define EMBEDSERVE_CORE_INITIALIZER_H_

// A new table's rows: a pure function of (spec.initializer, row, col), so
// that any row's initial value can be recomputed alone (log replay, tables
// whose rows appear on first use) and rows can be filled in any order, on
// any thread, at any SIMD level, with the same bits.
//
// Generators (InitializerSpec::generator; a table's spec records which):
//   1: SplitMix64 of (seed, row * embedding_dim + col), Box-Muller in double
//      with libm's log / cos, one value at a time. Kept bit for bit
//      for tables made before generator 2.
//   2: Philox4x32-10 (torch's and cuRAND's GPU generator) of the counter
//      {col / 4, 0, row} under the key seed, four values a block; Box-Muller
//      in float32 with our own polynomial log / sin / cos, identical at every
//      SIMD level (core/internal/init_kernels.h has the exact recipe). Does
//      not depend on embedding_dim: column c of a row is the same whatever
//      the table's width.
// Distributions:
//   kNormal:  N(mean, std)
//   kUniform: U[a, b)   (generator 2 never returns float(b) when float(a) <
//                        float(b); generator 1 may, by rounding)
//   kXavierUniform: U[-r, r), r = sqrt(6 / (num_embeddings + embedding_dim))
//                   (torch fan_in = embedding_dim, fan_out = num_embeddings)
//   kZeros, kConstant: every value 0 or `value`.

#include <cstdint>
#include <optional>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/internal/init_kernels.h"
#include "core/row_storage.h"
#include "core/table_spec.h"

namespace embedserve {

class LookupParallelism;

// The initial rows of any ids of a table, for dynamic tables (rows made on
// first use) and replay. Built once per table; Fill is thread-safe,
// allocation-free, and runs the dispatched init kernel
// (core/internal/init_kernels.h) so that it gives the same bits at every
// SIMD level (the level active when Fill runs).
class RowInitializer {
 public:
  // REQUIRES: spec passed NormalizeTableSpec. num_embeddings is read only
  // by kXavierUniform (its bound) and by generator 1 (nothing: it is for
  // dense tables, whose ids are rows).
  explicit RowInitializer(const TableSpec& spec);

  // out[i * dim .. (i + 1) * dim) = the initial row of ids[i]: InitialValue
  // of each column for row = static_cast<uint64_t>(ids[i]) (any int64 id:
  // generator 2 keys the row by its 64 bits), or zeros when ids[i] ==
  // spec.padding_idx. The same values as InitialRow for
  // 0 <= id < num_embeddings. `out` holds ids.size() * embedding_dim floats.
  void Fill(absl::Span<const int64_t> ids, float* out) const;

  int64_t dim() const { return dim_; }

 private:
  enum class Mode { kConstant, kGenerator1, kPhilox };

  const TableSpec spec_;  // generator 1 reads it value by value
  const int64_t dim_;
  const int64_t blocks_;  // generator 2: 4-value blocks a row
  Mode mode_ = Mode::kConstant;
  float constant_ = 0.0f;
  internal::InitParams params_;
};

// Value of element `col` of row `row` of a new table, by the spec's
// generator (0: the current one). The initializer's value: a padding row is
// not zeroed here. REQUIRES: 0 <= col < embedding_dim, row >= 0.
float InitialValue(const TableSpec& spec, int64_t row, int64_t col);

// Row `row` as FillInitialRows writes it before encoding: InitialValue of
// each column, or zeros for the padding row. `out` holds embedding_dim
// floats. REQUIRES: 0 <= row < num_embeddings.
void InitialRow(const TableSpec& spec, int64_t row, absl::Span<float> out);

// OK if `values` can be a new table's rows (nn.Embedding.from_pretrained):
// num_embeddings * embedding_dim floats, row-major, all finite; else
// InvalidArgument naming the count or the first bad value (row and column).
absl::Status CheckInitialValues(const TableSpec& spec, absl::Span<const float> values);

// Writes the rows of a new table into `rows` (ids 0 .. num_embeddings - 1),
// encoded in their row type: `initial_values` when given (padding row
// included), else InitialRow. Each row is written once; optimizer state is
// not touched (RowStorage implementations create it initialised).
// With `parallelism` (may be null: this thread only), rows are filled in
// pieces on its pool and this thread, in rounds of a few milliseconds each so
// that lookups queued on the same pool wait at most one round. The result is
// the same bytes either way, and at every SIMD level.
// REQUIRES: spec passed NormalizeTableSpec; CheckInitialValues passed, or
// initial_values empty; nothing else uses `rows` meanwhile.
void FillInitialRows(const TableSpec& spec, absl::Span<const float> initial_values,
                     RowStorage& rows);
void FillInitialRows(const TableSpec& spec, absl::Span<const float> initial_values,
                     RowStorage& rows, LookupParallelism* parallelism);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_INITIALIZER_H_
