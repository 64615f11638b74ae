#ifndef EMBEDSERVE_STORAGE_ROCKSDB_STORE_H_
#define EMBEDSERVE_STORAGE_ROCKSDB_STORE_H_

// RowStore on an embedded RocksDB, in the layout of storage/FORMAT.md. Its
// parts live in storage/internal/: the key layout (key_layout.h), the
// metadata record (meta_codec.h), checkpoint directories (checkpoint_dir.h)
// and bulk loads as SST files (sst_ingest.h).

#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "core/row_store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
}  // namespace rocksdb

namespace embedserve {

struct StoreOptions {
  std::string path = "./data";  // created if missing
  // true: a write is acknowledged only after its WAL record is fsync'ed
  // (survives a machine crash). false (default): the WAL record is written
  // to the OS but not synced: survives a process crash, may lose the last
  // moments on a machine crash.
  bool sync = false;
  // Open an existing database without changing it (--import_rocksdb).
  bool read_only = false;
  // CreateTable writes a table's rows as sorted SST files of about this
  // size under <path>/ingest-<table>#<generation> and hands them to RocksDB
  // whole (storage/internal/sst_ingest.h).
  int64_t ingest_file_bytes = int64_t{256} << 20;
};

// Figures an operator watches, read from RocksDB's properties on demand
// (for monitoring; storage knows nothing of how they are shown). Cumulative
// fields count since the store was opened.
struct StoreStats {
  // Write stalls: the rate writes are held to while RocksDB delays them
  // (bytes/s; 0 = not delayed), whether writes are stopped, and the time
  // writes spent stalled.
  int64_t delayed_write_rate = 0;
  bool write_stopped = false;
  int64_t write_stall_micros = 0;
  // The write-ahead log: bytes written and fsyncs (cumulative), and the
  // live WAL files now.
  int64_t wal_bytes_written = 0;
  int64_t wal_syncs = 0;
  int64_t wal_files = 0;
  int64_t wal_files_bytes = 0;
  // Compactions and flushes running now; column families waiting for a
  // compaction, and the bytes compaction estimates it must rewrite.
  int64_t running_compactions = 0;
  int64_t running_flushes = 0;
  int64_t compactions_pending = 0;
  int64_t pending_compaction_bytes = 0;
  // Sizes over all column families: SST files (all versions), memtables.
  int64_t sst_files_bytes = 0;
  int64_t memtable_bytes = 0;
  int64_t background_errors = 0;  // cumulative
};

// Thread-safe.
class RocksDbStore final : public RowStore {
 public:
  // Opens (or creates) the database. Unavailable/DataLoss with RocksDB's
  // message if it cannot.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const StoreOptions& options);
  ~RocksDbStore() override;

  // Checkpoints live in <path>/checkpoints/<name>, each a RocksDB
  // checkpoint (hard links where possible) of the whole database.
  absl::Status CreateCheckpoint(absl::string_view name) override;
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints() override;
  absl::StatusOr<std::unique_ptr<RowStore>> OpenCheckpoint(absl::string_view name) override;
  // <checkpoint>/update_log (storage/FORMAT.md), opened read-only.
  absl::StatusOr<std::unique_ptr<UpdateLog>> OpenCheckpointLog(absl::string_view name) override;
  // The update log that CreateCheckpoint saves beside the rows (not owned;
  // must outlive the store). Call before serving, before any StageTable.
  //
  // Automatic compaction of row families: a family staged while a log is
  // attached, and every family opened by Open, starts without it
  // (disable_auto_compactions); PutRecords turns it on for a family before
  // its first write. With a log no PutRecords come (pushes go to the log),
  // so snapshot families are never rewritten; without one a family
  // compacts as before once pushes write into it, and families staged
  // without a log compact from the start.
  void SetUpdateLog(UpdateLog* log) { log_ = log; }

  // Reads the figures of StoreStats (a few property reads and a listing of
  // the WAL directory; for a scrape, not for a hot path). A figure RocksDB
  // cannot give stays 0.
  StoreStats Stats() const;

  absl::Status CreateTable(const StoredTable& meta,
                           const std::function<void(int64_t, float*)>& record) override;
  // A staged table is a column family rows/<table>#<generation>; the
  // metadata record names the family it belongs to (storage/FORMAT.md).
  absl::StatusOr<std::string> StageTable(
      const StoredTable& meta, const std::function<void(int64_t, float*)>& record) override;
  absl::Status CommitTable(const StoredTable& meta, const std::string& staged) override;
  void DropReplaced() override;
  void AbortTable(const std::string& staged) override;
  absl::Status DropTable(absl::string_view name) override;
  absl::Status PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                          absl::Span<const float> packed) override;
  absl::Status PutMeta(const StoredTable& meta) override;
  absl::StatusOr<std::vector<StoredTable>> ListTables() override;
  absl::Status ReadRecords(
      const StoredTable& meta,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) override;
  // One iterator over the keys of [first, end): ranges read in parallel.
  absl::Status ReadRecordRange(
      const StoredTable& meta, int64_t first, int64_t end,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) override;

 private:
  RocksDbStore() = default;
  absl::StatusOr<rocksdb::ColumnFamilyHandle*> Family(absl::string_view table);
  // OK if the data directory's file system has room for `bytes` more, plus
  // the unflushed memtables and a reserve (1/16 of the file system, 1 MiB to
  // 256 MiB); else ResourceExhausted naming `what` and the figures. Debian's
  // RocksDB aborts (an assertion) when a file writer is used after a failed
  // write, so a full disk must never reach it.
  absl::Status CheckSpace(int64_t bytes, absl::string_view what);
  // The metadata record written for `meta`, naming the table's current
  // rows family (internal::EncodeMetaRecord); NotFound for an unknown table.
  absl::StatusOr<std::string> MetaValue(const StoredTable& meta);

  StoreOptions options_;
  UpdateLog* log_ = nullptr;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyHandle* default_family_ = nullptr;  // destroyed before db_
  absl::Mutex mu_;  // guards families_ (RocksDB itself is thread-safe)
  absl::flat_hash_map<std::string, rocksdb::ColumnFamilyHandle*> families_ ABSL_GUARDED_BY(mu_);
  // Staged, not yet committed tables: family name -> handle.
  absl::flat_hash_map<std::string, rocksdb::ColumnFamilyHandle*> staged_ ABSL_GUARDED_BY(mu_);
  int64_t next_generation_ ABSL_GUARDED_BY(mu_) = 0;
  // Names of the row families whose automatic compaction is off (see
  // SetUpdateLog); PutRecords takes a family out before writing to it.
  absl::flat_hash_set<std::string> uncompacted_ ABSL_GUARDED_BY(mu_);
  // Families CommitTable replaced, for DropReplaced.
  std::vector<rocksdb::ColumnFamilyHandle*> replaced_ ABSL_GUARDED_BY(mu_);
};

}  // namespace embedserve

#endif  // EMBEDSERVE_STORAGE_ROCKSDB_STORE_H_
