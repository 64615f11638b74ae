// The update log end to end under the engine: tables on a real RocksDbStore
// with a real FileUpdateLog in a temporary directory. Whatever was applied
// live (pushes with every optimizer, assigns, settings, max_norm renorms,
// creates, drops, loads, snapshots taken while pushes run) must come back
// byte for byte after a restart, at every SIMD level, and exactly-once
// numbers must survive.
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/embedding_table.h"
#include "core/gather.h"
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
using ::testing::AllOf;
using ::testing::HasSubstr;

// Everything a restart must give back of one table.
struct TableState {
  std::vector<float> rows;
  std::vector<std::vector<float>> state;
  int64_t version = 0;
  int64_t step = 0;
  TableSpec spec;
  bool operator==(const TableState& o) const {
    // Bytes, not values: -0.0 and NaN payloads count.
    return rows.size() == o.rows.size() &&
           std::memcmp(rows.data(), o.rows.data(), rows.size() * sizeof(float)) == 0 &&
           state == o.state && version == o.version && step == o.step &&
           spec.frozen == o.spec.frozen && spec.optimizer.lr == o.spec.optimizer.lr;
  }
};

TableState Capture(EmbeddingTable& t) {
  TableState s;
  s.rows.resize(t.num_rows() * t.dim());
  EXPECT_THAT(t.CopyRows(0, t.num_rows(), s.rows.data()), IsOk());
  std::vector<int64_t> all(t.num_rows());
  for (int64_t i = 0; i < t.num_rows(); ++i) all[i] = i;
  auto slots = t.ReadOptimizerState(all);
  EXPECT_THAT(slots, IsOk());
  for (const auto& slot : *slots) s.state.push_back(slot.values);
  s.version = t.version();
  s.step = t.optimizer_step();
  s.spec = t.spec();
  return s;
}

TableSpec Spec(const std::string& name, OptimizerKind kind, int64_t rows = 200, int64_t dim = 12) {
  TableSpec s;
  s.name = name;
  s.num_embeddings = rows;
  s.embedding_dim = dim;
  s.padding_idx = 3;
  s.scale_grad_by_freq = kind == OptimizerKind::kAdagrad;
  s.optimizer.kind = kind;
  s.optimizer.lr = 0.05;
  s.initializer.seed = 7;
  s.num_shards = 4;
  return s;
}

// A push of `n` ids (duplicates and the padding id included) to `t`.
void RandomPush(EmbeddingTable& t, std::mt19937_64& rng, int n = 40,
                EmbeddingTable::PushOrigin origin = {}) {
  std::uniform_int_distribution<int64_t> id(0, t.num_rows() - 1);
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::vector<int64_t> ids(n);
  for (auto& i : ids) i = id(rng) % 25;  // few distinct: many duplicates
  ids[0] = 3;                            // the padding id
  std::vector<float> grads(n * t.dim());
  for (auto& x : grads) x = g(rng);
  ASSERT_THAT(t.ApplyGradients(ids, grads, origin), IsOk());
}

// Changes of every kind on a few tables; returns their states.
std::map<std::string, TableState> Workload(Durable& d, bool snapshot_midway) {
  std::mt19937_64 rng(42);
  const OptimizerKind kinds[] = {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                                 OptimizerKind::kRowWiseAdagrad, OptimizerKind::kSparseAdam};
  std::vector<std::string> names;
  for (OptimizerKind k : kinds) {
    const std::string name = "t" + std::to_string(static_cast<int>(k));
    EXPECT_THAT(d.registry().Create(Spec(name, k)), IsOk());  // one kCreate record each
    names.push_back(name);
  }
  // A table from given values goes to the store whole (no kCreate).
  TableSpec pre = Spec("pretrained", OptimizerKind::kAdagrad, 50, 5);
  pre.max_norm = 1.5;
  std::vector<float> values(50 * 5);
  for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(i % 7) - 3.0f;
  EXPECT_THAT(d.registry().Create(pre, values), IsOk());
  names.push_back("pretrained");
  // A table made and dropped: replay must not bring it back.
  EXPECT_THAT(d.registry().Create(Spec("gone", OptimizerKind::kSgd)), IsOk());
  RandomPush(*d.Get("gone"), rng);
  EXPECT_THAT(d.registry().Drop("gone"), IsOk());

  for (int round = 0; round < 6; ++round) {
    for (const std::string& n : names) RandomPush(*d.Get(n), rng, 40, {"trainer-a", uint64_t(round + 1)});
    if (round == 2) {
      auto t = d.Get("t1");
      EXPECT_THAT(t->UpdateSettings({.lr = 0.5}), IsOk());
      std::vector<float> v(2 * 12, 0.25f);
      EXPECT_THAT(t->AssignRows({5, 6}, v), IsOk());
      // A max_norm lookup renormalises rows in place: logged.
      std::vector<float> out(4 * 5);
      EXPECT_THAT(d.Get("pretrained")->Lookup({0, 1, 2, 6}, absl::MakeSpan(out)), IsOk());
    }
    if (snapshot_midway && round == 3) EXPECT_THAT(d.registry().SnapshotTables(), IsOk());
  }
  std::map<std::string, TableState> out;
  for (const std::string& n : names) out[n] = Capture(*d.Get(n));
  return out;
}

