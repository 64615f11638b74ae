// Dynamic tables (TableSpec::dynamic, issue 15) in the engine: ids from any
// int64 range, unseen ids read as their initial value without making rows,
// rows made by pushes (admission), evicted by pushes (max_rows, ttl_steps),
// and kept through snapshots, the update log and a restart on a real
// RocksDbStore and FileUpdateLog. A dynamic table fed ids 0..N-1 must give
// exactly the numbers of a dense table of N rows with the same seed (whose
// numbers the torch conformance tests pin), for every optimizer.
#include <cstring>
#include <functional>
#include <utility>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/embedding_table.h"
#include "core/gather.h"
#include "core/initializer.h"
#include "core/table_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"
#include "tests/testing/durable_registry.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve {
namespace {

using ::embedserve::testing::Durable;
using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kDim = 8;

TableSpec DynamicSpecFor(const std::string& name, OptimizerKind kind, DynamicSpec d = {}) {
  TableSpec s;
  s.name = name;
  s.embedding_dim = kDim;
  s.optimizer.kind = kind;
  s.optimizer.lr = 0.1;
  s.initializer.seed = 11;
  s.dynamic = d;
  return s;
}

std::vector<float> Rows(EmbeddingTable& t, const std::vector<int64_t>& ids) {
  std::vector<float> out(ids.size() * t.dim());
  EXPECT_THAT(t.Lookup(ids, absl::MakeSpan(out)), IsOk());
  return out;
}

std::vector<float> Initial(const TableSpec& spec, const std::vector<int64_t>& ids) {
  auto normal = NormalizeTableSpec(spec);
  EXPECT_THAT(normal, IsOk());
  std::vector<float> out(ids.size() * spec.embedding_dim);
  RowInitializer(*normal).Fill(ids, out.data());
  return out;
}

std::vector<float> Grads(std::mt19937_64& rng, size_t n) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<float> v(n * kDim);
  for (float& x : v) x = g(rng);
  return v;
}

bool SameBytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(DynamicSpecTest, RefusesWhatADynamicTableCannotHave) {
  TableSpec s = DynamicSpecFor("d", OptimizerKind::kSgd);
  s.num_embeddings = 10;
  EXPECT_THAT(NormalizeTableSpec(s), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("no num_embeddings")));
  s = DynamicSpecFor("d", OptimizerKind::kSgd, {.admit_after = 256});
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("admit_after")));
  s = DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = -1});
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("max_rows")));
  s = DynamicSpecFor("d", OptimizerKind::kSgd);
  s.initializer.kind = InitKind::kXavierUniform;
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("xavier")));
  s = DynamicSpecFor("d", OptimizerKind::kSgd);
  s.padding_idx = -5;  // an id like any other: kept as it is
  auto n = NormalizeTableSpec(s);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(*n->padding_idx, -5);
  EXPECT_THAT(EmbeddingTable::Create(DynamicSpecFor("d", OptimizerKind::kSgd),
                                     std::vector<float>(kDim, 1.0f)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no initial values")));
}

TEST(DynamicTableTest, UnseenIdsReadTheirInitialValueAndMakeNoRow) {
  const TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd);
  auto t = EmbeddingTable::Create(spec);
  ASSERT_THAT(t, IsOk());
  const std::vector<int64_t> ids = {5, -1, INT64_MAX, INT64_MIN, 1ll << 40, 5};
  const std::vector<float> got = Rows(**t, ids);
  EXPECT_TRUE(SameBytes(got, Initial(spec, ids)));
  EXPECT_EQ((*t)->num_rows(), 0);
  // The same value as row 5 of a dense table with the same seed.
  TableSpec dense = spec;
  dense.dynamic.reset();
  dense.num_embeddings = 10;
  auto d = EmbeddingTable::Create(dense);
  ASSERT_THAT(d, IsOk());
  EXPECT_TRUE(SameBytes(Rows(**d, {5}), std::vector<float>(got.begin(), got.begin() + kDim)));
  // unseen_zeros.
  auto z = EmbeddingTable::Create(DynamicSpecFor("z", OptimizerKind::kSgd, {.unseen_zeros = true}));
  ASSERT_THAT(z, IsOk());
  EXPECT_EQ(Rows(**z, {7, 8}), std::vector<float>(2 * kDim, 0.0f));
}

