#ifndef EMBEDSERVE_CORE_ROW_STORE_H_
#define EMBEDSERVE_CORE_ROW_STORE_H_

// The port through which tables are made durable. core/ defines it and
// writes through it; storage/ implements it (RocksDB). Memory is the serving
// copy, the store the durable one: a table change is acknowledged only after
// the store accepted it.
//
// A table's durable state is its metadata (StoredTable) and one record per
// row: the row's embedding_dim floats followed by its optimizer state
// (element-wise slots, dim floats each, then per-row slots), see
// EmbeddingTable::record_floats().
//
// Implementations must be thread-safe.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/table_spec.h"
#include "core/update_log.h"

namespace embedserve {

struct StoredTable {
  TableSpec spec;       // normalised; frozen and optimizer as last set
  int64_t version = 0;  // EmbeddingTable::version()
  int64_t step = 0;     // EmbeddingTable::optimizer_step()
  int64_t floats_per_record = 0;
  // One word per row for tables loaded from word vectors; else empty.
  // Only CreateTable writes it and ListTables reads it; PutRecords and
  // PutMeta get it empty.
  std::vector<std::string> vocabulary;

  // Where the stored rows stand in the update log (core/update_log.h); all
  // 0 for a table written without a log.
  // The incarnation of the name (see UpdateRecord::generation).
  int64_t generation = 0;
  // The spec's settings, version, step and trainer sequences are those after
  // the log record at log_position; replay of a table starts after it.
  uint64_t log_position = 0;
  // Per shard: the shard's stored records include every record up to this
  // position (>= log_position), so replay changes a shard's rows only with
  // later records. Empty: every shard at log_position.
  std::vector<uint64_t> shard_positions;
  // Exactly-once pushes: each trainer's last applied sequence number.
  std::vector<std::pair<std::string, uint64_t>> trainer_sequences;
  // Records per stored value: 1 (one per row, the layout offline jobs
  // write), or more for snapshots, which the store keeps as runs of this many
  // consecutive records (fewer at the table's end) so that a restore reads
  // few large values. Only CreateTable/StageTable honour it; a table stored
  // with more than 1 takes no PutRecords (re-stage it with 1 first).
  int64_t rows_per_value = 1;
  // A dynamic table (spec.dynamic): how many records its snapshot holds
  // (the rows stored). Each record is the row's record followed by 6
  // floats' bytes: the row's id, last update step and place in the update
  // order, int64 each (EmbeddingTable::kDynamicTrailerFloats; 4 floats, id
  // and step, in snapshots written before the order, which keep their
  // records in the update order).
  int64_t dynamic_rows = 0;
  // A dynamic table with admit_after >= 2: its admission counts as of the
  // snapshot (DynamicRowStorage::SaveAdmission), binary.
  std::string dynamic_admission;
  // A dynamic table: its event counters as of the snapshot
  // (DynamicRowStorage::Counters); empty in metadata written before them
  // (the restored table then counts its restored rows as admitted).
  std::vector<int64_t> dynamic_counters;

  // Records stored: num_embeddings, or dynamic_rows for a dynamic table.
  int64_t num_records() const { return spec.dynamic ? dynamic_rows : spec.num_embeddings; }
};

struct CheckpointInfo {
  std::string name;
  int64_t created_unix_ms = 0;
  int64_t bytes = 0;
  std::vector<std::string> tables;
};

class RowStore {
 public:
  virtual ~RowStore() = default;

  // A consistent point-in-time copy of every table under `name`
  // (AlreadyExists if taken; names as table names).
  virtual absl::Status CreateCheckpoint(absl::string_view name) = 0;
  virtual absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints() = 0;
  // The checkpoint as a read-only store (NotFound if there is none).
  virtual absl::StatusOr<std::unique_ptr<RowStore>> OpenCheckpoint(absl::string_view name) = 0;
  // The update log saved with checkpoint `name` (read-only), whose records
  // after the tables' snapshot positions bring them to the moment the
  // checkpoint was taken; null if it has none (a store without a log).
  virtual absl::StatusOr<std::unique_ptr<UpdateLog>> OpenCheckpointLog(absl::string_view name) {
    return std::unique_ptr<UpdateLog>();
  }

  // Records a table with all its records (record(r, dst) fills record r),
  // replacing any stored table of that name: StageTable then CommitTable.
  // Atomic: after a crash the table is the old one (or absent) or the new
  // one, complete.
  virtual absl::Status CreateTable(const StoredTable& meta,
                                   const std::function<void(int64_t, float*)>& record) = 0;
  // The two halves of CreateTable, so that a caller can write the records
  // (slow: every row) without holding its own locks, and then publish them
  // (fast) under them. StageTable writes the records where no reader sees
  // them and returns a handle; CommitTable makes them the stored table
  // `meta.spec.name` in one atomic write (dropping the old copy after), and
  // discards them if it fails; AbortTable discards them uncommitted. A staged table that a crash
  // leaves uncommitted is discarded when the store next opens.
  virtual absl::StatusOr<std::string> StageTable(
      const StoredTable& meta, const std::function<void(int64_t, float*)>& record) = 0;
  virtual absl::Status CommitTable(const StoredTable& meta, const std::string& staged) = 0;
  // Discards the copies that CommitTable replaced. CommitTable only sets
  // them aside (dropping a copy deletes its files: slow), so that a caller
  // that commits under a lock of its own (a table's, which pushes wait for)
  // calls this once it has released it. The next CommitTable, and the
  // store's destruction, do it too. Any thread.
  virtual void DropReplaced() {}
  virtual void AbortTable(const std::string& staged) = 0;
  virtual absl::Status DropTable(absl::string_view name) = 0;
  // Atomically replaces the records of `ids` (packed, floats_per_record
  // each) and the table's metadata.
  virtual absl::Status PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                                  absl::Span<const float> packed) = 0;
  virtual absl::Status PutMeta(const StoredTable& meta) = 0;
  // Every stored table's metadata, sorted by name.
  virtual absl::StatusOr<std::vector<StoredTable>> ListTables() = 0;
  // visit(id, record) for every record of the table, in id order.
  virtual absl::Status ReadRecords(
      const StoredTable& meta,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) = 0;
  // The same for the records of ids in [first, end) only, so that a caller
  // may read disjoint ranges from several threads at once. REQUIRES: first
  // and end are multiples of meta.rows_per_value (or end is past the last
  // id). This default reads everything and skips the rest.
  virtual absl::Status ReadRecordRange(
      const StoredTable& meta, int64_t first, int64_t end,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) {
    return ReadRecords(meta, [&](int64_t id, absl::Span<const float> record) {
      return id >= first && id < end ? visit(id, record) : absl::OkStatus();
    });
  }
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_ROW_STORE_H_
