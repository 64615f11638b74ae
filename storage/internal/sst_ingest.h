#ifndef EMBEDSERVE_STORAGE_INTERNAL_SST_INGEST_H_
#define EMBEDSERVE_STORAGE_INTERNAL_SST_INGEST_H_

// Bulk loads: a new table's rows written as sorted SST files in a staging
// directory inside the data directory and handed to RocksDB whole
// (IngestExternalFile, moving the files), with no WAL, memtable or
// compaction in the way (through them, durable loads were ~6x slower than
// memory-only ones). Staging
// directories are named ingest-<table>#<generation> (from the rows family);
// the data directory's file system is the database's, so ingestion moves
// files instead of copying them. Thread-safe for distinct families.

#include <cstdint>
#include <filesystem>
#include <functional>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "core/row_store.h"

namespace rocksdb {
class DB;
class ColumnFamilyHandle;
struct ColumnFamilyOptions;
}  // namespace rocksdb

namespace embedserve::internal {

// <data_dir>/ingest-<family without its "rows/" prefix>: where the rows of
// `family` are staged. REQUIRES: IsRowsFamily(family).
std::filesystem::path StagingDir(absl::string_view data_dir, absl::string_view family);

// Removes every entry of data_dir whose name starts with "ingest-": staging
// directories of loads that a kill interrupted. Errors are ignored (a
// directory that cannot be listed or removed stays).
void RemoveStagingDirs(absl::string_view data_dir);

// Fills the empty rows family `family` with the rows of `meta`'s table:
// record(id, out) writes row id's meta.floats_per_record floats to `out`,
// called for id = 0, 1, ..., meta.spec.num_embeddings - 1 in that order.
// The rows go into SST files of about `file_bytes` (at least one row each)
// under `staging`, which is emptied first and removed whatever happens.
// OK: the family holds exactly those rows, keyed by RowKey. Errors name the
// table: Internal when `staging` cannot be created ("create table '<t>':
// cannot create <dir>: ..."); a RocksDB error writing a file ("write table
// '<t>'") or ingesting ("store table '<t>'") as FromRocksDb converts it.
// After an error the family may hold some rows: the caller drops it.
// REQUIRES: `family` was created with `family_options`, is empty and stays
// unwritten by others until this returns.
absl::Status IngestRows(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                        const rocksdb::ColumnFamilyOptions& family_options, const StoredTable& meta,
                        const std::function<void(int64_t, float*)>& record,
                        const std::filesystem::path& staging, int64_t file_bytes);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_SST_INGEST_H_