// The oracle: a dense table of 64 rows, same seed, same pushes and assigns
// and pooled lookups. Every optimizer, duplicates, padding, scale_grad_by_freq.
TEST(DynamicTableTest, MatchesADenseTableOnTheSameIds) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                             OptimizerKind::kRowWiseAdagrad, OptimizerKind::kSparseAdam}) {
    SCOPED_TRACE(static_cast<int>(kind));
    TableSpec spec = DynamicSpecFor("d", kind);
    spec.padding_idx = 3;
    spec.scale_grad_by_freq = true;
    TableSpec dense = spec;
    dense.dynamic.reset();
    dense.num_embeddings = 64;
    auto dyn = EmbeddingTable::Create(spec);
    auto den = EmbeddingTable::Create(dense);
    ASSERT_THAT(dyn, IsOk());
    ASSERT_THAT(den, IsOk());
    std::mt19937_64 rng(5);
    std::uniform_int_distribution<int64_t> pick(0, 63);
    std::set<int64_t> stored = {9, 50};
    for (int step = 0; step < 30; ++step) {
      std::vector<int64_t> ids(20);
      for (auto& i : ids) i = pick(rng) % 40;  // duplicates; ids 40..63 stay unseen
      ids[0] = 3;
      stored.insert(ids.begin() + 1, ids.end());
      const std::vector<float> g = Grads(rng, ids.size());
      auto a = (*dyn)->ApplyGradients(ids, g);
      auto b = (*den)->ApplyGradients(ids, g);
      ASSERT_THAT(a, IsOk());
      ASSERT_THAT(b, IsOk());
      EXPECT_EQ(a->rows_applied, b->rows_applied);
      if (step == 10) {  // an assign between pushes
        const std::vector<float> v(2 * kDim, 0.25f);
        ASSERT_THAT((*dyn)->AssignRows({9, 50}, v), IsOk());
        ASSERT_THAT((*den)->AssignRows({9, 50}, v), IsOk());
      }
    }
    std::vector<int64_t> all(64);
    for (int64_t i = 0; i < 64; ++i) all[i] = i;
    EXPECT_TRUE(SameBytes(Rows(**dyn, all), Rows(**den, all)));
    auto sa = (*dyn)->ReadOptimizerState(all);
    auto sb = (*den)->ReadOptimizerState(all);
    ASSERT_THAT(sa, IsOk());
    ASSERT_THAT(sb, IsOk());
    ASSERT_EQ(sa->size(), sb->size());
    for (size_t k = 0; k < sa->size(); ++k) EXPECT_TRUE(SameBytes((*sa)[k].values, (*sb)[k].values));
    // Pooled, every mode, padding in bags, an empty bag.
    const std::vector<int64_t> ids = {1, 3, 50, 2, 2, 3, 60};
    const std::vector<int64_t> bounds = {0, 3, 3, 7};
    for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean, PoolingMode::kMax}) {
      std::vector<float> pa(3 * kDim), pb(3 * kDim);
      ASSERT_THAT((*dyn)->LookupPooled(ids, bounds, mode, {}, absl::MakeSpan(pa)), IsOk());
      ASSERT_THAT((*den)->LookupPooled(ids, bounds, mode, {}, absl::MakeSpan(pb)), IsOk());
      EXPECT_TRUE(SameBytes(pa, pb));
    }
    stored.erase(3);  // the padding id gets no row from pushes
    EXPECT_EQ((*dyn)->num_rows(), static_cast<int64_t>(stored.size()));
  }
}

