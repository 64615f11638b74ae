// RocksDbStore against a real RocksDB in a temporary directory, and the
// engine's write-through and restore on top of it.
#include "storage/rocksdb_store.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <string>

#include "core/embedding_table.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/table_properties.h"
#include "rocksdb/utilities/options_util.h"
#include "storage/internal/meta_codec.h"
#include "storage/update_log.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::internal::DecodeMeta;
using ::embedserve::internal::EncodeMeta;
using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/store_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::unique_ptr<RocksDbStore> Open() {
    auto store = RocksDbStore::Open({dir_, /*sync=*/false});
    EXPECT_THAT(store, IsOk());
    return store.ok() ? *std::move(store) : nullptr;
  }
  std::string dir_;
};

TableSpec Spec(const std::string& name, int64_t n, int64_t dim, OptimizerKind kind) {
  TableSpec s;
  s.name = name;
  s.num_embeddings = n;
  s.embedding_dim = dim;
  s.padding_idx = 1;
  s.max_norm = 3.5;
  s.scale_grad_by_freq = true;
  s.optimizer.kind = kind;
  s.optimizer.lr = 0.25;
  s.optimizer.eps = 1e-9;
  s.initializer.seed = 77;
  return s;
}

std::vector<float> Rows(EmbeddingTable& t) {
  std::vector<int64_t> ids(t.num_rows());
  std::iota(ids.begin(), ids.end(), 0);
  std::vector<float> out(ids.size() * t.dim());
  EXPECT_THAT(t.Lookup(ids, absl::MakeSpan(out)), IsOk());
  return out;
}

TEST_F(RocksDbStoreTest, MetadataRoundTrips) {
  StoredTable m;
  m.spec = *NormalizeTableSpec(Spec("a.b-c", 10, 3, OptimizerKind::kSparseAdam));
  m.spec.initializer.kind = InitKind::kUniform;
  m.spec.initializer.a = -0.1;
  m.version = 12;
  m.step = 5;
  m.floats_per_record = 9;
  auto back = DecodeMeta(EncodeMeta(m));
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(EncodeMeta(*back), EncodeMeta(m));
  EXPECT_EQ(back->spec.max_norm, 3.5);
  EXPECT_EQ(back->spec.optimizer.kind, OptimizerKind::kSparseAdam);
  EXPECT_EQ(back->step, 5);
  EXPECT_THAT(DecodeMeta("name=x\nnum_embeddings=abc\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("num_embeddings")));
  EXPECT_THAT(DecodeMeta("format=2\nname=x\n"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("format")));
}

TEST_F(RocksDbStoreTest, RestartRestoresRowsStateVersionAndStep) {
  std::vector<float> rows_before;
  std::vector<EmbeddingTable::StateSlot> state_before;
  {
    auto store = Open();
    TableRegistry registry(0, store.get());
    TableSpec spec = Spec("t", 50, 5, OptimizerKind::kAdagrad);
    spec.max_norm = 1e6;  // stored, but no lookup renorms (renorm is not bit-idempotent)
    auto t = registry.Create(spec);
    ASSERT_THAT(t, IsOk());
    for (int step = 0; step < 7; ++step) {
      std::vector<int64_t> ids = {step, step + 1, step + 1, 1, 40};
      std::vector<float> grads(ids.size() * 5, 0.5f * (step + 1));
      ASSERT_THAT((*t)->ApplyGradients(ids, grads), IsOk());
    }
    ASSERT_THAT((*t)->AssignRows({49}, {9, 9, 9, 9, 9}), IsOk());
    ASSERT_THAT((*t)->UpdateSettings({.frozen = true, .lr = 0.5}), IsOk());
    rows_before = Rows(**t);
    std::vector<int64_t> all(50);
    std::iota(all.begin(), all.end(), 0);
    state_before = *(*t)->ReadOptimizerState(all);
    ASSERT_THAT(registry.Create(Spec("gone", 5, 2, OptimizerKind::kSgd)), IsOk());
    ASSERT_THAT(registry.Drop("gone"), IsOk());
  }
  auto store = Open();
  TableRegistry registry(0, store.get());
  auto restored = registry.LoadFromStore();
  ASSERT_THAT(restored, IsOk());
  EXPECT_EQ(*restored, 1);
  auto t = registry.Get("t");
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->version(), 8);  // 7 pushes, 1 assign
  EXPECT_EQ((*t)->spec().max_norm, 1e6);
  EXPECT_EQ((*t)->optimizer_step(), 7);
  EXPECT_TRUE((*t)->spec().frozen);
  EXPECT_EQ((*t)->spec().optimizer.lr, 0.5);
  EXPECT_EQ(Rows(**t), rows_before);
  std::vector<int64_t> all(50);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_EQ((*t)->ReadOptimizerState(all)->at(0).values, state_before[0].values);
  EXPECT_THAT(registry.Get("gone"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("gone")));
}

// A table written as many small SST files (ingest_file_bytes of 4 KiB: 2,000
// rows of 8 floats make 16 files) comes back whole, and the staging files
// are gone.
TEST_F(RocksDbStoreTest, BulkCreateIngestsSeveralFilesAndCleansUp) {
  std::vector<float> rows_before;
  {
    StoreOptions options{dir_, /*sync=*/true};
    options.ingest_file_bytes = 4096;
    auto store = RocksDbStore::Open(options);
    ASSERT_THAT(store, IsOk());
    TableRegistry registry(0, store->get());
    TableSpec spec = Spec("bulk", 2000, 8, OptimizerKind::kSgd);
    spec.max_norm.reset();  // lookups must not renorm (write) rows here
    auto t = registry.Create(spec);
    ASSERT_THAT(t, IsOk());
    rows_before = Rows(**t);
  }
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().rfind("ingest-", 0), std::string::npos)
        << entry.path();
  }
  auto store = Open();
  TableRegistry registry(0, store.get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  auto t = registry.Get("bulk");
  ASSERT_THAT(t, IsOk());
  const std::vector<float> rows_after = Rows(**t);
  ASSERT_EQ(rows_after.size(), rows_before.size());
  for (size_t i = 0; i < rows_before.size(); ++i) {
    ASSERT_EQ(rows_after[i], rows_before[i]) << "row " << i / 8 << " column " << i % 8;
  }
}

