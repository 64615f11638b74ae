#ifndef EMBEDSERVE_SERVER_STARTUP_H_
#define EMBEDSERVE_SERVER_STARTUP_H_

// The tables a server starts with, in order: those of its store, then those
// of an offline RocksDB to import, then those of a config file that are not
// there yet. Each step logs what it did.

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/table_registry.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"

namespace embedserve {

// Keeps freed memory in the process (glibc mallopt) instead of handing it
// back to the kernel. glibc's defaults return a freed block past
// M_TRIM_THRESHOLD / M_MMAP_THRESHOLD to the kernel; a 512 x 64 answer is
// 128 KiB, so every answer faulted its pages in fresh (perf: ~15% of the
// server's time in page faults, zeroing and unmapping). Call once, first
// thing in main.
void TuneMallocForServing();

// Hands memory freed so far back to the kernel (malloc_trim): start-up reads
// whole tables through temporary buffers that the tuning above would keep.
void ReleaseFreedMemory();

// Opens `data_dir` (created if missing) as the durable store; `durability`
// is "sync" or "async" (InvalidArgument otherwise).
absl::StatusOr<std::unique_ptr<RocksDbStore>> OpenDataDir(const std::string& data_dir,
                                                          const std::string& durability);

// Opens the update log of `data_dir` (<data_dir>/log, storage/FORMAT.md):
// "sync" durability fsyncs each acknowledged change (group commit), "async"
// hands it to the operating system. Logs what it found (records, bytes).
absl::StatusOr<std::unique_ptr<FileUpdateLog>> OpenUpdateLog(const std::string& data_dir,
                                                             const std::string& durability,
                                                             int64_t segment_bytes);

// For --update_log=false: FailedPrecondition if <data_dir>/log holds records
// that the snapshots in `store` do not (serving without the log would lose
// them): any record after the oldest table snapshot's position, e.g. a push
// since, or a table made from its initializer and never snapshotted. OK if
// there is no log or every table was snapshotted after its last record.
absl::Status CheckNoPendingUpdateLog(const std::string& data_dir, RowStore& store);

// Makes <data_dir>/uploads, where ImportTable stages uploads, and removes
// what a killed server left there. Returns its path.
absl::StatusOr<std::string> PrepareUploadDir(const std::string& data_dir);

// Restores the registry's stored tables, then copies in those of the RocksDB
// at `import_path` (opened read-only; skipped when empty).
absl::Status RestoreAndImportTables(TableRegistry& registry, const std::string& import_path);

// Creates the tables of the config file at `config_path` that the registry
// does not hold yet (a stored table is kept as it is).
absl::Status CreateConfigTables(TableRegistry& registry, const std::string& config_path);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_STARTUP_H_
