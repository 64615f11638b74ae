// Bulk loads into a real RocksDB: the rows land in the family in id order,
// split into files of the requested size, and no staging directory is left
// behind whatever happens.
#include "storage/internal/sst_ingest.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/metadata.h"
#include "rocksdb/options.h"
#include "storage/internal/key_layout.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

namespace fs = std::filesystem;
using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(SstIngestTest, StagingDirIsNamedAfterTheFamily) {
  EXPECT_EQ(StagingDir("/srv/data", "rows/item#1700000000123456"),
            fs::path("/srv/data/ingest-item#1700000000123456"));
  EXPECT_EQ(StagingDir("d", "rows/t"), fs::path("d/ingest-t"));
}

float Value(int64_t row, int64_t col) { return static_cast<float>(row) * 10 + col; }

class SstIngestDbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/sst_ingest_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &db).ok());
    db_.reset(db);
    ASSERT_TRUE(db_->CreateColumnFamily(family_options_, kFamily, &family_).ok());
  }
  void TearDown() override {
    if (family_ != nullptr) db_->DestroyColumnFamilyHandle(family_);
    db_.reset();
    fs::remove_all(dir_);
  }
  static StoredTable Table(int64_t rows, int64_t floats) {
    StoredTable m;
    m.spec.name = "t";
    m.spec.num_embeddings = rows;
    m.floats_per_record = floats;
    return m;
  }
  // The family's records in key order as (id, floats).
  std::vector<std::pair<int64_t, std::vector<float>>> Scan() {
    std::vector<std::pair<int64_t, std::vector<float>>> out;
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      EXPECT_EQ(it->key().size(), kRowKeyBytes);
      std::vector<float> v(it->value().size() / sizeof(float));
      std::memcpy(v.data(), it->value().data(), it->value().size());
      out.emplace_back(DecodeRowKey(absl::string_view(it->key().data(), it->key().size())),
                       std::move(v));
    }
    EXPECT_TRUE(it->status().ok());
    return out;
  }
  // The rows in each SST file of the family, smallest keys first.
  std::vector<uint64_t> RowsPerFile() {
    rocksdb::ColumnFamilyMetaData meta;
    db_->GetColumnFamilyMetaData(family_, &meta);
    std::vector<std::pair<std::string, uint64_t>> files;
    for (const auto& level : meta.levels) {
      for (const auto& f : level.files) files.emplace_back(f.smallestkey, f.num_entries);
    }
    std::sort(files.begin(), files.end());
    std::vector<uint64_t> out;
    for (const auto& f : files) out.push_back(f.second);
    return out;
  }

  static constexpr char kFamily[] = "rows/t#1";
  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::ColumnFamilyOptions family_options_;
  rocksdb::ColumnFamilyHandle* family_ = nullptr;
};

