#include "storage/internal/sst_ingest.h"

#include <algorithm>
#include <string>
#include <system_error>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/sst_file_writer.h"
#include "storage/internal/key_layout.h"
#include "storage/rocksdb_status.h"

namespace embedserve::internal {
namespace {

constexpr absl::string_view kStagingPrefix = "ingest-";

// Removes the staging directory when the load is over, whatever happened.
class StagingDirRemover {
 public:
  explicit StagingDirRemover(const std::filesystem::path& dir) : dir_(dir) {}
  ~StagingDirRemover() {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  StagingDirRemover(const StagingDirRemover&) = delete;
  StagingDirRemover& operator=(const StagingDirRemover&) = delete;

 private:
  const std::filesystem::path dir_;
};

}  // namespace

std::filesystem::path StagingDir(absl::string_view data_dir, absl::string_view family) {
  return std::filesystem::path(std::string(data_dir)) /
         absl::StrCat(kStagingPrefix, family.substr(kRowsFamilyPrefix.size()));
}

void RemoveStagingDirs(absl::string_view data_dir) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(data_dir), ec)) {
    if (absl::StartsWith(entry.path().filename().string(), kStagingPrefix)) {
      std::error_code ignored;
      std::filesystem::remove_all(entry.path(), ignored);
    }
  }
}

absl::Status IngestRows(rocksdb::DB& db, rocksdb::ColumnFamilyHandle* family,
                        const rocksdb::ColumnFamilyOptions& family_options, const StoredTable& meta,
                        const std::function<void(int64_t, float*)>& record,
                        const std::filesystem::path& staging, int64_t file_bytes) {
  const std::string& name = meta.spec.name;
  std::error_code ec;
  std::filesystem::remove_all(staging, ec);
  std::filesystem::create_directories(staging, ec);
  const StagingDirRemover remover(staging);
  if (ec) {
    return absl::InternalError(absl::StrCat("create table '", name, "': cannot create ",
                                            staging.string(), ": ", ec.message()));
  }
  const int64_t rf = meta.floats_per_record;
  const int64_t record_bytes = rf * static_cast<int64_t>(sizeof(float));
  // Runs of `per_value` records under the key of their first id.
  const int64_t per_value = std::max<int64_t>(1, meta.rows_per_value);
  const int64_t rows_per_file = std::max<int64_t>(
      per_value, file_bytes / std::max<int64_t>(1, record_bytes) / per_value * per_value);
  std::vector<float> buffer(rf * per_value);
  std::vector<std::string> files;
  const rocksdb::Options writer_options(rocksdb::DBOptions(), family_options);
  // Ids ascend, so keys (big-endian ids) reach each writer in sorted order,
  // as SstFileWriter requires.
  for (int64_t first = 0; first < meta.num_records(); first += rows_per_file) {
    const int64_t last = std::min(meta.num_records(), first + rows_per_file);
    files.push_back((staging / absl::StrCat(files.size(), ".sst")).string());
    rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), writer_options, family);
    rocksdb::Status s = writer.Open(files.back());
    for (int64_t r = first; s.ok() && r < last; r += per_value) {
      const int64_t n = std::min(per_value, last - r);
      for (int64_t i = 0; i < n; ++i) record(r + i, buffer.data() + i * rf);
      s = writer.Put(RowKey(r), rocksdb::Slice(reinterpret_cast<const char*>(buffer.data()),
                                               static_cast<size_t>(n * record_bytes)));
    }
    if (s.ok()) s = writer.Finish();
    if (!s.ok()) return FromRocksDb(s, absl::StrCat("write table '", name, "'"));
  }
  if (files.empty()) return absl::OkStatus();
  rocksdb::IngestExternalFileOptions ingest;
  ingest.move_files = true;
  return FromRocksDb(db.IngestExternalFile(family, files, ingest),
                     absl::StrCat("store table '", name, "'"));
}

}  // namespace embedserve::internal