std::map<std::string, TableState> Reopen(const std::string& dir) {
  Durable d(dir);
  EXPECT_THAT(d.Recover(), IsOk());
  std::map<std::string, TableState> out;
  for (const auto& t : d.registry().List()) out[t->name()] = Capture(*t);
  return out;
}

TEST(LogRecoveryTest, ReplayGivesTheBytesThatWereServed) {
  testing::TempDir dir("log_recovery");
  std::map<std::string, TableState> live;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    live = Workload(d, /*snapshot_midway=*/false);
  }
  const auto back = Reopen(dir.path());
  ASSERT_EQ(back.size(), live.size());  // "gone" stays gone
  for (const auto& [name, state] : live) {
    ASSERT_TRUE(back.contains(name)) << name;
    EXPECT_TRUE(back.at(name) == state) << name;
  }
}

TEST(LogRecoveryTest, SnapshotThenReplayGivesTheSameBytesAndShortensTheLog) {
  testing::TempDir dir("log_snapshot");
  std::map<std::string, TableState> live;
  LogPosition last = 0;
  {
    // Small segments, so that truncation has whole segments to drop.
    Durable d(dir.path(), /*segment_bytes=*/4096);
    ASSERT_THAT(d.Recover(), IsOk());
    live = Workload(d, /*snapshot_midway=*/true);
    last = d.log().last_position();
    EXPECT_GT(d.log().Stats().first_position, 1u) << "the snapshot dropped no segment";
  }
  const auto back = Reopen(dir.path());
  for (const auto& [name, state] : live) EXPECT_TRUE(back.at(name) == state) << name;
  // A second snapshot of everything, then a restart with nothing to replay.
  {
    Durable d(dir.path(), 4096);
    ASSERT_THAT(d.Recover(), IsOk());
    EXPECT_EQ(d.log().last_position(), last);
    EXPECT_THAT(d.registry().SnapshotTables(), IsOk());
  }
  const auto again = Reopen(dir.path());
  for (const auto& [name, state] : live) EXPECT_TRUE(again.at(name) == state) << name;
}

TEST(LogRecoveryTest, ReplayAtEverySimdLevelGivesTheSameBytes) {
  testing::TempDir dir("log_simd");
  std::map<std::string, TableState> live;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    live = Workload(d, false);
  }
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (level > BestSupportedLevel()) continue;
    ASSERT_THAT(ForceSimdLevel(level), IsOk());
    const auto back = Reopen(dir.path());
    for (const auto& [name, state] : live) {
      EXPECT_TRUE(back.at(name) == state) << name << " at level " << static_cast<int>(level);
    }
  }
  ASSERT_THAT(ForceSimdLevel(BestSupportedLevel()), IsOk());
}

TEST(LogRecoveryTest, SnapshotDuringPushesKeepsEveryPushExactlyOnce) {
  testing::TempDir dir("log_concurrent");
  TableState live;
  {
    Durable d(dir.path(), 1 << 14);
    ASSERT_THAT(d.Recover(), IsOk());
    TableSpec spec = Spec("busy", OptimizerKind::kSparseAdam, 4096, 16);
    spec.num_shards = 16;
    ASSERT_THAT(d.registry().Create(spec), IsOk());
    auto t = d.Get("busy");
    std::atomic<bool> stop{false};
    std::thread pusher([&] {
      std::mt19937_64 rng(9);
      uint64_t seq = 0;
      while (!stop.load()) RandomPush(*t, rng, 64, {"p", ++seq});
    });
    for (int i = 0; i < 5; ++i) EXPECT_THAT(d.registry().SnapshotTables(), IsOk());
    stop = true;
    pusher.join();
    live = Capture(*t);
  }
  const auto back = Reopen(dir.path());
  EXPECT_TRUE(back.at("busy") == live);
}