// The column families of the database at dir_ (the store must be closed).
std::vector<std::string> Families(const std::string& dir) {
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir, &names).ok());
  std::sort(names.begin(), names.end());
  return names;
}

// A replacing Load writes the new rows first and switches in one write: a
// crash before the switch (a staged copy never committed) leaves the old
// table whole; after it, the new one; the other copy is dropped at open.
TEST_F(RocksDbStoreTest, ReplaceIsAtomicAcrossACrash) {
  const std::vector<float> old_rows = {1, 2, 3, 4, 5, 6};
  const std::vector<float> new_rows = {7, 8, 9, 10, 11, 12};
  TableSpec spec = Spec("r", 3, 2, OptimizerKind::kSgd);
  spec.max_norm.reset();
  spec.padding_idx.reset();
  {
    auto store = Open();
    TableRegistry registry(0, store.get());
    ASSERT_THAT(registry.Load(spec, old_rows, {}, /*replace=*/false), IsOk());
    // "Crash" after the new rows are staged, before the commit.
    auto table = EmbeddingTable::Create(spec, new_rows);
    ASSERT_THAT(table, IsOk());
    ASSERT_THAT((*table)->StageTo(store.get()), IsOk());
  }
  EXPECT_EQ(Families(dir_).size(), 3u);  // default, the table, the staged copy
  {
    auto store = Open();
    TableRegistry registry(0, store.get());
    ASSERT_THAT(registry.LoadFromStore(), IsOk());
    EXPECT_EQ(Rows(**registry.Get("r")), old_rows);
    ASSERT_THAT(registry.Load(spec, new_rows, {}, /*replace=*/true), IsOk());
    EXPECT_EQ(Rows(**registry.Get("r")), new_rows);
  }
  EXPECT_EQ(Families(dir_).size(), 2u);  // the staged leftover and the old copy are gone
  auto store = Open();
  TableRegistry registry(0, store.get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  EXPECT_EQ(Rows(**registry.Get("r")), new_rows);
}

// A push that reaches a replaced table (a request that held it) must not
// write into the new table's stored rows.
TEST_F(RocksDbStoreTest, ReplacedTableNoLongerWritesThrough) {
  TableSpec spec = Spec("w", 3, 2, OptimizerKind::kSgd);
  spec.max_norm.reset();
  spec.padding_idx.reset();
  spec.scale_grad_by_freq = false;
  const std::vector<float> new_rows = {7, 8, 9, 10, 11, 12};
  {
    auto store = Open();
    TableRegistry registry(0, store.get());
    auto old_table = registry.Load(spec, {1, 2, 3, 4, 5, 6}, {}, /*replace=*/false);
    ASSERT_THAT(old_table, IsOk());
    ASSERT_THAT(registry.Load(spec, new_rows, {}, /*replace=*/true), IsOk());
    ASSERT_THAT((*old_table)->ApplyGradients({0}, {100, 100}), IsOk());
  }
  auto store = Open();
  TableRegistry registry(0, store.get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  EXPECT_EQ(Rows(**registry.Get("w")), new_rows);
}

TEST_F(RocksDbStoreTest, TrainingContinuesIdenticallyAfterRestart) {
  auto push = [](EmbeddingTable& t, int step) {
    std::vector<int64_t> ids = {step % 20, (step * 7) % 20, 3};
    std::vector<float> grads(ids.size() * 4);
    for (size_t i = 0; i < grads.size(); ++i) grads[i] = 0.01f * static_cast<float>(i + step);
    ASSERT_THAT(t.ApplyGradients(ids, grads), IsOk());
  };
  TableSpec spec = Spec("adam", 20, 4, OptimizerKind::kSparseAdam);
  spec.max_norm.reset();
  auto reference = EmbeddingTable::Create(spec);
  for (int step = 0; step < 20; ++step) push(**reference, step);
  {
    auto store = Open();
    auto t = EmbeddingTable::Create(spec, {}, store.get());
    for (int step = 0; step < 10; ++step) push(**t, step);
  }
  auto store = Open();
  auto stored = store->ListTables();
  ASSERT_THAT(stored, IsOk());
  auto t = EmbeddingTable::Restore(stored->at(0), store.get());
  ASSERT_THAT(t, IsOk());
  for (int step = 10; step < 20; ++step) push(**t, step);
  EXPECT_EQ(Rows(**t), Rows(**reference));
  EXPECT_EQ((*t)->optimizer_step(), 20);
}

TEST_F(RocksDbStoreTest, UnfinishedCreateIsDroppedAtOpen) {
  {
    // A rows family without metadata is what a crash during a create leaves.
    rocksdb::Options options;
    options.create_if_missing = true;
    rocksdb::DB* db;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, &db).ok());
    rocksdb::ColumnFamilyHandle* h;
    ASSERT_TRUE(db->CreateColumnFamily(rocksdb::ColumnFamilyOptions(), "rows/half", &h).ok());
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, std::string(8, '\0'), "xxxx").ok());
    db->DestroyColumnFamilyHandle(h);
    delete db;
  }
  auto store = Open();
  EXPECT_TRUE(store->ListTables()->empty());
  TableRegistry registry(0, store.get());
  EXPECT_THAT(registry.Create(Spec("half", 4, 2, OptimizerKind::kSgd)), IsOk());
}

