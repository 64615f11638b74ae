#include "core/internal/sharded_row_storage.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "core/row_codec.h"
#include "base/status_macros.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kRowAlignFloats = 16;  // one 64-byte cache line
constexpr int64_t kDefaultShardBytes = int64_t{256} << 20;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Floats per element-state row: whole cache lines, as float32 rows.
int64_t StateStride(int64_t dim) { return RoundUp(dim, kRowAlignFloats); }

// log2 of the rows per shard for `spec`.
int ShardShift(const TableSpec& spec) {
  const int64_t n = spec.num_embeddings;
  int64_t shards = spec.num_shards;
  if (shards == 0) {
    const int64_t bytes = n * CompactRowStride(spec.row_type, spec.embedding_dim);
    shards =
        std::clamp<int64_t>((bytes + kDefaultShardBytes - 1) / kDefaultShardBytes, 1, kMaxShards);
  }
  const uint64_t per_shard = static_cast<uint64_t>((n + shards - 1) / shards);
  return std::bit_width(std::bit_ceil(per_shard)) - 1;
}

}  // namespace

ShardedRowStorage::ShardedRowStorage(const RowFormat& format, int64_t num_rows, int shard_shift)
    : RowStorage(format), num_rows_(num_rows), shard_shift_(shard_shift) {}

int64_t ShardedRowStorage::EstimateBytes(const TableSpec& spec) {
  const RowFormat f = RowFormat::For(spec);
  return spec.num_embeddings * f.row_bytes +
         spec.num_embeddings * static_cast<int64_t>(sizeof(float)) *
             (StateStride(f.dim) * f.element_slots + f.row_slots);
}

absl::StatusOr<std::unique_ptr<ShardedRowStorage>> ShardedRowStorage::Create(
    const TableSpec& spec) {
  const RowFormat f = RowFormat::For(spec);
  const int64_t n = spec.num_embeddings;
  std::unique_ptr<ShardedRowStorage> s(new ShardedRowStorage(f, n, ShardShift(spec)));
  const std::string what = absl::StrCat("table '", spec.name, "'");
  ASSIGN_OR_RETURN(s->rows_, ShardedBuffer::Allocate(n, f.row_bytes / 4, s->shard_shift_, what));
  const int64_t state_stride = StateStride(f.dim);
  // Zero bits need no fill: the buffers are zero-filled.
  const bool fill_state = std::bit_cast<uint32_t>(f.initial_state) != 0;
  for (int slot = 0; slot < f.element_slots; ++slot) {
    ShardedBuffer& buffer = slot == 0 ? s->state0_ : s->state1_;
    ASSIGN_OR_RETURN(buffer, ShardedBuffer::Allocate(n, state_stride, s->shard_shift_,
                                                     what + " optimizer state"));
    if (fill_state) {
      for (int64_t r = 0; r < n; ++r) {
        std::fill(buffer.Row(r), buffer.Row(r) + state_stride, f.initial_state);
      }
    }
  }
  if (f.row_slots > 0) s->row_state_.assign(n, f.initial_state);

  KernelRows& k = s->kernel_rows_;
  k.rows = RowView{s->rows_.shard_ptrs(), s->shard_shift_, n, f.dim, f.row_bytes / 4};
  for (int i = 0; i < s->rows_.num_shards(); ++i) {
    s->compact_shards_.push_back(reinterpret_cast<const uint8_t*>(s->rows_.shard_ptrs()[i]));
  }
  k.compact =
      CompactRowView{s->compact_shards_.data(), s->shard_shift_, n, f.dim, f.row_bytes, f.type};
  k.is_compact = f.type != RowType::kFloat32;
  return s;
}

int64_t ShardedRowStorage::state_bytes() const {
  return state0_.bytes() + state1_.bytes() +
         static_cast<int64_t>(row_state_.size() * sizeof(float));
}

void ShardedRowStorage::ReadRecord(int64_t slot, float* dst) const {
  const int64_t dim = format().dim;
  DecodeRow(format().type, Row(slot), dim, dst);
  dst += dim;
  if (!state0_.empty()) {
    std::memcpy(dst, state0_.Row(slot), dim * sizeof(float));
    dst += dim;
  }
  if (!state1_.empty()) {
    std::memcpy(dst, state1_.Row(slot), dim * sizeof(float));
    dst += dim;
  }
  if (!row_state_.empty()) *dst = row_state_[slot];
}

void ShardedRowStorage::WriteRecord(int64_t slot, const float* src) {
  const int64_t dim = format().dim;
  EncodeRow(format().type, src, dim, MutableRow(slot));
  src += dim;
  if (!state0_.empty()) {
    std::memcpy(state0_.Row(slot), src, dim * sizeof(float));
    src += dim;
  }
  if (!state1_.empty()) {
    std::memcpy(state1_.Row(slot), src, dim * sizeof(float));
    src += dim;
  }
  if (!row_state_.empty()) row_state_[slot] = *src;
}

}  // namespace embedserve::internal