TEST(LogRecoveryTest, AnIdleTableDoesNotHoldTheLogBack) {
  testing::TempDir dir("log_idle");
  std::map<std::string, TableState> live;
  {
    Durable d(dir.path(), /*segment_bytes=*/4096);
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("idle", OptimizerKind::kAdagrad)), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("busy", OptimizerKind::kSgd)), IsOk());
    std::mt19937_64 rng(11);
    RandomPush(*d.Get("idle"), rng);
    ASSERT_THAT(d.registry().SnapshotTables(), IsOk());
    const LogPosition idle_from = d.Get("idle")->replay_from();
    for (int i = 0; i < 50; ++i) RandomPush(*d.Get("busy"), rng);
    ASSERT_THAT(d.registry().SnapshotTables(), IsOk());
    EXPECT_GT(d.log().Stats().first_position, idle_from + 1) << "the idle table held the log";
    for (int i = 0; i < 5; ++i) RandomPush(*d.Get("busy"), rng);
    for (const char* n : {"idle", "busy"}) live[n] = Capture(*d.Get(n));
  }
  const auto back = Reopen(dir.path());
  for (const auto& [name, state] : live) EXPECT_TRUE(back.at(name) == state) << name;
}

TEST(LogRecoveryTest, ADataDirectoryWrittenWithoutTheLogOpensAndGoesOn) {
  testing::TempDir dir("log_old_layout");
  TableState before;
  std::mt19937_64 rng(13);
  {
    // The layout before the log: every change written to RocksDB.
    auto store = RocksDbStore::Open({dir.Path("db"), false});
    ASSERT_THAT(store, IsOk());
    TableRegistry registry(0, store->get());
    ASSERT_THAT(registry.Create(Spec("old", OptimizerKind::kSparseAdam)), IsOk());
    for (int i = 0; i < 4; ++i) RandomPush(**registry.Get("old"), rng);
    before = Capture(**registry.Get("old"));
  }
  TableState after;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    EXPECT_TRUE(Capture(*d.Get("old")) == before);
    for (int i = 0; i < 4; ++i) RandomPush(*d.Get("old"), rng);
    after = Capture(*d.Get("old"));
  }
  EXPECT_TRUE(Reopen(dir.path()).at("old") == after);
}

// Over 64 MiB a table is restored from several id ranges at once (as runs of
// records from a snapshot, and one record per row without the log).
TEST(LogRecoveryTest, ALargeTableRestoresFromRangesInParallel) {
  testing::TempDir dir("log_large");
  TableSpec spec = Spec("large", OptimizerKind::kSgd, 300000, 64);  // 77 MB of rows
  std::mt19937_64 rng(17);
  auto push_around = [&](EmbeddingTable& t) {
    // Rows at the ends and in the middle, where the ranges meet.
    std::vector<int64_t> ids = {0, 1, 149999, 150000, 150001, 299998, 299999};
    std::vector<float> grads(ids.size() * 64);
    for (auto& g : grads) g = std::normal_distribution<float>(0.0f, 1.0f)(rng);
    ASSERT_THAT(t.ApplyGradients(ids, grads), IsOk());
  };
  TableState live;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(spec), IsOk());
    push_around(*d.Get("large"));
    ASSERT_THAT(d.registry().SnapshotTables(), IsOk());
    live = Capture(*d.Get("large"));
  }
  EXPECT_TRUE(Reopen(dir.path()).at("large") == live);
  // One record per row: the layout without the log.
  testing::TempDir rows_dir("log_large_rows");
  {
    auto store = RocksDbStore::Open({rows_dir.Path("db"), false});
    ASSERT_THAT(store, IsOk());
    TableRegistry registry(0, store->get());
    ASSERT_THAT(registry.Create(spec), IsOk());
    push_around(**registry.Get("large"));
    live = Capture(**registry.Get("large"));
  }
  auto store = RocksDbStore::Open({rows_dir.Path("db"), false});
  ASSERT_THAT(store, IsOk());
  TableRegistry registry(0, store->get());
  ASSERT_THAT(registry.LoadFromStore(), IsOk());
  EXPECT_TRUE(Capture(**registry.Get("large")) == live);
}