TEST_F(RocksDbStoreTest, CorruptRecordIsDataLoss) {
  {
    auto store = Open();
    ASSERT_THAT(EmbeddingTable::Create(Spec("t", 4, 2, OptimizerKind::kSgd), {}, store.get()),
                IsOk());
  }
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir_, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> d;
    for (auto& n : names) d.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> hs;
    rocksdb::DB* db;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, d, &hs, &db).ok());
    for (auto* h : hs) {
      if (h->GetName().rfind("rows/t#", 0) == 0) {  // the table's family, rows/t#<generation>
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), h, std::string(8, '\0'), "short").ok());
      }
      db->DestroyColumnFamilyHandle(h);
    }
    delete db;
  }
  auto store = Open();
  TableRegistry registry(0, store.get());
  EXPECT_THAT(registry.LoadFromStore(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'t'")));
}

// --- Block checksums of the files a table is stored in ---

// A table as a snapshot stores it: 2,000 rows of 8 floats, row i holding
// i + 0.125 * j, staged as SST files and committed.
void StoreSnapTable(RocksDbStore& store) {
  StoredTable meta;
  meta.spec = *NormalizeTableSpec(Spec("snap", 2000, 8, OptimizerKind::kSgd));
  meta.floats_per_record = 8;
  ASSERT_THAT(store.CreateTable(meta,
                                [](int64_t id, float* out) {
                                  for (int j = 0; j < 8; ++j) out[j] = id + 0.125f * j;
                                }),
              IsOk());
}

std::vector<std::filesystem::path> SstFiles(const std::string& dir) {
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".sst") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

std::string FileBytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// CommitTable switches to the new copy at once but leaves the old one's
// files until DropReplaced (a table commits its snapshot under the lock
// its pushes wait for, and deleting 256 MiB of files took ~0.2 s here).
TEST_F(RocksDbStoreTest, TheReplacedCopyGoesAtDropReplaced) {
  auto store = Open();
  StoreSnapTable(*store);
  ASSERT_EQ(SstFiles(dir_).size(), 1u);
  StoredTable meta;
  meta.spec = *NormalizeTableSpec(Spec("snap", 2000, 8, OptimizerKind::kSgd));
  meta.floats_per_record = 8;
  auto staged = store->StageTable(meta, [](int64_t id, float* out) { std::fill(out, out + 8, -id); });
  ASSERT_THAT(staged, IsOk());
  ASSERT_THAT(store->CommitTable(meta, *staged), IsOk());
  int64_t seen = 0;
  ASSERT_THAT(store->ReadRecords(meta,
                                 [&](int64_t id, absl::Span<const float> r) {
                                   EXPECT_EQ(r[0], -id);  // the new copy's
                                   ++seen;
                                   return absl::OkStatus();
                                 }),
              IsOk());
  EXPECT_EQ(seen, 2000);
  EXPECT_EQ(SstFiles(dir_).size(), 2u);  // the old copy's files are still there
  store->DropReplaced();
  EXPECT_EQ(SstFiles(dir_).size(), 1u);
  store->DropReplaced();  // nothing left to drop
  EXPECT_EQ(SstFiles(dir_).size(), 1u);
}

// A damaged block of a stored table stops the restore (every block's
// checksum is checked, with no prefetch buffer in between): DataLoss naming the table, never rows
// loaded with the wrong bytes. One float's bit is flipped, so that the
// record is still well-formed and only the checksum can tell.
TEST_F(RocksDbStoreTest, ADamagedBlockStopsTheRestoreNamingTheTable) {
  StoreSnapTable(*Open());
  const float target = 1234 + 0.125f * 3;
  bool damaged = false;
  for (const auto& file : SstFiles(dir_)) {
    std::string bytes = FileBytes(file);
    const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(&target), 4));
    if (at == std::string::npos) continue;
    bytes[at] ^= 0x01;  // the lowest mantissa bit: another plausible float
    std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
    damaged = true;
  }
  ASSERT_TRUE(damaged);
  auto store = Open();
  TableRegistry registry(0, store.get());
  EXPECT_THAT(registry.LoadFromStore(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("read table 'snap'")));
}

