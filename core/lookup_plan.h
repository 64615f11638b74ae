#ifndef EMBEDSERVE_CORE_LOOKUP_PLAN_H_
#define EMBEDSERVE_CORE_LOOKUP_PLAN_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "core/gather.h"

namespace embedserve {

// The type of the values a lookup answers with. Rows are always gathered and
// pooled in float32; kFloat16 rounds the result to IEEE binary16 (nearest
// even, past the range -> +-inf) as the last step.
enum class OutputType { kFloat32, kFloat16 };

// One F.embedding query. The index tensor has `shape` (empty: 1-D,
// [len(ids)]), or is 0-d when `scalar` (exactly one id, no shape); the
// answer has the index's shape followed by [dim].
struct PlainLookup {
  absl::Span<const int64_t> ids;
  absl::Span<const int64_t> shape;
  bool scalar = false;
  OutputType output = OutputType::kFloat32;
};

// One F.embedding_bag query: bags by `offsets` (with include_last_offset)
// or by a 2-D `shape` [bags, bag_size] (see BagBounds), per-sample
// `weights` (kSum only). The answer is [bags, dim]. More than `max_bags`
// bags is ResourceExhausted, checked before anything is allocated.
struct PooledLookup {
  absl::Span<const int64_t> ids;
  absl::Span<const int64_t> offsets;
  bool include_last_offset = false;
  absl::Span<const int64_t> shape;
  PoolingMode mode = PoolingMode::kSum;
  absl::Span<const float> weights;
  OutputType output = OutputType::kFloat32;
  int64_t max_bags = int64_t{1} << 40;
};

// A lookup request of any number of plain and pooled queries: each query is
// validated in full when it is added (nothing runs, nothing is allocated for
// its answer), so that a caller can check a whole request, size its answer,
// and only then run it. Plain and pooled queries share this one path;
// callers never reach for the kernels.
//
// The plan borrows the spans of every query (ids, shape, offsets, weights):
// they must outlive it. It holds each query's table, so a table dropped
// meanwhile stays alive until the plan is gone.
//
// Thread-safety: Add is not; Run of different queries may run concurrently.
class LookupPlan {
 public:
  // Validates `query` against `table` and appends it; on error nothing is
  // appended. InvalidArgument: a scalar query without exactly one id or with
  // a shape; a shape that is negative or does not multiply to len(ids); a
  // bad id (named with its position); for pooled queries also bad offsets,
  // shape or weights (see BagBounds, CheckBagWeights). ResourceExhausted:
  // more than max_bags bags.
  absl::Status Add(std::shared_ptr<EmbeddingTable> table, const PlainLookup& query);
  absl::Status Add(std::shared_ptr<EmbeddingTable> table, const PooledLookup& query);
  // A plain query by words (a table loaded from word vectors): the words'
  // ids, which the plan keeps, stand for query.ids; then as Add.
  // InvalidArgument if query.ids is not empty ("give ids or words, not
  // both"); NotFound naming the unknown words, FailedPrecondition for a
  // table without a vocabulary (see EmbeddingTable::IdsForWords).
  absl::Status AddWords(std::shared_ptr<EmbeddingTable> table, absl::Span<const std::string> words,
                        PlainLookup query);

  int size() const { return static_cast<int>(queries_.size()); }
  EmbeddingTable& table(int q) const { return *queries_[q].table; }
  // Ids the query looks up.
  int64_t num_ids(int q) const { return static_cast<int64_t>(queries_[q].ids.size()); }
  // Rows of dim values in the answer: one per id (plain) or per bag (pooled).
  int64_t output_rows(int q) const { return queries_[q].output_rows; }
  OutputType output(int q) const { return queries_[q].output; }
  // The answer's shape (its last dimension is the table's dim) and size.
  const std::vector<int64_t>& output_shape(int q) const { return queries_[q].output_shape; }
  int64_t output_bytes(int q) const;

  // Writes query q's answer to `out` (output_bytes(q) bytes, any alignment;
  // row-major in output_shape(q)). Rows written while it runs are never
  // seen half-written (see EmbeddingTable). Errors are only those a lookup
  // can meet after validation (none for today's tables); `out` is then
  // unspecified.
  absl::Status Run(int q, void* out) const;

 private:
  struct Query {
    std::shared_ptr<EmbeddingTable> table;
    absl::Span<const int64_t> ids;
    // The ids of a query by words (AddWords); `ids` views them. Moving the
    // vector (when queries_ grows) keeps its buffer, so the view stays valid.
    std::vector<int64_t> word_ids;
    bool pooled = false;
    std::vector<int64_t> bounds;  // pooled: bag boundaries (BagBounds)
    PoolingMode mode = PoolingMode::kSum;
    absl::Span<const float> weights;
    OutputType output = OutputType::kFloat32;
    int64_t output_rows = 0;
    std::vector<int64_t> output_shape;
  };
  // Runs `query` into `out` (output_rows * dim float32 values).
  static absl::Status RunFloat32(const Query& query, float* out);

  std::vector<Query> queries_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_LOOKUP_PLAN_H_
