#ifndef EMBEDSERVE_CORE_INTERNAL_TABLE_PERSISTENCE_H_
#define EMBEDSERVE_CORE_INTERNAL_TABLE_PERSISTENCE_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "core/row_storage.h"
#include "core/row_store.h"
#include "core/update_log.h"

namespace embedserve::internal {

// A table's link to its durable copy: the RowStore port calls, in the order
// that keeps "acknowledged means durable". Memory is the serving copy; a
// change is written here first and published in memory only if that
// succeeded (see EmbeddingTable::Commit). With an update log, a change is a
// record appended to the log, and the store holds snapshots.
//
// Not thread-safe: the table calls the non-static methods under its writer
// lock. The store is not owned and must outlive the link.
class TablePersistence {
 public:
  // The store later changes go to; null when the table is memory-only.
  RowStore* store() const { return store_; }

  // Writes every row's record (ids 0 .. num_slots - 1, read from `rows`)
  // where no reader of `store` sees them yet (RowStore::StageTable).
  // REQUIRES: `rows` does not change meanwhile.
  static absl::StatusOr<std::string> Stage(RowStore& store, const StoredTable& meta,
                                           const RowStorage& rows);
  // Publishes staged records as the stored table (RowStore::CommitTable);
  // on success later changes go to `store`. `meta` carries the vocabulary.
  absl::Status Commit(RowStore& store, const StoredTable& meta, const std::string& staged);
  // Later changes go to `store` (null: nowhere; detaches the log too).
  void Attach(RowStore* store) {
    store_ = store;
    if (store == nullptr) log_ = nullptr;
  }

  // ---- With an update log.
  UpdateLog* log() const { return log_; }
  // Later changes are appended to `log` as records of incarnation
  // `generation`; replay of the table starts after `replay_from`.
  void AttachLog(UpdateLog* log, int64_t generation, LogPosition replay_from) {
    log_ = log;
    generation_ = generation;
    replay_from_ = replay_from;
    last_position_ = std::max(last_position_, replay_from);
  }
  int64_t generation() const { return generation_; }
  LogPosition replay_from() const { return replay_from_; }
  void set_replay_from(LogPosition p) { replay_from_ = p; }
  // The newest record of the table (appended, or replayed).
  LogPosition last_position() const { return last_position_; }
  void set_last_position(LogPosition p) { last_position_ = std::max(last_position_, p); }
  // Replay only: per shard, the position the restored snapshot's rows are
  // as of (StoredTable::shard_positions); empty: all at replay_from().
  std::vector<LogPosition>& shard_positions() { return shard_positions_; }
  // Appends `record` (its table and generation filled in here) to the log
  // and returns its position. REQUIRES: log() != nullptr.
  absl::StatusOr<LogPosition> Append(UpdateRecord record);

  // Makes changed records durable (RowStore::PutRecords, `packed` holding
  // meta.floats_per_record floats per id) and the metadata with them. OK and
  // nothing written without a store.
  absl::Status PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                          absl::Span<const float> packed);
  absl::Status PutMeta(const StoredTable& meta);

  // Fills `rows` with every record of `meta` in `store`; a table over
  // 64 MiB is read as disjoint id ranges on up to 8 threads at once
  // (RowStore::ReadRecordRange), each writing its own slots. DataLoss (naming
  // the table) if the record size differs from rows.format(), a record is
  // for an id without a slot or has the wrong size, or rows are missing.
  static absl::Status Load(RowStore& store, const StoredTable& meta, RowStorage& rows);

 private:
  RowStore* store_ = nullptr;
  UpdateLog* log_ = nullptr;
  int64_t generation_ = 0;
  LogPosition replay_from_ = 0;
  LogPosition last_position_ = 0;
  std::vector<LogPosition> shard_positions_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_TABLE_PERSISTENCE_H_
