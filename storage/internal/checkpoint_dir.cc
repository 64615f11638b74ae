#include "storage/internal/checkpoint_dir.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "absl/strings/ascii.h"

namespace embedserve::internal {

bool ValidCheckpointName(absl::string_view name) {
  if (name.empty() || name.size() > 128 || name == "." || name == "..") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') {
      return false;
    }
  }
  return true;
}

std::filesystem::path CheckpointsDir(absl::string_view data_dir) {
  return std::filesystem::path(std::string(data_dir)) / "checkpoints";
}

std::filesystem::path CheckpointDir(absl::string_view data_dir, absl::string_view name) {
  return CheckpointsDir(data_dir) / std::string(name);
}

std::vector<CheckpointInfo> ScanCheckpointDirs(absl::string_view data_dir) {
  std::vector<CheckpointInfo> out;
  const std::filesystem::path dir = CheckpointsDir(data_dir);
  if (!std::filesystem::exists(dir)) return out;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_directory()) continue;
    CheckpointInfo info;
    info.name = entry.path().filename().string();
    for (const auto& f : std::filesystem::directory_iterator(entry.path())) {
      if (f.is_regular_file()) info.bytes += static_cast<int64_t>(f.file_size());
    }
    const auto mtime = std::filesystem::last_write_time(entry.path());
    info.created_unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::file_clock::to_sys(mtime).time_since_epoch())
                               .count();
    out.push_back(std::move(info));
  }
  std::sort(out.begin(), out.end(),
            [](const CheckpointInfo& a, const CheckpointInfo& b) { return a.name < b.name; });
  return out;
}

}  // namespace embedserve::internal
