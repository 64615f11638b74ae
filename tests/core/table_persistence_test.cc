#include "core/internal/table_persistence.h"

#include <memory>
#include <vector>

#include "core/internal/sharded_row_storage.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/memory_row_store.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::MemoryRowStore;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// 3 rows of dim 2 with row-wise Adagrad: records of 2 + 1 floats.
TableSpec Spec() {
  TableSpec s;
  s.name = "p";
  s.num_embeddings = 3;
  s.embedding_dim = 2;
  s.optimizer.kind = OptimizerKind::kRowWiseAdagrad;
  return *NormalizeTableSpec(s);
}

std::unique_ptr<ShardedRowStorage> Rows() {
  auto rows = ShardedRowStorage::Create(Spec());
  EXPECT_THAT(rows, IsOk());
  for (int64_t id = 0; id < 3; ++id) {
    const float record[3] = {static_cast<float>(id), 10.0f + id, 100.0f + id};
    (*rows)->WriteRecord(id, record);
  }
  return *std::move(rows);
}

StoredTable Meta() {
  StoredTable m;
  m.spec = Spec();
  m.version = 4;
  m.floats_per_record = 3;
  return m;
}

TEST(TablePersistenceTest, StageWritesEveryRecordAndCommitAttaches) {
  MemoryRowStore store;
  auto rows = Rows();
  TablePersistence link;
  EXPECT_EQ(link.store(), nullptr);
  auto staged = TablePersistence::Stage(store, Meta(), *rows);
  ASSERT_THAT(staged, IsOk());
  EXPECT_THAT(store.Get("p").records, IsEmpty());  // staged, not yet visible
  StoredTable meta = Meta();
  meta.vocabulary = {"a", "b", "c"};
  ASSERT_THAT(link.Commit(store, meta, *staged), IsOk());
  EXPECT_EQ(link.store(), &store);
  const MemoryRowStore::Table t = store.Get("p");
  EXPECT_THAT(t.meta.vocabulary, ElementsAre("a", "b", "c"));
  ASSERT_EQ(t.records.size(), 3u);
  EXPECT_THAT(t.records.at(2), ElementsAre(2, 12, 102));
}

TEST(TablePersistenceTest, WritesGoNowhereWithoutAStore) {
  MemoryRowStore store;
  TablePersistence link;
  store.fail_writes = true;  // would fail if anything reached it
  EXPECT_THAT(link.PutRecords(Meta(), {1}, {1, 2, 3}), IsOk());
  EXPECT_THAT(link.PutMeta(Meta()), IsOk());
  link.Attach(&store);
  EXPECT_THAT(link.PutRecords(Meta(), {1}, {1, 2, 3}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("writes fail")));
  store.fail_writes = false;
  ASSERT_THAT(link.PutRecords(Meta(), {1}, {7, 8, 9}), IsOk());
  EXPECT_THAT(store.Get("p").records.at(1), ElementsAre(7, 8, 9));
  EXPECT_EQ(store.Get("p").meta.version, 4);
  link.Attach(nullptr);
  EXPECT_EQ(link.store(), nullptr);
}

TEST(TablePersistenceTest, LoadRoundTripsEveryRecord) {
  MemoryRowStore store;
  auto staged = TablePersistence::Stage(store, Meta(), *Rows());
  ASSERT_THAT(staged, IsOk());
  TablePersistence link;
  ASSERT_THAT(link.Commit(store, Meta(), *staged), IsOk());
  auto back = ShardedRowStorage::Create(Spec());
  ASSERT_THAT(back, IsOk());
  ASSERT_THAT(TablePersistence::Load(store, Meta(), **back), IsOk());
  for (int64_t id = 0; id < 3; ++id) {
    float record[3];
    (*back)->ReadRecord(id, record);
    EXPECT_THAT(record, ElementsAre(id, 10 + id, 100 + id));
  }
}

TEST(TablePersistenceTest, LoadReportsDataLoss) {
  auto fresh = [] { return *ShardedRowStorage::Create(Spec()); };
  MemoryRowStore store;
  MemoryRowStore::Table t{Meta(), {{0, {1, 2, 3}}, {1, {1, 2, 3}}, {2, {1, 2, 3}}}};
  StoredTable wrong_size = Meta();
  wrong_size.floats_per_record = 4;
  store.Put(t);
  EXPECT_THAT(TablePersistence::Load(store, wrong_size, *fresh()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("stored with 4 floats per record")));

  t.records[3] = {1, 2, 3};  // no such row
  store.Put(t);
  EXPECT_THAT(TablePersistence::Load(store, Meta(), *fresh()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("'p': bad record for row 3")));

  t.records.erase(3);
  t.records[1] = {1, 2};  // short record
  store.Put(t);
  EXPECT_THAT(TablePersistence::Load(store, Meta(), *fresh()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("bad record for row 1")));

  t.records.erase(1);  // a row missing
  store.Put(t);
  EXPECT_THAT(TablePersistence::Load(store, Meta(), *fresh()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("has 2 stored rows, expected 3")));
}

}  // namespace
}  // namespace embedserve::internal
