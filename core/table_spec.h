#ifndef EMBEDSERVE_CORE_TABLE_SPEC_H_
#define EMBEDSERVE_CORE_TABLE_SPEC_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/gather.h"
#include "core/optimizer.h"

namespace embedserve {

// How a new table's rows are filled. Deterministic: the same spec (seed
// included) gives bit-identical rows, whatever the sharding.
enum class InitKind { kNormal, kUniform, kZeros, kConstant, kXavierUniform };

struct InitializerSpec {
  InitKind kind = InitKind::kNormal;  // default N(0, 1), as nn.Embedding
  double mean = 0.0;                  // kNormal
  double std = 1.0;                   // kNormal, >= 0
  double a = 0.0;                     // kUniform lower bound
  double b = 1.0;                     // kUniform upper bound, >= a
  double value = 0.0;                 // kConstant
  uint64_t seed = 0;
  // Which generator turns (seed, row, col) into values (core/initializer.h):
  // 1 = SplitMix64 with double Box-Muller (every table made before generator
  // 2; a stored table without the field is 1), 2 = Philox4x32-10 with float
  // Box-Muller. 0 means the current one (kCurrentInitGenerator);
  // NormalizeTableSpec replaces it, so a table's spec always names the
  // generator that made its rows.
  uint32_t generator = 0;
};

inline constexpr uint32_t kCurrentInitGenerator = 2;

// A dynamic table (issue 15): rows keyed by any int64 id, made by the first
// push that passes admission, evicted by updates only (never by reads or
// the clock), so that servers applying the same updates hold the same rows.
// An id without a row reads as its initial value (InitialValue of the id as
// a 64-bit row: the same on every server, restart and SIMD level), or as
// zeros with unseen_zeros. A lookup never makes a row.
struct DynamicSpec {
  // Most rows stored; when full, a newly admitted id evicts the least
  // recently updated row (core/internal/dynamic_row_storage.h says why LRU).
  // 0: no limit.
  int64_t max_rows = 0;
  // A row not updated by any of the table's last ttl_steps pushes goes
  // (checked at each push). 0: rows never expire.
  int64_t ttl_steps = 0;
  // An id gets a row at its admit_after-th push (counted in a bounded
  // count-min sketch); 0 or 1: at its first push. At most 255.
  int32_t admit_after = 0;
  // Lookups of ids without a row answer zeros instead of the initial value.
  bool unseen_zeros = false;
};

// The spec of one table, mirroring torch.nn.Embedding's constructor.
struct TableSpec {
  std::string name;            // [A-Za-z0-9_.-]{1,128}
  int64_t num_embeddings = 0;  // > 0
  int64_t embedding_dim = 0;   // > 0, <= kMaxEmbeddingDim
  // Row that reads as given at creation (zeros, unless initial values are
  // given) and that pooling skips. Negative counts from the end as in PyTorch;
  // NormalizeTableSpec makes it non-negative.
  std::optional<int64_t> padding_idx;
  // When set, a lookup first scales every referenced row whose norm_type-norm
  // exceeds max_norm by max_norm / (norm + 1e-7), in place, as
  // torch.embedding_renorm_.
  std::optional<double> max_norm;
  double norm_type = 2.0;  // p of the p-norm; > 0, may be +inf
  bool frozen = false;     // from_pretrained(freeze=True): no gradient moves it
  // As nn.Embedding: a push divides each id's summed gradient by the number
  // of times the id occurs in that push.
  bool scale_grad_by_freq = false;
  // The step a gradient push applies (see core/optimizer.h).
  OptimizerSpec optimizer;
  // How rows are stored: float32, or compact (core/row_codec.h), decoded in
  // the gather kernels. A write (assign, push, renorm) to a compact row
  // computes in float32 and stores the result re-encoded; optimizer state
  // stays float32.
  RowType row_type = RowType::kFloat32;
  InitializerSpec initializer;
  // Requested shard count; 0 picks one from the table's size. See
  // EmbeddingTable for how rows map to shards.
  int32_t num_shards = 0;
  // Set: a dynamic table (see DynamicSpec). num_embeddings is then 0 (ids
  // have no range), padding_idx may be any id, and num_shards is 0.
  std::optional<DynamicSpec> dynamic;
};

inline constexpr int64_t kMaxEmbeddingDim = 1 << 16;
// 2^40 rows: keeps every byte count of a table (rows x padded dim x state
// slots x 4) far inside int64; memory limits bite long before.
inline constexpr int64_t kMaxNumEmbeddings = int64_t{1} << 40;
inline constexpr int32_t kMaxShards = 4096;

// The most rows a dynamic table can keep (its slots are 32-bit).
inline constexpr int64_t kMaxDynamicRows = int64_t{1} << 31;

// Checks every field and returns the spec with padding_idx made
// non-negative (dense tables; a dynamic table's padding_idx is an id as it
// is). InvalidArgument names the first bad field.
absl::StatusOr<TableSpec> NormalizeTableSpec(TableSpec spec);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_TABLE_SPEC_H_