TEST_F(SstIngestDbTest, RowsLandInIdOrderInFilesOfTheGivenSize) {
  constexpr int64_t kRows = 1001, kFloats = 3;
  std::vector<int64_t> asked;
  const fs::path staging = StagingDir(dir_, kFamily);
  ASSERT_THAT(IngestRows(
                  *db_, family_, family_options_, Table(kRows, kFloats),
                  [&](int64_t id, float* out) {
                    asked.push_back(id);
                    for (int64_t c = 0; c < kFloats; ++c) out[c] = Value(id, c);
                  },
                  staging, /*file_bytes=*/100 * kFloats * sizeof(float)),
              IsOk());
  ASSERT_EQ(asked.size(), kRows);
  for (int64_t i = 0; i < kRows; ++i) ASSERT_EQ(asked[i], i);
  const auto rows = Scan();
  ASSERT_EQ(rows.size(), kRows);
  for (int64_t i = 0; i < kRows; ++i) {
    ASSERT_EQ(rows[i].first, i);
    ASSERT_EQ(rows[i].second, (std::vector<float>{Value(i, 0), Value(i, 1), Value(i, 2)}));
  }
  // 1200 bytes a file: 100 rows of 12 bytes, the last file the rest.
  EXPECT_THAT(RowsPerFile(), ElementsAre(100, 100, 100, 100, 100, 100, 100, 100, 100, 100, 1));
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(SstIngestDbTest, AFileHoldsAtLeastOneRow) {
  ASSERT_THAT(IngestRows(
                  *db_, family_, family_options_, Table(3, 4),
                  [](int64_t id, float* out) { std::fill(out, out + 4, id); },
                  StagingDir(dir_, kFamily), /*file_bytes=*/1),
              IsOk());
  EXPECT_EQ(Scan().size(), 3u);
  EXPECT_THAT(RowsPerFile(), ElementsAre(1, 1, 1));
}

TEST_F(SstIngestDbTest, NoRowsIsAnEmptyFamily) {
  const fs::path staging = StagingDir(dir_, kFamily);
  ASSERT_THAT(
      IngestRows(
          *db_, family_, family_options_, Table(0, 4),
          [](int64_t, float*) { FAIL() << "no row to ask for"; }, staging, int64_t{1} << 20),
      IsOk());
  EXPECT_TRUE(Scan().empty());
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(SstIngestDbTest, LeftoverStagingFilesAreClearedFirst) {
  const fs::path staging = StagingDir(dir_, kFamily);
  fs::create_directories(staging);
  std::ofstream(staging / "0.sst") << "not an sst file";
  ASSERT_THAT(IngestRows(
                  *db_, family_, family_options_, Table(5, 1),
                  [](int64_t id, float* out) { *out = id; }, staging, int64_t{1} << 20),
              IsOk());
  EXPECT_EQ(Scan().size(), 5u);
  EXPECT_FALSE(fs::exists(staging));
}

TEST_F(SstIngestDbTest, AStagingDirThatCannotBeMadeIsInternalNamingIt) {
  std::ofstream(fs::path(dir_) / "a_file") << "x";
  const fs::path staging = fs::path(dir_) / "a_file" / "ingest-t#1";
  EXPECT_THAT(
      IngestRows(
          *db_, family_, family_options_, Table(5, 1),
          [](int64_t, float*) { FAIL() << "no row to ask for"; }, staging, int64_t{1} << 20),
      StatusIs(absl::StatusCode::kInternal,
               HasSubstr("create table 't': cannot create " + staging.string())));
  EXPECT_TRUE(Scan().empty());
}

TEST_F(SstIngestDbTest, AFailedIngestNamesTheTableAndLeavesNoStaging) {
  // A family handle of a dropped family: the files are written, RocksDB
  // refuses to take them (ColumnFamilyDropped, which FromRocksDb makes
  // Internal).
  ASSERT_TRUE(db_->DropColumnFamily(family_).ok());
  const fs::path staging = StagingDir(dir_, kFamily);
  EXPECT_THAT(IngestRows(
                  *db_, family_, family_options_, Table(5, 1),
                  [](int64_t id, float* out) { *out = id; }, staging, int64_t{1} << 20),
              StatusIs(absl::StatusCode::kInternal, HasSubstr("store table 't'")));
  EXPECT_FALSE(fs::exists(staging));
}

TEST(SstIngestCleanupTest, RemoveStagingDirsRemovesOnlyIngestEntries) {
  const fs::path dir = ::testing::TempDir() + "/sst_ingest_cleanup";
  fs::remove_all(dir);
  fs::create_directories(dir / "ingest-a#1");
  std::ofstream(dir / "ingest-a#1" / "0.sst") << "x";
  std::ofstream(dir / "ingest-b") << "x";
  fs::create_directories(dir / "checkpoints" / "ingest-c");
  fs::create_directories(dir / "ingestion");
  std::ofstream(dir / "x-ingest-y") << "x";
  RemoveStagingDirs(dir.string());
  EXPECT_FALSE(fs::exists(dir / "ingest-a#1"));
  EXPECT_FALSE(fs::exists(dir / "ingest-b"));
  EXPECT_TRUE(fs::exists(dir / "checkpoints" / "ingest-c"));
  EXPECT_TRUE(fs::exists(dir / "ingestion"));
  EXPECT_TRUE(fs::exists(dir / "x-ingest-y"));
  fs::remove_all(dir);
  RemoveStagingDirs(dir.string());  // a missing directory is nothing to do
}

}  // namespace
}  // namespace embedserve::internal
