#ifndef EMBEDSERVE_CORE_ROW_STORAGE_H_
#define EMBEDSERVE_CORE_ROW_STORAGE_H_

// Where a table's rows live, apart from what the table means.
//
// EmbeddingTable owns the semantics (ids, validation, renorm, pooling, the
// optimizer step); a RowStorage owns the memory: the encoded rows and the
// optimizer state beside them. Today's dense sharded rows
// (core/internal/sharded_row_storage.h) are one implementation; an id-keyed
// (dynamic) storage and a cluster shard's slot-local storage are meant to be
// others.
//
// Ids and slots. A table addresses rows by id; a storage keeps each row it
// has in a slot, and the gather kernels read slots through one RowView /
// CompactRowView. Resolve() maps a whole request's ids to slots at once (one
// virtual call per request, never one per id): dense storage returns the
// ids themselves (slot == id, nothing copied); an id-keyed storage would
// look them up into `scratch`. An id without a row maps to a slot outside
// [0, num_slots()), which the kernels report as a bad position.
//
// Thread-safety: const methods may run concurrently with each other; a
// mutating call (MutableRow, WriteRecord) may run concurrently with readers
// of other slots, and with readers of the same slot only under the table's
// seqlock (core/internal/row_seqlock.h), which the caller holds. Writers are
// serialised by the caller.

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "core/gather.h"
#include "core/table_spec.h"

namespace embedserve {

// How one row is encoded in memory and in a durable record.
struct RowFormat {
  int64_t dim = 0;
  RowType type = RowType::kFloat32;
  int64_t row_bytes = 0;       // bytes per row slot: CompactRowStride(type, dim)
  int element_slots = 0;       // optimizer state floats per element (Adagrad 1, SparseAdam 2)
  int row_slots = 0;           // optimizer state floats per row (row-wise Adagrad 1)
  float initial_state = 0.0f;  // every state float of a new row (initial_accumulator_value)

  // The table's format. REQUIRES: spec passed NormalizeTableSpec.
  static RowFormat For(const TableSpec& spec);

  // The durable record of a row (RowStore's unit): the row's dim floats
  // (decoded), then element_slots * dim floats of element state (slot by
  // slot), then row_slots floats of row state.
  int64_t record_floats() const { return dim * (1 + element_slots) + row_slots; }

  // The index of the first value of `record` that a row cannot keep: a row
  // value that is not finite or does not encode in `type` (FirstUnencodable),
  // or a state value that is not finite; -1 if there is none.
  int64_t FirstUnstorable(const float* record) const;
};

// What the gather kernels read: `rows` for float32 rows, `compact` for
// compact ones (is_compact), both over slots [0, num_slots).
struct KernelRows {
  RowView rows;
  CompactRowView compact;
  bool is_compact = false;
};

class RowStorage {
 public:
  explicit RowStorage(const RowFormat& format) : format_(format) {}
  virtual ~RowStorage() = default;
  RowStorage(const RowStorage&) = delete;
  RowStorage& operator=(const RowStorage&) = delete;

  const RowFormat& format() const { return format_; }

  // ---- Lookups: once per request.
  // The kernels' view of every slot. Valid until the next mutating call.
  virtual const KernelRows& kernel_rows() const = 0;
  // The slots of `ids` (see the file comment); the result is `ids` itself
  // or lives in `scratch`.
  virtual absl::Span<const int64_t> Resolve(absl::Span<const int64_t> ids,
                                            std::vector<int64_t>* scratch) const = 0;

  // ---- One row: writes, stable re-reads, persistence.
  // The slot of one id, or a value outside [0, num_slots()) if it has none.
  virtual int64_t SlotOf(int64_t id) const = 0;
  // REQUIRES: 0 <= slot < num_slots(). row_bytes() bytes, 64-byte aligned.
  virtual const uint8_t* Row(int64_t slot) const = 0;
  virtual uint8_t* MutableRow(int64_t slot) = 0;
  // The row's durable record (format().record_floats() floats) and back;
  // WriteRecord encodes the row in the row type. REQUIRES: valid slot.
  virtual void ReadRecord(int64_t slot, float* record) const = 0;
  virtual void WriteRecord(int64_t slot, const float* record) = 0;

  // ---- Size.
  // Slots the kernels may address (dense: num_embeddings).
  virtual int64_t num_slots() const = 0;
  // Bytes of the rows, and of the optimizer state beside them.
  virtual int64_t row_bytes() const = 0;
  virtual int64_t state_bytes() const = 0;
  // Rows are kept in num_shards() allocations of rows_per_shard() contiguous
  // ids each; 0 rows per shard where rows are not kept by id range.
  virtual int num_shards() const = 0;
  virtual int64_t rows_per_shard() const = 0;

 private:
  const RowFormat format_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_ROW_STORAGE_H_