// Pooled lookups copy rows in runs of bags (about 64 MiB of rows each): a
// request of several runs pools as a dense table does, and one bag past
// 1 GiB of rows is refused before anything is allocated.
TEST(DynamicTableTest, PooledLookupsRunInBoundedPieces) {
  TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd);
  spec.embedding_dim = 4096;  // 4,096 ids a run
  spec.padding_idx = 5;
  TableSpec dense = spec;
  dense.dynamic.reset();
  dense.num_embeddings = 64;
  auto dyn = EmbeddingTable::Create(spec);
  auto den = EmbeddingTable::Create(dense);
  ASSERT_THAT(dyn, IsOk());
  ASSERT_THAT(den, IsOk());
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int64_t> pick(0, 63);
  std::vector<int64_t> ids(10000);
  for (auto& i : ids) i = pick(rng);
  std::vector<int64_t> bounds = {0};
  while (bounds.back() < 10000) bounds.push_back(std::min<int64_t>(bounds.back() + 97, 10000));
  const int64_t bags = static_cast<int64_t>(bounds.size()) - 1;
  for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean, PoolingMode::kMax}) {
    std::vector<float> a(bags * 4096), b(bags * 4096);
    ASSERT_THAT((*dyn)->LookupPooled(ids, bounds, mode, {}, absl::MakeSpan(a)), IsOk());
    ASSERT_THAT((*den)->LookupPooled(ids, bounds, mode, {}, absl::MakeSpan(b)), IsOk());
    EXPECT_TRUE(SameBytes(a, b));
  }
  spec.embedding_dim = 65536;  // 4,096 ids make 1 GiB of rows
  auto wide = EmbeddingTable::Create(spec);
  ASSERT_THAT(wide, IsOk());
  const std::vector<int64_t> many(4097, 1);
  std::vector<float> out(65536);
  EXPECT_THAT((*wide)->LookupPooled(many, {0, 4097}, PoolingMode::kSum, {}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("split it")));
}

TEST(DynamicTableTest, MaxNormMatchesADenseTable) {
  TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd);
  spec.max_norm = 1.0;
  TableSpec dense = spec;
  dense.dynamic.reset();
  dense.num_embeddings = 16;
  auto dyn = EmbeddingTable::Create(spec);
  auto den = EmbeddingTable::Create(dense);
  ASSERT_THAT(dyn, IsOk());
  ASSERT_THAT(den, IsOk());
  std::mt19937_64 rng(9);
  const std::vector<int64_t> ids = {1, 2, 2, 7};
  for (int step = 0; step < 5; ++step) {
    // As training does: the lookup first (it renormalises), then the push.
    EXPECT_TRUE(SameBytes(Rows(**dyn, ids), Rows(**den, ids)));
    const std::vector<float> g = Grads(rng, ids.size());
    ASSERT_THAT((*dyn)->ApplyGradients(ids, g), IsOk());
    ASSERT_THAT((*den)->ApplyGradients(ids, g), IsOk());
  }
  EXPECT_TRUE(SameBytes(Rows(**dyn, {1, 2, 7, 9}), Rows(**den, {1, 2, 7, 9})));
}

// A max_norm lookup writes the rows it renormalises, but a read never
// decides an eviction: the LRU order stays, live and after replay.
TEST(DynamicTableTest, RenormByALookupDoesNotMoveTheLruOrder) {
  embedserve::testing::TempDir dir("dynamic_renorm");
  TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = 2});
  spec.max_norm = 0.5;  // every N(0, 1) row of dim 8 is renormalised
  std::vector<int64_t> kept;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.registry().Create(spec), IsOk());
    auto t = d.Get("d");
    const std::vector<float> g(kDim, -5.0f);  // +0.5 each: past max_norm again
    ASSERT_THAT(t->ApplyGradients({10}, g), IsOk());
    ASSERT_THAT(t->ApplyGradients({20}, g), IsOk());
    const int64_t version = t->version();
    Rows(*t, {10});  // renormalises row 10 (the LRU head)
    EXPECT_GT(t->version(), version);
    EXPECT_EQ(t->StoredIds(), (std::vector<int64_t>{10, 20}));
    ASSERT_THAT(t->ApplyGradients({30}, g), IsOk());  // evicts 10, not 20
    kept = t->StoredIds();
    EXPECT_EQ(kept, (std::vector<int64_t>{20, 30}));
  }
  Durable again(dir.path());
  ASSERT_THAT(again.Recover(), IsOk());
  EXPECT_EQ(again.Get("d")->StoredIds(), kept);
}

