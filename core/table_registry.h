#ifndef EMBEDSERVE_CORE_TABLE_REGISTRY_H_
#define EMBEDSERVE_CORE_TABLE_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/embedding_table.h"
#include "core/parallel_lookup.h"
#include "core/row_store.h"
#include "core/update_log.h"

namespace embedserve {

// The named tables of one server.
//
// Thread-safe. Tables are handed out as shared_ptr: a lookup that got a table
// finishes on it even if the table is dropped meanwhile.
class TableRegistry {
 public:
  // max_total_bytes: the memory all tables together may use; 0 = no limit.
  // store: where tables are made durable (not owned, must outlive the
  // registry); null keeps them in memory only.
  // parallelism: handed to every table made or restored here (see
  // TableOptions); null runs every lookup on its caller.
  explicit TableRegistry(int64_t max_total_bytes = 0, RowStore* store = nullptr,
                         std::shared_ptr<LookupParallelism> parallelism = nullptr)
      : max_total_bytes_(max_total_bytes), store_(store), parallelism_(std::move(parallelism)) {}

  // With an update log (not owned, must outlive the registry), table
  // changes are appended to it and the store holds snapshots
  // (core/update_log.h). Call once, before LoadFromStore. REQUIRES: a store.
  void SetUpdateLog(UpdateLog* log) { log_ = log; }

  // Restores every table of the store (at start-up, before serving), then,
  // with an update log, replays the log after each table's snapshot:
  // creates, drops, pushes, assigns and settings, as they were applied.
  // Returns the number of tables. DataLoss/Unavailable from the store or the
  // log (a corrupt record names its position and table).
  absl::StatusOr<int> LoadFromStore();
  // What the last LoadFromStore spent (for the start-up log): reading the
  // snapshots, and replaying `records` log records after them.
  struct LoadTimes {
    absl::Duration restore, replay;
    int64_t records = 0;
  };
  LoadTimes load_times() const {
    absl::MutexLock lock(&mu_);
    return load_times_;
  }

  // OK if replaying `log` over the tables of `store` would change nothing:
  // every record is already in a snapshot (the rules of LoadFromStore's
  // replay). FailedPrecondition naming the first record that is not, and
  // its table; DataLoss/Unavailable from the store or the log. For serving
  // a data directory without its log.
  static absl::Status CheckLogInSnapshots(RowStore& store, UpdateLog& log);

  // Snapshots every table that changed since its last snapshot
  // (EmbeddingTable::Snapshot), then drops the log records no table needs.
  // Returns the number of tables written. OK and 0 without a log.
  absl::StatusOr<int> SnapshotTables();

  // Registers `table`, replacing (atomically) any table of its name; with a
  // store, its durable copy is replaced too (drop, then create).
  // REQUIRES: nobody else holds `table` yet.
  absl::Status Swap(std::shared_ptr<EmbeddingTable> table, std::shared_ptr<EmbeddingTable>* out)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Copies every table of `source` (e.g. a RocksDB an offline job wrote) into
  // this registry and its store. AlreadyExists if a name is taken (nothing
  // of that table is imported); returns the number imported.
  absl::StatusOr<int> ImportFrom(RowStore& source);

  // Builds and registers a table (see EmbeddingTable::Create). The name is
  // reserved while the table is built, outside the lock.
  // AlreadyExists: the name is taken. ResourceExhausted: over
  // max_total_bytes. InvalidArgument: bad spec or values.
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> Create(
      const TableSpec& spec, absl::Span<const float> initial_values = {});

  // Builds a table from loaded values (and, for word vectors, one word per
  // row), then registers it; with `replace`, an existing table of that name
  // is swapped out atomically (holders finish on the old one). The new table
  // is complete before anyone can see it. AlreadyExists without `replace`.
  // The durable copy is written before the registry's lock is taken (other
  // tables keep serving) and switched in one atomic store write: after a
  // crash the store holds the old table or the new one, complete.
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> Load(const TableSpec& spec,
                                                       absl::Span<const float> values,
                                                       std::vector<std::string> vocabulary,
                                                       bool replace);

  // Checkpoints of the store (FailedPrecondition without a store).
  // CreateCheckpoint returns what ListCheckpoints says of the new one.
  absl::StatusOr<CheckpointInfo> CreateCheckpoint(absl::string_view name);
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints();
  // Puts the tables of checkpoint `name` back as they were (all of them when
  // `tables` is empty), each swapped in atomically; tables not in the
  // checkpoint are left alone. NotFound names a missing checkpoint or table.
  absl::StatusOr<std::vector<std::shared_ptr<EmbeddingTable>>> RestoreCheckpoint(
      absl::string_view name, absl::Span<const std::string> tables);

  // NotFound if there is no such table.
  absl::Status Drop(absl::string_view name);
  absl::StatusOr<std::shared_ptr<EmbeddingTable>> Get(absl::string_view name) const;
  // All tables, sorted by name.
  std::vector<std::shared_ptr<EmbeddingTable>> List() const;

 private:
  const int64_t max_total_bytes_;
  // A new incarnation number for a table being made (UpdateRecord).
  int64_t NextGeneration() ABSL_LOCKS_EXCLUDED(mu_);
  // Replays `log` after the tables' snapshots into `tables` (LoadFromStore).
  // `store_writable`: a drop replayed is also applied to `store` (false for
  // a read-only checkpoint). `records_read`, if not null: set to the number
  // of log records read.
  absl::Status Replay(RowStore& store, UpdateLog& log,
                      absl::flat_hash_map<std::string, std::shared_ptr<EmbeddingTable>>& tables,
                      bool store_writable, int64_t* records_read = nullptr);

  RowStore* const store_;
  UpdateLog* log_ = nullptr;
  // Held by creates and by log truncation: a table being created has its
  // kCreate record in the log before it is registered, and truncation must
  // not drop it meanwhile.
  absl::Mutex create_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  const std::shared_ptr<LookupParallelism> parallelism_;
  mutable absl::Mutex mu_;
  // A null entry is a name reserved by a Create in progress.
  absl::flat_hash_map<std::string, std::shared_ptr<EmbeddingTable>> tables_ ABSL_GUARDED_BY(mu_);
  int64_t reserved_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t next_generation_ ABSL_GUARDED_BY(mu_) = 1;
  LoadTimes load_times_ ABSL_GUARDED_BY(mu_);
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_TABLE_REGISTRY_H_
