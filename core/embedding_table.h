#ifndef EMBEDSERVE_CORE_EMBEDDING_TABLE_H_
#define EMBEDSERVE_CORE_EMBEDDING_TABLE_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/gather.h"
#include "core/table_spec.h"

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
// InvalidArgument names the offending field and position.
absl::StatusOr<std::vector<int64_t>> BagBounds(int64_t num_ids,
                                               absl::Span<const int64_t> offsets,
                                               bool include_last_offset,
                                               absl::Span<const int64_t> shape);

// One embedding table: num_embeddings rows of embedding_dim float32, with the
// semantics of torch.nn.Embedding (see TableSpec).
//
// Memory layout: rows are split into shards of 2^k contiguous rows (k chosen
// so that there are about spec.num_shards shards, or shards of about 256 MiB
// when it is 0): row r lives in shard r >> k at local index r & (2^k - 1).
// Contiguous ranges keep a later split across servers a matter of handing
// whole shards over. Each shard is one 64-byte-aligned allocation; each row
// takes round_up(dim, 16) floats so that every row starts on a cache line and
// SIMD loads never straddle rows (the padding is zero and never visible).
//
// Thread-safety: all methods are safe to call concurrently. Lookups share a
// reader lock; AssignRows, and lookups on a max_norm table (which renormalise
// rows in place), take it exclusively, so a lookup never sees a half-written
// row.
class EmbeddingTable {
 public:
  // Builds a table. With `initial_values` (num_embeddings * embedding_dim
  // floats, row-major; nn.Embedding.from_pretrained) the rows are those
  // values, padding row included; otherwise the initializer fills them and the
  // padding row is zero.
  // InvalidArgument: bad spec, wrong number of values, a non-finite value.
  // ResourceExhausted: the memory cannot be allocated.
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Create(
      const TableSpec& spec, absl::Span<const float> initial_values = {});

  // Bytes Create would allocate for `spec`, for admission checks.
  // REQUIRES: spec passed NormalizeTableSpec.
  static int64_t EstimateBytes(const TableSpec& spec);

  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  // Normalised spec (padding_idx >= 0).
  const TableSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  int64_t dim() const { return spec_.embedding_dim; }
  int64_t num_rows() const { return spec_.num_embeddings; }
  int num_shards() const { return static_cast<int>(shards_.size()); }
  int64_t rows_per_shard() const { return int64_t{1} << shard_shift_; }
  int64_t bytes_used() const { return bytes_; }
  // Bumped by every call that changes rows (assign, renorm).
  int64_t version() const { return version_.load(std::memory_order_acquire); }

  // OK if every id is in [0, num_rows); else InvalidArgument naming the first
  // bad id and its position. Lookups check ids themselves; this lets a caller
  // validate a multi-table request before changing anything.
  absl::Status CheckIds(absl::Span<const int64_t> ids) const;

  // Checks a pooled request's weights against its ids and mode (see
  // LookupPooled).
  static absl::Status CheckBagWeights(size_t num_ids, PoolingMode mode,
                                      absl::Span<const float> weights);

  // F.embedding: out[i] = row(ids[i]). With max_norm, the referenced rows are
  // first renormalised in place (torch.embedding_renorm_).
  // REQUIRES: out.size() == ids.size() * dim().
  // InvalidArgument (nothing changed) if an id is out of [0, num_rows): the
  // message names the id and its position.
  absl::Status Lookup(absl::Span<const int64_t> ids, absl::Span<float> out);

  // F.embedding_bag with bags given by `bounds` (see BagBounds); padding_idx
  // entries are skipped; empty bags give zeros. `weights` is empty or one per
  // id, and only allowed with kSum.
  // REQUIRES: out.size() == (bounds.size() - 1) * dim(), bounds valid.
  // InvalidArgument (nothing changed): bad id (named with its position),
  // weights of the wrong length or with a mode other than kSum, non-finite
  // weights.
  absl::Status LookupPooled(absl::Span<const int64_t> ids, absl::Span<const int64_t> bounds,
                            PoolingMode mode, absl::Span<const float> weights,
                            absl::Span<float> out);

  // weight[ids[i]] = values[i*dim : (i+1)*dim], padding row included and on
  // frozen tables too. With duplicate ids the last one wins. Returns the new
  // version. InvalidArgument (nothing changed): bad id, wrong number of
  // values, non-finite value (each named with its position).
  absl::StatusOr<int64_t> AssignRows(absl::Span<const int64_t> ids,
                                     absl::Span<const float> values);

 private:
  struct FreeDeleter {
    void operator()(float* p) const { std::free(p); }
  };

  explicit EmbeddingTable(const TableSpec& spec);
  absl::Status Allocate();
  float* MutableRow(int64_t id) {
    return shards_[id >> shard_shift_].get() + (id & (rows_per_shard() - 1)) * stride_;
  }
  absl::Status BadIdError(absl::Span<const int64_t> ids, int64_t position) const;
  // Runs kernel() (returning kAllValid or a bad position) under the lock a
  // read needs: shared, or exclusive with the renorm first on max_norm tables.
  template <typename Kernel>
  absl::Status ReadRows(absl::Span<const int64_t> ids, Kernel kernel);
  // REQUIRES: mu_ held exclusively, ids valid.
  void RenormReferenced(absl::Span<const int64_t> ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TableSpec spec_;
  const int64_t stride_;  // floats per row, multiple of 16
  int shard_shift_ = 0;
  int64_t bytes_ = 0;
  // Shard buffers are fixed at creation; their contents are guarded by mu_
  // (shared for reads, exclusive for writes).
  std::vector<std::unique_ptr<float, FreeDeleter>> shards_;
  std::vector<const float*> shard_ptrs_;
  RowView view_;
  mutable absl::Mutex mu_;
  std::atomic<int64_t> version_{0};
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_EMBEDDING_TABLE_H_