TEST(DynamicTableTest, AdmissionAfterKPushes) {
  const TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd, {.admit_after = 3});
  auto t = EmbeddingTable::Create(spec);
  ASSERT_THAT(t, IsOk());
  const std::vector<float> g(kDim, 1.0f);
  const std::vector<int64_t> id = {1ll << 50};
  for (int k = 1; k <= 2; ++k) {
    auto r = (*t)->ApplyGradients(id, g);
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->rows_applied, 0);  // counted, not stored: the update is dropped
    EXPECT_TRUE(SameBytes(Rows(**t, id), Initial(spec, id)));
  }
  auto r = (*t)->ApplyGradients(id, g);
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->rows_applied, 1);
  std::vector<float> want = Initial(spec, id);
  for (float& x : want) x -= 0.1f * 1.0f;
  EXPECT_EQ(Rows(**t, id), want);
  EXPECT_EQ((*t)->dynamic_stats()->pushes_not_admitted, 2);
  EXPECT_EQ((*t)->num_rows(), 1);
}

TEST(DynamicTableTest, MaxRowsEvictsTheLeastRecentlyUpdated) {
  const TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = 2});
  auto t = EmbeddingTable::Create(spec);
  ASSERT_THAT(t, IsOk());
  const std::vector<float> g(kDim, 1.0f);
  ASSERT_THAT((*t)->ApplyGradients({10}, g), IsOk());
  ASSERT_THAT((*t)->ApplyGradients({20}, g), IsOk());
  ASSERT_THAT((*t)->ApplyGradients({10}, g), IsOk());  // 20 is now the oldest
  ASSERT_THAT((*t)->ApplyGradients({30}, g), IsOk());  // evicts 20
  EXPECT_EQ((*t)->num_rows(), 2);
  EXPECT_EQ((*t)->StoredIds(), (std::vector<int64_t>{10, 30}));
  EXPECT_TRUE(SameBytes(Rows(**t, {20}), Initial(spec, {20})));  // back to its initial value
  EXPECT_EQ((*t)->dynamic_stats()->rows_evicted, 1);
}

// Only the rows of the update in progress are pinned: an assign right after
// a push that filled the table evicts that push's oldest row.
TEST(DynamicTableTest, AnAssignAfterAFillingPushEvictsItsOldestRow) {
  auto t = EmbeddingTable::Create(DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = 2}));
  ASSERT_THAT(t, IsOk());
  ASSERT_THAT((*t)->ApplyGradients({1, 2}, std::vector<float>(2 * kDim, 1.0f)), IsOk());
  ASSERT_THAT((*t)->AssignRows({3}, std::vector<float>(kDim, 0.5f)), IsOk());
  EXPECT_EQ((*t)->StoredIds(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Rows(**t, {3}), std::vector<float>(kDim, 0.5f));
  // Within one push the rows are pinned: 3 ids into 2 rows store 2.
  auto r = (*t)->ApplyGradients({4, 5, 6}, std::vector<float>(3 * kDim, 1.0f));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->rows_applied, 2);
  EXPECT_EQ((*t)->StoredIds(), (std::vector<int64_t>{4, 5}));
  EXPECT_EQ((*t)->dynamic_stats()->pushes_dropped_full, 1);
}

TEST(DynamicTableTest, TtlExpiresRowsNotUpdatedForThatManyPushes) {
  const TableSpec spec = DynamicSpecFor("d", OptimizerKind::kAdagrad, {.ttl_steps = 2});
  auto t = EmbeddingTable::Create(spec);
  ASSERT_THAT(t, IsOk());
  const std::vector<float> g(kDim, 1.0f);
  ASSERT_THAT((*t)->ApplyGradients({1}, g), IsOk());  // step 1
  ASSERT_THAT((*t)->ApplyGradients({2}, g), IsOk());  // step 2
  EXPECT_EQ((*t)->num_rows(), 2);
  ASSERT_THAT((*t)->ApplyGradients({2}, g), IsOk());  // step 3: 1 (step 1 <= 3 - 2) expires
  EXPECT_EQ((*t)->StoredIds(), (std::vector<int64_t>{2}));
  EXPECT_EQ((*t)->dynamic_stats()->rows_expired, 1);
  auto state = (*t)->ReadOptimizerState({1});
  ASSERT_THAT(state, IsOk());
  EXPECT_EQ((*state)[0].values, std::vector<float>(kDim, 0.0f));  // initial state again
}

