// An "offline job" writes a RocksDB in the documented layout
// (storage/FORMAT.md) with the plain RocksDB API; the server's store opens
// it, and a registry imports it into its own store.
#include <filesystem>
#include <numeric>
#include <string>

#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "storage/rocksdb_store.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kRows = 1000, kDim = 4;

float Value(int64_t row, int64_t col) { return static_cast<float>(row) + 0.25f * col; }

// Writes table `name` as an offline job would, following FORMAT.md only.
void WriteOffline(const std::string& dir, const std::string& name) {
  rocksdb::Options options;
  options.create_if_missing = true;
  rocksdb::DB* db = nullptr;
  ASSERT_TRUE(rocksdb::DB::Open(options, dir, &db).ok());
  rocksdb::ColumnFamilyHandle* rows = nullptr;
  ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "rows/" + name, &rows).ok());
  rocksdb::WriteBatch batch;
  for (int64_t r = kRows - 1; r >= 0; --r) {  // any write order
    std::string key(8, '\0');
    for (int i = 0; i < 8; ++i)
      key[i] = static_cast<char>(static_cast<uint64_t>(r) >> (56 - 8 * i));
    float value[kDim];
    for (int64_t c = 0; c < kDim; ++c) value[c] = Value(r, c);
    batch.Put(rows, key, rocksdb::Slice(reinterpret_cast<const char*>(value), sizeof(value)));
  }
  batch.Put("table/" + name,
            "format=1\nname=" + name +
                "\nnum_embeddings=1000\nembedding_dim=4\nfloats_per_record=4\npadding_idx=7\n"
                "optimizer=sgd\nlr=0.5\nsomething_new=ignored\n");
  ASSERT_TRUE(db->Write(rocksdb::WriteOptions(), &batch).ok());
  db->DestroyColumnFamilyHandle(rows);
  delete db;
}

void ExpectOfflineRows(TableRegistry& registry, const std::string& name) {
  auto t = registry.Get(name);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->spec().padding_idx, 7);
  EXPECT_EQ((*t)->spec().optimizer.lr, 0.5);
  std::vector<int64_t> ids = {0, 1, 999, 500};
  std::vector<float> out(ids.size() * kDim);
  ASSERT_THAT((*t)->Lookup(ids, absl::MakeSpan(out)), IsOk());
  for (size_t i = 0; i < ids.size(); ++i) {
    for (int64_t c = 0; c < kDim; ++c) EXPECT_EQ(out[i * kDim + c], Value(ids[i], c));
  }
}

class OfflineImportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    base_ = ::testing::TempDir() + "/offline_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(base_);
    std::filesystem::create_directories(base_);
  }
  void TearDown() override { std::filesystem::remove_all(base_); }
  std::string base_;
};

TEST_F(OfflineImportTest, ServerOpensAnOfflineWrittenDirectory) {
  WriteOffline(base_ + "/db", "item");
  auto store = RocksDbStore::Open({base_ + "/db"});
  ASSERT_THAT(store, IsOk());
  TableRegistry registry(0, store->get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  ExpectOfflineRows(registry, "item");
  // And trains on it, durably.
  auto t = *registry.Get("item");
  ASSERT_THAT(t->ApplyGradients({2}, {1, 1, 1, 1}), IsOk());
}

TEST_F(OfflineImportTest, ImportCopiesTablesAndLeavesTheSourceAlone) {
  WriteOffline(base_ + "/offline", "item");
  {
    auto source = RocksDbStore::Open({base_ + "/offline", false, /*read_only=*/true});
    ASSERT_THAT(source, IsOk());
    auto store = RocksDbStore::Open({base_ + "/data"});
    TableRegistry registry(0, store->get());
    auto imported = registry.ImportFrom(**source);
    ASSERT_THAT(imported, IsOk());
    EXPECT_EQ(*imported, 1);
    ExpectOfflineRows(registry, "item");
    // A second import of the same name is refused.
    EXPECT_THAT(registry.ImportFrom(**source),
                StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("'item'")));
  }
  // The import was made durable in the server's own directory.
  auto store = RocksDbStore::Open({base_ + "/data"});
  TableRegistry registry(0, store->get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  ExpectOfflineRows(registry, "item");
}

TEST_F(OfflineImportTest, MissingRowsAreDataLoss) {
  WriteOffline(base_ + "/db", "item");
  {
    rocksdb::DB* db = nullptr;
    std::vector<rocksdb::ColumnFamilyDescriptor> d = {{rocksdb::kDefaultColumnFamilyName, {}},
                                                      {"rows/item", {}}};
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), base_ + "/db", d, &hs, &db).ok());
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), hs[1], std::string(8, '\0')).ok());
    for (auto* h : hs) db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = RocksDbStore::Open({base_ + "/db"});
  TableRegistry registry(0, store->get());
  EXPECT_THAT(registry.LoadFromStore(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("999 stored rows, expected 1000")));
}

}  // namespace
}  // namespace embedserve