// --- Row families and automatic compaction (RocksDbStore::SetUpdateLog) ---

// What the plain RocksDB API sees of the store's one rows family at `dir`
// (the store must be closed): its files, how many of them are SST files as
// SstFileWriter made them (ingested; compaction output lacks this
// property), and disable_auto_compactions in the newest OPTIONS file.
struct RowsFamilyFiles {
  int files = 0;
  int ingested = 0;
  bool auto_compactions_disabled = false;
};

RowsFamilyFiles InspectRowsFamily(const std::string& dir) {
  RowsFamilyFiles out;
  rocksdb::ConfigOptions config;
  config.ignore_unknown_options = true;
  config.ignore_unsupported_options = true;
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> latest;
  EXPECT_TRUE(rocksdb::LoadLatestOptions(config, dir, &db_options, &latest).ok());
  std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
  int rows_families = 0;
  for (const auto& d : latest) {
    if (d.name.rfind("rows/", 0) == 0) {
      ++rows_families;
      out.auto_compactions_disabled = d.options.disable_auto_compactions;
    }
  }
  EXPECT_EQ(rows_families, 1);
  std::vector<std::string> names;
  EXPECT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir, &names).ok());
  for (const std::string& name : names) {
    descriptors.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status s =
      rocksdb::DB::OpenForReadOnly(rocksdb::Options(), dir, descriptors, &handles, &raw);
  EXPECT_TRUE(s.ok()) << s.ToString();
  if (!s.ok()) return out;
  std::unique_ptr<rocksdb::DB> db(raw);
  for (rocksdb::ColumnFamilyHandle* h : handles) {
    if (h->GetName().rfind("rows/", 0) == 0) {
      rocksdb::ColumnFamilyMetaData meta;
      db->GetColumnFamilyMetaData(h, &meta);
      out.files = static_cast<int>(meta.file_count);
      rocksdb::TablePropertiesCollection props;
      EXPECT_TRUE(db->GetPropertiesOfAllTables(h, &props).ok());
      for (const auto& [file, p] : props) {
        out.ingested += p->user_collected_properties.count("rocksdb.external_sst_file.version");
      }
    }
    db->DestroyColumnFamilyHandle(h);
  }
  return out;
}