TEST(DynamicTableTest, PaddingIdIsZeroAndNeverStepped) {
  TableSpec spec = DynamicSpecFor("d", OptimizerKind::kSgd);
  spec.padding_idx = -7;
  auto t = EmbeddingTable::Create(spec);
  ASSERT_THAT(t, IsOk());
  auto r = (*t)->ApplyGradients({-7, -7}, std::vector<float>(2 * kDim, 1.0f));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->rows_applied, 0);
  EXPECT_EQ(Rows(**t, {-7}), std::vector<float>(kDim, 0.0f));
  EXPECT_EQ((*t)->num_rows(), 0);
}

TEST(DynamicTableTest, AMemoryLimitNeedsMaxRowsAndCountsThem) {
  TableRegistry limited(1 << 20);  // 1 MiB of tables
  EXPECT_THAT(limited.Create(DynamicSpecFor("d", OptimizerKind::kSgd)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs max_rows")));
  EXPECT_THAT(limited.Create(DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = 100000})),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("byte limit")));
  EXPECT_THAT(limited.Create(DynamicSpecFor("d", OptimizerKind::kSgd, {.max_rows = 1000})),
              IsOk());
  TableRegistry unlimited(0);
  EXPECT_THAT(unlimited.Create(DynamicSpecFor("d", OptimizerKind::kSgd)), IsOk());
}

TEST(DynamicTableTest, IdMinusOneIsAnIdLikeAnyOtherWithoutPaddingIdx) {
  auto t = EmbeddingTable::Create(DynamicSpecFor("d", OptimizerKind::kSgd));
  ASSERT_THAT(t, IsOk());
  auto r = (*t)->ApplyGradients({-1}, std::vector<float>(kDim, 1.0f));
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->rows_applied, 1);
  EXPECT_EQ((*t)->StoredIds(), std::vector<int64_t>{-1});
}

TEST(DynamicTableTest, CopyRowsIsRefused) {
  auto t = EmbeddingTable::Create(DynamicSpecFor("d", OptimizerKind::kSgd));
  ASSERT_THAT(t, IsOk());
  std::vector<float> out(kDim);
  EXPECT_THAT((*t)->CopyRows(0, 1, out.data()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dynamic")));
}

// ---- Durability ---------------------------------------------------------------

struct Captured {
  std::vector<int64_t> ids;  // LRU order
  std::vector<float> rows;
  std::vector<std::vector<float>> state;
  int64_t step = 0, version = 0;
  DynamicTableStats stats;
};

Captured Capture(EmbeddingTable& t) {
  Captured c;
  c.ids = t.StoredIds();
  std::vector<int64_t> probe = c.ids;
  for (int64_t i = 0; i <= 60; ++i) probe.push_back(i * 7919 - 100000);  // stored or not
  c.rows = Rows(t, probe);
  auto s = t.ReadOptimizerState(probe);
  EXPECT_THAT(s, IsOk());
  for (const auto& slot : *s) c.state.push_back(slot.values);
  c.step = t.optimizer_step();
  c.version = t.version();
  c.stats = *t.dynamic_stats();
  return c;
}

void ExpectSame(const Captured& a, const Captured& b) {
  EXPECT_EQ(a.ids, b.ids);
  EXPECT_TRUE(SameBytes(a.rows, b.rows));
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.stats.rows_stored, b.stats.rows_stored);
  // The counters DescribeTable reports go on across a restart.
  EXPECT_EQ(a.stats.rows_admitted, b.stats.rows_admitted);
  EXPECT_EQ(a.stats.rows_evicted, b.stats.rows_evicted);
  EXPECT_EQ(a.stats.rows_expired, b.stats.rows_expired);
  EXPECT_EQ(a.stats.pushes_not_admitted, b.stats.pushes_not_admitted);
  EXPECT_EQ(a.stats.pushes_dropped_full, b.stats.pushes_dropped_full);
}

// Pushes of ids from a wide sparse range, with evictions (max_rows, TTL)
// and assigns; a snapshot in the middle when asked.
void Workload(EmbeddingTable& t, int pushes, uint64_t seed, bool snapshot_midway,
              int ids_per_push = 12) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int64_t> pick(0, 60);
  for (int p = 0; p < pushes; ++p) {
    std::vector<int64_t> ids(ids_per_push);
    for (auto& i : ids) i = pick(rng) * 7919 - 100000;  // negative ids too
    ASSERT_THAT(t.ApplyGradients(ids, Grads(rng, ids.size())), IsOk());
    if (p % 9 == 4) {
      ASSERT_THAT(t.AssignRows({ids[1]}, Grads(rng, 1)), IsOk());
    }
    if (snapshot_midway && p == pushes / 2) {
      ASSERT_THAT(t.Snapshot(), IsOk());
    }
  }
}

