// RocksDbStore's checkpoints: a RocksDB checkpoint (hard links) of the whole
// database in <path>/checkpoints/<name>, plus a copy of the update log beside
// it when the server keeps one (storage/FORMAT.md).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "rocksdb/db.h"
#include "rocksdb/utilities/checkpoint.h"
#include "storage/internal/checkpoint_dir.h"
#include "storage/rocksdb_status.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"

namespace embedserve {
namespace {
// Where a checkpoint keeps its copy of the update log.
constexpr char kCheckpointLogDir[] = "update_log";
}  // namespace

absl::Status RocksDbStore::CreateCheckpoint(absl::string_view name) {
  if (options_.read_only) return absl::FailedPreconditionError("this store is read-only");
  RETURN_IF_ERROR(CheckSpace(int64_t{4} << 20, absl::StrCat("checkpoint '", name, "'")));
  if (!internal::ValidCheckpointName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint name '", name, "' must be 1-128 characters of [A-Za-z0-9_.-]"));
  }
  std::filesystem::create_directories(internal::CheckpointsDir(options_.path));
  const std::filesystem::path target = internal::CheckpointDir(options_.path, name);
  if (std::filesystem::exists(target)) {
    return absl::AlreadyExistsError(absl::StrCat("checkpoint '", name, "' already exists"));
  }
  rocksdb::Checkpoint* raw = nullptr;
  RETURN_IF_ERROR(FromRocksDb(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  // Flushes first (log_size_for_flush 0), so the copy is SST files only.
  RETURN_IF_ERROR(
      FromRocksDb(checkpoint->CreateCheckpoint(target.string(), /*log_size_for_flush=*/0),
                  absl::StrCat("create checkpoint '", name, "'")));
  if (log_ == nullptr) return absl::OkStatus();
  // The log's segments (hard links) up to now: replayed after the snapshots
  // they hold, the tables are as of this moment.
  absl::Status s = log_->CopyTo((target / kCheckpointLogDir).string()).status();
  if (!s.ok()) {
    std::error_code ec;
    std::filesystem::remove_all(target, ec);
  }
  return s;
}

absl::StatusOr<std::unique_ptr<UpdateLog>> RocksDbStore::OpenCheckpointLog(absl::string_view name) {
  if (!internal::ValidCheckpointName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad checkpoint name '", name, "'"));
  }
  const std::filesystem::path dir = internal::CheckpointDir(options_.path, name) / kCheckpointLogDir;
  if (!std::filesystem::exists(dir)) return std::unique_ptr<UpdateLog>();
  UpdateLogOptions options;
  options.dir = dir.string();
  options.read_only = true;
  ASSIGN_OR_RETURN(std::unique_ptr<FileUpdateLog> log, FileUpdateLog::Open(options));
  return std::unique_ptr<UpdateLog>(std::move(log));
}

absl::StatusOr<std::vector<CheckpointInfo>> RocksDbStore::ListCheckpoints() {
  std::vector<CheckpointInfo> out = internal::ScanCheckpointDirs(options_.path);
  for (CheckpointInfo& info : out) {
    auto store = OpenCheckpoint(info.name);
    if (store.ok()) {
      auto tables = (*store)->ListTables();
      if (tables.ok()) {
        for (const auto& t : *tables) info.tables.push_back(t.spec.name);
      }
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<RowStore>> RocksDbStore::OpenCheckpoint(absl::string_view name) {
  if (!internal::ValidCheckpointName(name)) {
    return absl::InvalidArgumentError(absl::StrCat("bad checkpoint name '", name, "'"));
  }
  const std::filesystem::path target = internal::CheckpointDir(options_.path, name);
  if (!std::filesystem::exists(target)) {
    return absl::NotFoundError(absl::StrCat("no checkpoint named '", name, "'"));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RocksDbStore> store,
                   RocksDbStore::Open({target.string(), false, /*read_only=*/true}));
  return std::unique_ptr<RowStore>(std::move(store));
}

}  // namespace embedserve
