#ifndef EMBEDSERVE_STORAGE_INTERNAL_CHECKPOINT_DIR_H_
#define EMBEDSERVE_STORAGE_INTERNAL_CHECKPOINT_DIR_H_

// Where checkpoints live on disk: <data_dir>/checkpoints/<name>, each a
// RocksDB checkpoint of the whole database (RocksDbStore::CreateCheckpoint
// makes them, RocksDbStore::OpenCheckpoint opens one read-only). Thread-safe
// (the file system is the only state).

#include <filesystem>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/row_store.h"

namespace embedserve::internal {

// Whether `name` may name a checkpoint: 1-128 characters of [A-Za-z0-9_.-],
// and not "." or ".." (it is a directory name; nothing else can escape).
bool ValidCheckpointName(absl::string_view name);

// <data_dir>/checkpoints.
std::filesystem::path CheckpointsDir(absl::string_view data_dir);
// <data_dir>/checkpoints/<name>. REQUIRES: ValidCheckpointName(name).
std::filesystem::path CheckpointDir(absl::string_view data_dir, absl::string_view name);

// One CheckpointInfo per directory under CheckpointsDir(data_dir), sorted by
// name: its name, the bytes of the regular files directly in it, and its
// modification time as created_unix_ms; `tables` is left empty (reading it
// means opening the checkpoint). Empty when there is no checkpoints
// directory. Entries that are not directories are skipped. An I/O error
// while listing throws std::filesystem::filesystem_error (the throwing
// std::filesystem calls; not yet a Status).
std::vector<CheckpointInfo> ScanCheckpointDirs(absl::string_view data_dir);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_CHECKPOINT_DIR_H_