TEST(DynamicDurabilityTest, RestartGivesBackTheSameRowsOrderAndCounts) {
  for (bool snapshot : {false, true}) {
    for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kSparseAdam}) {
      SCOPED_TRACE(::testing::Message() << "snapshot " << snapshot << " kind " << static_cast<int>(kind));
      embedserve::testing::TempDir dir("dynamic_table_test");
      Captured before;
      {
        Durable d(dir.path());
        ASSERT_THAT(d.registry().Create(DynamicSpecFor(
                        "d", kind, {.max_rows = 40, .ttl_steps = 25})),
                    IsOk());
        auto t = d.Get("d");
        Workload(*t, 60, 3, snapshot);
        before = Capture(*t);
        EXPECT_GT(before.stats.rows_evicted + before.stats.rows_expired, 0);
      }
      Durable again(dir.path());
      ASSERT_THAT(again.registry().LoadFromStore(), IsOk());
      auto t = again.Get("d");
      ASSERT_NE(t, nullptr);
      ExpectSame(Capture(*t), before);
      // And it goes on as the live one would have.
      Workload(*t, 10, 4, false);
    }
  }
}

TEST(DynamicDurabilityTest, SnapshotThenRestartThenMorePushesEqualsNeverStopping) {
  // TTL and LRU (the restored steps and order decide what later pushes
  // keep), and admission (the restored counts decide which ids get rows).
  for (const DynamicSpec& rules : {DynamicSpec{.max_rows = 30, .ttl_steps = 15},
                                   DynamicSpec{.max_rows = 30, .admit_after = 3}}) {
    SCOPED_TRACE(rules.admit_after);
    embedserve::testing::TempDir live_dir("dynamic_live"), restarted_dir("dynamic_restarted");
    const TableSpec spec = DynamicSpecFor("d", OptimizerKind::kAdagrad, rules);
    Durable live(live_dir.path());
    ASSERT_THAT(live.registry().Create(spec), IsOk());
    // Few ids a push: rows live long.
    Workload(*live.Get("d"), 40, 8, true, 3);
    {
      Durable d(restarted_dir.path());
      ASSERT_THAT(d.registry().Create(spec), IsOk());
      Workload(*d.Get("d"), 40, 8, true, 3);
    }
    Durable d(restarted_dir.path());
    ASSERT_THAT(d.registry().LoadFromStore(), IsOk());
    ExpectSame(Capture(*d.Get("d")), Capture(*live.Get("d")));
    for (int round = 0; round < 4; ++round) {
      Workload(*live.Get("d"), 3, 9 + round, false, 3);
      Workload(*d.Get("d"), 3, 9 + round, false, 3);
      ExpectSame(Capture(*d.Get("d")), Capture(*live.Get("d")));
    }
  }
}

TEST(DynamicDurabilityTest, CheckpointRestoreGivesBackTheRowsOfThatMoment) {
  embedserve::testing::TempDir dir("dynamic_checkpoint");
  Captured after;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.registry().Create(DynamicSpecFor(
                    "d", OptimizerKind::kSparseAdam, {.max_rows = 25, .admit_after = 2})),
                IsOk());
    Workload(*d.Get("d"), 30, 12, true, 4);
    const Captured at_checkpoint = Capture(*d.Get("d"));
    ASSERT_THAT(d.registry().CreateCheckpoint("c1"), IsOk());
    Workload(*d.Get("d"), 10, 13, false, 4);  // changes after it
    ASSERT_THAT(d.registry().RestoreCheckpoint("c1", {}), IsOk());
    ExpectSame(Capture(*d.Get("d")), at_checkpoint);
    // Durable again as restored: a restart gives the same rows.
    Workload(*d.Get("d"), 5, 14, false, 4);
    after = Capture(*d.Get("d"));
  }
  Durable again(dir.path());
  ASSERT_THAT(again.registry().LoadFromStore(), IsOk());
  ExpectSame(Capture(*again.Get("d")), after);
}

