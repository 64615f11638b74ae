#ifndef EMBEDSERVE_CORE_INTERNAL_SHARDED_ROW_STORAGE_H_
#define EMBEDSERVE_CORE_INTERNAL_SHARDED_ROW_STORAGE_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "core/internal/sharded_buffer.h"
#include "core/row_storage.h"
#include "core/table_spec.h"

namespace embedserve::internal {

// Dense rows: every id in [0, num_embeddings) has a row, and its slot is the
// id. Rows are split into shards of 2^k contiguous ids (k chosen so that
// there are about spec.num_shards shards, or shards of about 256 MiB when it
// is 0): id r lives in shard r >> k at local index r & (2^k - 1), so that a
// later split across servers hands whole shards over. Each shard is one
// ShardedBuffer allocation; each row takes CompactRowStride(row_type, dim)
// bytes (float32: round_up(dim, 16) floats), so float rows start on a cache
// line and SIMD loads never run past a row (the padding is zero and never
// visible). Element-wise optimizer state is sharded the same way, in rows of
// round_up(dim, 16) floats; per-row state is one float per id.
//
// Thread-safety: as RowStorage.
class ShardedRowStorage final : public RowStorage {
 public:
  // Zero rows, and optimizer state at format.initial_state.
  // ResourceExhausted (naming the table) if memory cannot be had.
  // REQUIRES: spec passed NormalizeTableSpec.
  static absl::StatusOr<std::unique_ptr<ShardedRowStorage>> Create(const TableSpec& spec);

  // Bytes Create would allocate for `spec` (rows and optimizer state).
  // REQUIRES: spec passed NormalizeTableSpec.
  static int64_t EstimateBytes(const TableSpec& spec);

  const KernelRows& kernel_rows() const override { return kernel_rows_; }
  absl::Span<const int64_t> Resolve(absl::Span<const int64_t> ids,
                                    std::vector<int64_t>* scratch) const override {
    return ids;
  }
  int64_t SlotOf(int64_t id) const override { return id; }
  const uint8_t* Row(int64_t slot) const override {
    return reinterpret_cast<const uint8_t*>(rows_.Row(slot));
  }
  uint8_t* MutableRow(int64_t slot) override { return reinterpret_cast<uint8_t*>(rows_.Row(slot)); }
  void ReadRecord(int64_t slot, float* record) const override;
  void WriteRecord(int64_t slot, const float* record) override;

  int64_t num_slots() const override { return num_rows_; }
  int64_t row_bytes() const override { return rows_.bytes(); }
  int64_t state_bytes() const override;
  int num_shards() const override { return rows_.num_shards(); }
  int64_t rows_per_shard() const override { return int64_t{1} << shard_shift_; }

 private:
  ShardedRowStorage(const RowFormat& format, int64_t num_rows, int shard_shift);

  const int64_t num_rows_;
  const int shard_shift_;
  ShardedBuffer rows_;
  ShardedBuffer state0_, state1_;  // element-wise optimizer state slots
  std::vector<float> row_state_;   // per-row optimizer state
  std::vector<const uint8_t*> compact_shards_;
  KernelRows kernel_rows_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_SHARDED_ROW_STORAGE_H_