TEST(LogRecoveryTest, ExactlyOnceNumbersSurviveRestart) {
  testing::TempDir dir("log_once");
  std::mt19937_64 rng(1);
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("e", OptimizerKind::kSgd)), IsOk());
    RandomPush(*d.Get("e"), rng, 10, {"tr", 5});
  }
  Durable d(dir.path());
  ASSERT_THAT(d.Recover(), IsOk());
  auto t = d.Get("e");
  const int64_t version = t->version();
  std::vector<int64_t> ids = {1, 2};
  std::vector<float> grads(2 * 12, 1.0f);
  auto again = t->ApplyGradients(ids, grads, {"tr", 5});
  ASSERT_THAT(again, IsOk());
  EXPECT_TRUE(again->duplicate);
  EXPECT_EQ(t->version(), version);
  auto next = t->ApplyGradients(ids, grads, {"tr", 6});
  ASSERT_THAT(next, IsOk());
  EXPECT_FALSE(next->duplicate);
  EXPECT_EQ(t->version(), version + 1);
  EXPECT_THAT(t->ApplyGradients(ids, grads, {"bad name!", 7}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("trainer name")));
}

TEST(LogRecoveryTest, CheckpointRestoresTheTablesAsTheyWereThen) {
  testing::TempDir dir("log_checkpoint");
  TableState after;
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("c", OptimizerKind::kAdagrad)), IsOk());
    std::mt19937_64 rng(3);
    for (int i = 0; i < 5; ++i) RandomPush(*d.Get("c"), rng);
    const TableState then = Capture(*d.Get("c"));
    ASSERT_THAT(d.registry().CreateCheckpoint("ck"), IsOk());
    for (int i = 0; i < 5; ++i) RandomPush(*d.Get("c"), rng);
    ASSERT_FALSE(Capture(*d.Get("c")) == then);
    ASSERT_THAT(d.registry().RestoreCheckpoint("ck", {}), IsOk());
    const TableState restored = Capture(*d.Get("c"));
    EXPECT_TRUE(restored.rows == then.rows && restored.state == then.state);
    // And the restored table is itself durable through the log.
    RandomPush(*d.Get("c"), rng);
    after = Capture(*d.Get("c"));
  }
  EXPECT_TRUE(Reopen(dir.path()).at("c") == after);
}

TEST(LogRecoveryTest, ACorruptRecordInTheMiddleStopsTheStart) {
  testing::TempDir dir("log_corrupt");
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("x", OptimizerKind::kSgd)), IsOk());
    std::mt19937_64 rng(5);
    for (int i = 0; i < 20; ++i) RandomPush(*d.Get("x"), rng);
  }
  // Flip a byte in the middle of the only segment.
  std::string segment;
  for (const auto& e : std::filesystem::directory_iterator(dir.Path("log"))) segment = e.path();
  std::fstream f(segment, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(0, std::ios::end);
  const std::streamoff middle = f.tellg() / 2;
  f.seekg(middle);
  char c = 0;
  f.read(&c, 1);
  c ^= 0x5a;
  f.seekp(middle);
  f.write(&c, 1);
  f.close();
  auto store = RocksDbStore::Open({dir.Path("db"), false});
  ASSERT_THAT(store, IsOk());
  UpdateLogOptions o;
  o.dir = dir.Path("log");
  EXPECT_THAT(FileUpdateLog::Open(o), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("position")));
}

// A settings record that passes its CRC but names another optimizer than
// the table's (a log written by a bug, or edited) stops the start with an
// error: replaying it made the next push step state the rows have no room
// for (a crash, found by fuzz/update_log_fuzz).
TEST(LogRecoveryTest, ASettingsRecordOfAnotherOptimizerStopsTheStart) {
  testing::TempDir dir("log_settings");
  {
    Durable d(dir.path());
    ASSERT_THAT(d.Recover(), IsOk());
    ASSERT_THAT(d.registry().Create(Spec("x", OptimizerKind::kSgd)), IsOk());
    std::mt19937_64 rng(5);
    RandomPush(*d.Get("x"), rng);
    TableSpec other = d.Get("x")->spec();
    other.optimizer.kind = OptimizerKind::kAdagrad;
    UpdateRecord r;
    r.kind = UpdateRecord::Kind::kSettings;
    r.table = "x";
    r.generation = d.Get("x")->generation();
    r.spec = &other;
    ASSERT_THAT(d.log().Append(r), IsOk());
    RandomPush(*d.Get("x"), rng);
  }
  Durable again(dir.path());
  EXPECT_THAT(again.Recover(),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("table 'x'"), HasSubstr("optimizer's kind"))));
}

}  // namespace
}  // namespace embedserve