// A data directory whose dynamic snapshot was written before records
// carried their order (4 trailing floats: id and step, records in the
// update order) still opens, with the same rows, order and counts.
TEST(DynamicDurabilityTest, SnapshotsWrittenBeforeTheOrderStillLoad) {
  embedserve::testing::TempDir dir("dynamic_old_format");
  const TableSpec spec =
      DynamicSpecFor("d", OptimizerKind::kSparseAdam, {.max_rows = 40, .ttl_steps = 25});
  Captured before;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.registry().Create(spec), IsOk());
    Workload(*d.Get("d"), 60, 31, true);
    before = Capture(*d.Get("d"));
  }
  {
    // Rewrite the stored table as the earlier servers did.
    auto store = RocksDbStore::Open({dir.path() + "/db", /*sync=*/false});
    ASSERT_THAT(store, IsOk());
    auto tables = (*store)->ListTables();
    ASSERT_THAT(tables, IsOk());
    ASSERT_EQ(tables->size(), 1u);
    const StoredTable meta = tables->front();
    const int64_t sf = meta.floats_per_record;
    const int64_t rf = sf - 6;  // id, step and order (storage/FORMAT.md)
    std::vector<std::pair<int64_t, std::vector<float>>> by_order;  // order, old record
    ASSERT_THAT((*store)->ReadRecords(meta,
                                      [&](int64_t, absl::Span<const float> r) {
                                        int64_t order;
                                        std::memcpy(&order, r.data() + rf + 4, sizeof(order));
                                        by_order.emplace_back(
                                            order, std::vector<float>(r.begin(), r.begin() + rf + 4));
                                        return absl::OkStatus();
                                      }),
                IsOk());
    ASSERT_EQ(static_cast<int64_t>(by_order.size()), meta.dynamic_rows);
    std::sort(by_order.begin(), by_order.end());
    StoredTable old = meta;
    old.floats_per_record = rf + 4;
    ASSERT_THAT((*store)->CreateTable(old,
                                      [&](int64_t k, float* dst) {
                                        std::copy(by_order[k].second.begin(),
                                                  by_order[k].second.end(), dst);
                                      }),
                IsOk());
  }
  Durable again(dir.path());
  ASSERT_THAT(again.Recover(), IsOk());
  ExpectSame(Capture(*again.Get("d")), before);
}

// A RocksDbStore that runs a hook while a table's records are being staged
// (a snapshot in progress), once, before it takes record `at`.
class HookedStore final : public RowStore {
 public:
  explicit HookedStore(RowStore* store) : store_(store) {}
  void Hook(int64_t at, std::function<void()> hook) {
    at_ = at;
    hook_ = std::move(hook);
  }

