#include "server/startup.h"

#include <malloc.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "server/internal/log.h"
#include "server/table_config.h"

namespace embedserve {

void TuneMallocForServing() {
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
}

void ReleaseFreedMemory() { malloc_trim(0); }

absl::StatusOr<std::unique_ptr<RocksDbStore>> OpenDataDir(const std::string& data_dir,
                                                          const std::string& durability) {
  if (durability != "sync" && durability != "async") {
    return absl::InvalidArgumentError("--durability must be sync or async, got " + durability);
  }
  std::error_code ec;
  std::filesystem::create_directories(data_dir, ec);
  ASSIGN_OR_RETURN(std::unique_ptr<RocksDbStore> store,
                   RocksDbStore::Open({data_dir, durability == "sync"}));
  internal::LogInfo(absl::StrCat("data in ", data_dir, " (durability ", durability, ")"));
  return store;
}

absl::StatusOr<std::unique_ptr<FileUpdateLog>> OpenUpdateLog(const std::string& data_dir,
                                                             const std::string& durability,
                                                             int64_t segment_bytes) {
  UpdateLogOptions options;
  options.dir = (std::filesystem::path(data_dir) / "log").string();
  options.sync = durability == "sync";
  options.segment_bytes = segment_bytes;
  // The room appends leave free: as the store's reserve, 1/16 of the file
  // system, between 1 MiB and 64 MiB (a small volume must still take
  // writes; a big one keeps room for snapshots).
  struct statvfs fs;
  if (statvfs(data_dir.c_str(), &fs) == 0) {
    const int64_t total = static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
    options.min_free_bytes = std::clamp<int64_t>(total / 16, int64_t{1} << 20, int64_t{64} << 20);
  }
  ASSIGN_OR_RETURN(std::unique_ptr<FileUpdateLog> log, FileUpdateLog::Open(options));
  const UpdateLogStats stats = log->Stats();
  internal::LogInfo(absl::StrCat("update log in ", options.dir, ": records ",
                                 stats.first_position, "..", stats.last_position, ", ",
                                 stats.bytes, " bytes in ", stats.segments, " segments"));
  return log;
}

absl::Status CheckNoPendingUpdateLog(const std::string& data_dir, RowStore& store) {
  const std::string dir = (std::filesystem::path(data_dir) / "log").string();
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return absl::OkStatus();
  UpdateLogOptions options;
  options.dir = dir;
  options.read_only = true;
  ASSIGN_OR_RETURN(std::unique_ptr<FileUpdateLog> log, FileUpdateLog::Open(options));
  const absl::Status s = TableRegistry::CheckLogInSnapshots(store, *log);
  if (!absl::IsFailedPrecondition(s)) return s;
  return absl::FailedPreconditionError(absl::StrCat(
      "--update_log=false, but ", dir, " holds ", s.message(),
      "; start once with --update_log (the default) and let it snapshot (CreateCheckpoint "
      "snapshots every table), or keep the log on"));
}

absl::StatusOr<std::string> PrepareUploadDir(const std::string& data_dir) {
  const std::filesystem::path dir = std::filesystem::path(data_dir) / "uploads";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("cannot create ", dir.string(), ": ", ec.message()));
  }
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    std::error_code ignored;
    removed += std::filesystem::remove_all(entry.path(), ignored) > 0 ? 1 : 0;
  }
  if (removed > 0) {
    internal::LogInfo(absl::StrCat("removed ", removed, " unfinished uploads from ", dir.string()));
  }
  return dir.string();
}

absl::Status RestoreAndImportTables(TableRegistry& registry, const std::string& import_path) {
  absl::StatusOr<int> restored = registry.LoadFromStore();
  if (!restored.ok()) {
    return absl::Status(restored.status().code(),
                        absl::StrCat("cannot restore tables: ", restored.status().message()));
  }
  const TableRegistry::LoadTimes times = registry.load_times();
  if (*restored > 0 || times.records > 0) {
    internal::LogInfo(
        absl::StrCat("loaded ", *restored, " table(s): snapshots read in ",
                     absl::FormatDuration(absl::Trunc(times.restore, absl::Milliseconds(1))), ", ",
                     times.records, " update log record(s) replayed in ",
                     absl::FormatDuration(absl::Trunc(times.replay, absl::Milliseconds(1)))));
  }
  if (*restored > 0) {
    for (const auto& t : registry.List()) {
      internal::LogInfo(absl::StrCat("restored table '", t->name(), "': ", t->num_rows(),
                                     t->is_dynamic() ? " rows stored (dynamic)" : "", " x ",
                                     t->dim(), ", version ", t->version()));
    }
  }
  if (import_path.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<RocksDbStore>> source =
      RocksDbStore::Open({import_path, false, /*read_only=*/true});
  if (!source.ok()) {
    return absl::Status(source.status().code(),
                        absl::StrCat("--import_rocksdb: ", source.status().message()));
  }
  absl::StatusOr<int> imported = registry.ImportFrom(**source);
  if (!imported.ok()) {
    return absl::Status(imported.status().code(), absl::StrCat("--import_rocksdb=", import_path,
                                                               ": ", imported.status().message()));
  }
  internal::LogInfo(absl::StrCat("imported ", *imported, " tables from ", import_path));
  return absl::OkStatus();
}

absl::Status CreateConfigTables(TableRegistry& registry, const std::string& config_path) {
  ASSIGN_OR_RETURN(std::vector<TableSpec> specs, LoadTableConfig(config_path));
  for (const TableSpec& spec : specs) {
    if (registry.Get(spec.name).ok()) {
      internal::LogInfo(absl::StrCat("table '", spec.name, "' is already stored; kept as it is"));
      continue;
    }
    absl::StatusOr<std::shared_ptr<EmbeddingTable>> table = registry.Create(spec);
    if (!table.ok()) {
      return absl::Status(table.status().code(),
                          absl::StrCat("table '", spec.name, "': ", table.status().message()));
    }
    const std::string rows = spec.dynamic ? "dynamic" : absl::StrCat(spec.num_embeddings);
    internal::LogInfo(absl::StrCat("created table '", spec.name, "': ", rows, " x ",
                                   spec.embedding_dim, " (", (*table)->bytes_used(), " bytes)"));
  }
  return absl::OkStatus();
}

}  // namespace embedserve