class RowsCompactionTest : public RocksDbStoreTest {
 protected:
  void SetUp() override {
    RocksDbStoreTest::SetUp();
    log_dir_ = dir_ + "_log";
    std::filesystem::remove_all(log_dir_);
    UpdateLogOptions o;
    o.dir = log_dir_;
    auto log = FileUpdateLog::Open(o);
    ASSERT_THAT(log, IsOk());
    log_ = *std::move(log);
  }
  void TearDown() override {
    log_.reset();
    std::filesystem::remove_all(log_dir_);
    RocksDbStoreTest::TearDown();
  }
  // A store whose tables are SST files of 4 KiB, with the log attached or not.
  std::unique_ptr<RocksDbStore> OpenSmallFiles(bool logged) {
    StoreOptions options{dir_, /*sync=*/false};
    options.ingest_file_bytes = 4096;
    auto store = RocksDbStore::Open(options);
    EXPECT_THAT(store, IsOk());
    if (!store.ok()) return nullptr;
    if (logged) (*store)->SetUpdateLog(log_.get());
    return *std::move(store);
  }
  // What a snapshot writes: a whole table staged and committed, 2,000 rows
  // of 8 floats in 16 files.
  static void Snapshot(RocksDbStore& store) { StoreSnapTable(store); }
  std::string log_dir_;
  std::unique_ptr<FileUpdateLog> log_;
};

// With the log attached, a snapshot's family keeps its ingested files: no
// automatic compaction rewrites them, now or at the next start.
TEST_F(RowsCompactionTest, LoggedSnapshotFamilyIsNotCompacted) {
  Snapshot(*OpenSmallFiles(/*logged=*/true));
  RowsFamilyFiles f = InspectRowsFamily(dir_);
  EXPECT_TRUE(f.auto_compactions_disabled);
  EXPECT_EQ(f.files, 16);
  EXPECT_EQ(f.ingested, 16);
  // Reopened with the log (restarts), the family stays out of compaction.
  for (int restart = 0; restart < 3; ++restart) {
    OpenSmallFiles(/*logged=*/true).reset();
    f = InspectRowsFamily(dir_);
    EXPECT_TRUE(f.auto_compactions_disabled);
    EXPECT_EQ(f.files, 16);
    EXPECT_EQ(f.ingested, 16);
  }
}

// Without a log, row families compact as before; the check above does see
// compaction output (an explicit CompactRange rewrites the 16 files).
TEST_F(RowsCompactionTest, UnloggedFamilyCompacts) {
  {
    auto store = OpenSmallFiles(/*logged=*/false);
    Snapshot(*store);
  }
  EXPECT_FALSE(InspectRowsFamily(dir_).auto_compactions_disabled);
  {
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(rocksdb::Options(), dir_, &names).ok());
    // The store's style; forced, so that no file is merely moved.
    rocksdb::ColumnFamilyOptions universal;
    universal.compaction_style = rocksdb::kCompactionStyleUniversal;
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& name : names) descriptors.emplace_back(name, universal);
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(rocksdb::Options(), dir_, descriptors, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::CompactRangeOptions force;
    force.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    for (rocksdb::ColumnFamilyHandle* h : handles) {
      if (h->GetName().rfind("rows/", 0) == 0) {
        EXPECT_TRUE(db->CompactRange(force, h, nullptr, nullptr).ok());
      }
      db->DestroyColumnFamilyHandle(h);
    }
  }
  const RowsFamilyFiles f = InspectRowsFamily(dir_);
  EXPECT_GE(f.files, 1);
  EXPECT_EQ(f.ingested, 0);
}

// Open leaves every rows family out of automatic compaction (a restart
// must not start rewriting a snapshot beside the restore); the first
// PutRecords into a family (--update_log=false) turns it on.
TEST_F(RowsCompactionTest, OpenedFamiliesCompactOnceWrittenTo) {
  Snapshot(*OpenSmallFiles(/*logged=*/false));
  EXPECT_FALSE(InspectRowsFamily(dir_).auto_compactions_disabled);
  OpenSmallFiles(/*logged=*/false).reset();
  EXPECT_TRUE(InspectRowsFamily(dir_).auto_compactions_disabled);
  {
    auto store = OpenSmallFiles(/*logged=*/false);
    auto tables = store->ListTables();
    ASSERT_THAT(tables, IsOk());
    ASSERT_EQ(tables->size(), 1u);
    const std::vector<int64_t> ids = {3, 1999};
    const std::vector<float> packed(16, 0.5f);
    ASSERT_THAT(store->PutRecords(tables->front(), ids, packed), IsOk());
  }
  EXPECT_FALSE(InspectRowsFamily(dir_).auto_compactions_disabled);
}

}  // namespace
}  // namespace embedserve