  absl::Status CreateCheckpoint(absl::string_view name) override {
    return store_->CreateCheckpoint(name);
  }
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints() override {
    return store_->ListCheckpoints();
  }
  absl::StatusOr<std::unique_ptr<RowStore>> OpenCheckpoint(absl::string_view name) override {
    return store_->OpenCheckpoint(name);
  }
  absl::StatusOr<std::unique_ptr<UpdateLog>> OpenCheckpointLog(absl::string_view name) override {
    return store_->OpenCheckpointLog(name);
  }
  absl::Status CreateTable(const StoredTable& meta,
                           const std::function<void(int64_t, float*)>& record) override {
    return store_->CreateTable(meta, record);
  }
  absl::StatusOr<std::string> StageTable(
      const StoredTable& meta, const std::function<void(int64_t, float*)>& record) override {
    return store_->StageTable(meta, [&](int64_t k, float* dst) {
      if (k == at_ && hook_) std::exchange(hook_, nullptr)();
      record(k, dst);
    });
  }
  absl::Status CommitTable(const StoredTable& meta, const std::string& staged) override {
    return store_->CommitTable(meta, staged);
  }
  void AbortTable(const std::string& staged) override { store_->AbortTable(staged); }
  void DropReplaced() override { store_->DropReplaced(); }
  absl::Status DropTable(absl::string_view name) override { return store_->DropTable(name); }
  absl::Status PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                          absl::Span<const float> packed) override {
    return store_->PutRecords(meta, ids, packed);
  }
  absl::Status PutMeta(const StoredTable& meta) override { return store_->PutMeta(meta); }
  absl::StatusOr<std::vector<StoredTable>> ListTables() override { return store_->ListTables(); }
  absl::Status ReadRecords(
      const StoredTable& meta,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) override {
    return store_->ReadRecords(meta, visit);
  }
  absl::Status ReadRecordRange(
      const StoredTable& meta, int64_t first, int64_t end,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) override {
    return store_->ReadRecordRange(meta, first, end, visit);
  }

 private:
  RowStore* const store_;
  int64_t at_ = -1;
  std::function<void()> hook_;
};

TEST(DynamicDurabilityTest, PushesGoOnDuringASnapshotWhichKeepsTheRowsOfItsStart) {
  // A snapshot copies a piece of the rows per hold of the table's lock;
  // pushes between the pieces (here: half way through staging) update,
  // evict, expire and reuse rows it has not copied yet. The snapshot must
  // still hold the rows as of its position, and the log the pushes after
  // it: a restart gives the rows of a table that never stopped.
  const TableSpec spec =
      DynamicSpecFor("d", OptimizerKind::kAdagrad, {.max_rows = 40, .ttl_steps = 20});
  embedserve::testing::TempDir live_dir("dynamic_live"), dir("dynamic_hooked");
  Durable live(live_dir.path());
  ASSERT_THAT(live.registry().Create(spec), IsOk());
  Workload(*live.Get("d"), 40, 21, false, 6);
  Workload(*live.Get("d"), 15, 22, false, 6);  // what goes on during the snapshot
  {
    auto store = RocksDbStore::Open({dir.path() + "/db", /*sync=*/false});
    ASSERT_THAT(store, IsOk());
    UpdateLogOptions o;
    o.dir = dir.path() + "/log";
    auto log = FileUpdateLog::Open(o);
    ASSERT_THAT(log, IsOk());
    (*store)->SetUpdateLog(log->get());
    HookedStore hooked(store->get());
    TableRegistry registry(0, &hooked);
    registry.SetUpdateLog(log->get());
    ASSERT_THAT(registry.Create(spec), IsOk());
    auto t = registry.Get("d");
    ASSERT_THAT(t, IsOk());
    Workload(**t, 40, 21, false, 6);
    const int64_t stored = (*t)->dynamic_stats()->rows_stored;
    ASSERT_GT(stored, 30);
    bool ran = false;
    hooked.Hook(stored / 2, [&] {
      Workload(**t, 15, 22, false, 6);
      ran = true;
    });
    ASSERT_THAT((*t)->Snapshot(), IsOk());
    EXPECT_TRUE(ran);
    ExpectSame(Capture(**t), Capture(*live.Get("d")));
    EXPECT_GT((*t)->dynamic_stats()->rows_evicted + (*t)->dynamic_stats()->rows_expired, 15);
  }
  Durable again(dir.path());
  ASSERT_THAT(again.Recover(), IsOk());
  ExpectSame(Capture(*again.Get("d")), Capture(*live.Get("d")));
}

TEST(DynamicDurabilityTest, NeedsTheUpdateLogOnADurableStore) {
  embedserve::testing::TempDir dir("dynamic_table_test");
  auto store = RocksDbStore::Open({dir.path() + "/db", /*sync=*/false});
  ASSERT_THAT(store, IsOk());
  TableRegistry registry(0, store->get());
  EXPECT_THAT(registry.Create(DynamicSpecFor("d", OptimizerKind::kSgd)),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("update log")));
}

}  // namespace
}  // namespace embedserve
