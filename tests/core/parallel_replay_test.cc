#include "core/internal/parallel_replay.h"

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/embedding_table.h"
#include "core/update_log.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/memory_row_store.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::MemoryRowStore;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

// An UpdateLog that keeps deep copies of what is appended (the live side),
// so that the test can replay the same records into other tables.
class CapturingLog final : public UpdateLog {
 public:
  struct Kept {
    UpdateRecord::Kind kind;
    std::string table, trainer;
    int64_t generation, version, step;
    uint64_t trainer_sequence;
    std::vector<int64_t> ids;
    std::vector<float> floats;
    std::unique_ptr<TableSpec> spec;
    UpdateRecord View() const {
      UpdateRecord r;
      r.kind = kind;
      r.table = table;
      r.generation = generation;
      r.version = version;
      r.step = step;
      r.trainer = trainer;
      r.trainer_sequence = trainer_sequence;
      r.ids = ids;
      r.floats = floats;
      r.spec = spec.get();
      return r;
    }
  };

  absl::StatusOr<LogPosition> Append(const UpdateRecord& r) override {
    auto k = std::make_unique<Kept>();
    k->kind = r.kind;
    k->table = std::string(r.table);
    k->trainer = std::string(r.trainer);
    k->generation = r.generation;
    k->version = r.version;
    k->step = r.step;
    k->trainer_sequence = r.trainer_sequence;
    k->ids.assign(r.ids.begin(), r.ids.end());
    k->floats.assign(r.floats.begin(), r.floats.end());
    if (r.spec != nullptr) k->spec = std::make_unique<TableSpec>(*r.spec);
    kept_.push_back(std::move(k));
    return static_cast<LogPosition>(kept_.size());
  }
  absl::Status WaitDurable(LogPosition) override { return absl::OkStatus(); }
  absl::Status DropThrough(LogPosition) override { return absl::OkStatus(); }
  absl::Status Read(LogPosition after,
                    const std::function<absl::Status(LogPosition, const UpdateRecord&)>& visit)
      override {
    for (size_t i = after; i < kept_.size(); ++i) {
      const absl::Status s = visit(i + 1, kept_[i]->View());
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }
  absl::StatusOr<LogPosition> CopyTo(absl::string_view) override {
    return absl::UnimplementedError("CopyTo");
  }
  LogPosition last_position() const override { return kept_.size(); }
  UpdateLogStats Stats() const override { return {}; }

  const std::vector<std::unique_ptr<Kept>>& kept() const { return kept_; }

 private:
  std::vector<std::unique_ptr<Kept>> kept_;
};

TableSpec Spec(OptimizerKind kind, RowType type, int64_t rows, int64_t dim) {
  TableSpec s;
  s.name = "t";
  s.num_embeddings = rows;
  s.embedding_dim = dim;
  s.row_type = type;
  s.num_shards = 16;  // many shards: rows of one push land in all of them
  s.optimizer.kind = kind;
  s.optimizer.lr = 0.05;
  return s;
}

// Every byte a table holds for its rows: the rows as lookups read them and
// the optimizer state.
std::vector<uint8_t> Bytes(EmbeddingTable& t) {
  std::vector<int64_t> ids(t.num_rows());
  for (int64_t i = 0; i < t.num_rows(); ++i) ids[i] = i;
  std::vector<float> rows(ids.size() * t.dim());
  EXPECT_THAT(t.Lookup(ids, absl::MakeSpan(rows)), IsOk());
  std::vector<uint8_t> out(reinterpret_cast<const uint8_t*>(rows.data()),
                           reinterpret_cast<const uint8_t*>(rows.data() + rows.size()));
  auto state = t.ReadOptimizerState(ids);
  EXPECT_THAT(state, IsOk());
  for (const auto& slot : *state) {
    const auto* p = reinterpret_cast<const uint8_t*>(slot.values.data());
    out.insert(out.end(), p, p + slot.values.size() * sizeof(float));
  }
  return out;
}

// Live pushes (random ids with repeats, so pushes overlap), an assign and a
// settings change in between (records that must see every earlier push).
void TrainLive(EmbeddingTable& t, int pushes, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> id(0, t.num_rows() - 1);
  std::normal_distribution<float> g(0.0f, 0.1f);
  for (int p = 0; p < pushes; ++p) {
    const int n = 1 + static_cast<int>(rng() % 700);
    std::vector<int64_t> ids(n);
    std::vector<float> grads(n * t.dim());
    for (auto& i : ids) i = id(rng);
    for (auto& v : grads) v = g(rng);
    ASSERT_THAT(t.ApplyGradients(ids, grads), IsOk());
    if (p == pushes / 3) {
      std::vector<int64_t> a = {ids[0], (ids[0] + 1) % t.num_rows()};
      std::vector<float> values(2 * t.dim(), 0.25f);
      ASSERT_THAT(t.AssignRows(a, values), IsOk());
    }
    if (p == pushes / 2) {
      EmbeddingTable::Settings s;
      s.lr = 0.01;
      ASSERT_THAT(t.UpdateSettings(s), IsOk());
    }
  }
}

// Replays the captured log (all but the create) into a fresh table of the
// same spec: with an applier as TableRegistry::Replay does (drained before
// every record that is not a push, and at the end), or serially. `pinned`:
// the records pin their spans, as those of a mapped log segment do, so the
// applier queues pushes in place instead of copies.
std::unique_ptr<EmbeddingTable> ReplayInto(const TableSpec& spec, const CapturingLog& log,
                                           ParallelReplay* applier, bool pinned = false) {
  auto made = EmbeddingTable::Create(spec);
  EXPECT_THAT(made, IsOk());
  std::unique_ptr<EmbeddingTable> t = *std::move(made);
  for (size_t i = 0; i < log.kept().size(); ++i) {
    UpdateRecord r = log.kept()[i]->View();
    if (r.kind == UpdateRecord::Kind::kCreate) continue;
    // Owns nothing (the log outlives the replay), but is set.
    if (pinned) r.pin = std::shared_ptr<const void>(std::shared_ptr<void>(), log.kept()[i].get());
    if (applier != nullptr && r.kind != UpdateRecord::Kind::kPush) applier->Drain();
    EXPECT_THAT(t->Replay(i + 1, r, applier), IsOk());
  }
  if (applier != nullptr) applier->Drain();
  return t;
}

struct Case {
  OptimizerKind kind;
  RowType type;
  int64_t dim;
};

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  static const char* const kKinds[] = {"Sgd", "Adagrad", "RowWiseAdagrad", "SparseAdam"};
  static const char* const kTypes[] = {"Float32", "Float16", "BFloat16", "Int8Rowwise"};
  return std::string(kKinds[static_cast<int>(info.param.kind)]) +
         kTypes[static_cast<int>(info.param.type)] + "Dim" + std::to_string(info.param.dim);
}

class ParallelReplayTest : public ::testing::TestWithParam<Case> {};

TEST_P(ParallelReplayTest, ParallelReplayGivesTheBytesOfSerialReplayAndOfLive) {
  const Case c = GetParam();
  const TableSpec spec = Spec(c.kind, c.type, 5000, c.dim);
  MemoryRowStore store;
  CapturingLog log;
  auto live = EmbeddingTable::Create(spec, {}, TableOptions{&store, nullptr, &log, 1});
  ASSERT_THAT(live, IsOk());
  ASSERT_GT((*live)->num_shards(), 8);
  TrainLive(**live, 60, 7);
  const std::vector<uint8_t> served = Bytes(**live);

  auto serial = ReplayInto(spec, log, nullptr);
  EXPECT_TRUE(Bytes(*serial) == served) << "serial replay differs from live";
  for (int workers : {1, 3, 8}) {
    for (bool pinned : {false, true}) {
      // A small queue bound: the reader waits for the workers, too.
      ParallelReplay applier(workers, /*max_queued_bytes=*/16 << 10);
      auto parallel = ReplayInto(spec, log, &applier, pinned);
      EXPECT_TRUE(Bytes(*parallel) == served)
          << workers << " workers" << (pinned ? ", pinned records," : "") << " differ from live";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(
    OptimizersAndRowTypes, ParallelReplayTest,
    ::testing::Values(Case{OptimizerKind::kSgd, RowType::kFloat32, 64},
                      Case{OptimizerKind::kSgd, RowType::kFloat16, 17},
                      Case{OptimizerKind::kAdagrad, RowType::kFloat32, 33},
                      Case{OptimizerKind::kRowWiseAdagrad, RowType::kFloat32, 7},
                      Case{OptimizerKind::kRowWiseAdagrad, RowType::kBFloat16, 16},
                      Case{OptimizerKind::kSparseAdam, RowType::kFloat32, 64},
                      Case{OptimizerKind::kSparseAdam, RowType::kInt8Rowwise, 31}),
    CaseName);

// A push record of table 't' (ids and gradient sums, viewed, not owned).
UpdateRecord PushRecord(absl::Span<const int64_t> ids, absl::Span<const float> sums) {
  UpdateRecord r;
  r.kind = UpdateRecord::Kind::kPush;
  r.table = "t";
  r.ids = ids;
  r.floats = sums;
  return r;
}

// An SGD table 't' of 1000 rows of 3, ids 0..999 in *all, its rows in *rows.
void SgdTable(std::unique_ptr<EmbeddingTable>* table, std::vector<int64_t>* all,
              std::vector<float>* rows) {
  auto t = EmbeddingTable::Create(Spec(OptimizerKind::kSgd, RowType::kFloat32, 1000, 3));
  ASSERT_THAT(t, IsOk());
  *table = *std::move(t);
  all->resize(1000);
  for (int64_t i = 0; i < 1000; ++i) (*all)[i] = i;
  rows->resize(1000 * 3);
  ASSERT_THAT((*table)->Lookup(*all, absl::MakeSpan(*rows)), IsOk());
}

TEST(ParallelReplayTest, OnePushSplitBetweenWorkersStepsEveryIdOnce) {
  // 3 workers each step their own blocks of ids; together every id of the
  // push once (SGD: w + (-lr) * g), and no other row.
  std::unique_ptr<EmbeddingTable> table;
  std::vector<int64_t> all;
  std::vector<float> want, got(1000 * 3);
  ASSERT_NO_FATAL_FAILURE(SgdTable(&table, &all, &want));
  std::vector<int64_t> ids;
  for (int64_t i = 999; i >= 0; i -= 7) ids.push_back(i);
  std::vector<float> sums(ids.size() * 3, 1.0f);
  const float lr = 0.05f;
  for (int64_t id : ids) {
    for (int j = 0; j < 3; ++j) want[id * 3 + j] += -lr * 1.0f;
  }
  ParallelReplay applier(3);
  ASSERT_THAT(table->Replay(1, PushRecord(ids, sums), &applier), IsOk());
  applier.Drain();
  ASSERT_THAT(table->Lookup(all, absl::MakeSpan(got)), IsOk());
  EXPECT_EQ(got, want);
}

// A pinned push is used in place: the queue holds its pin (the only owner
// of the ids and gradients here) until the workers are done, and lets go
// of it by the time Drain returns.
TEST(ParallelReplayTest, APinnedPushIsAppliedInPlaceAndReleasedByDrain) {
  std::unique_ptr<EmbeddingTable> table;
  std::vector<int64_t> all;
  std::vector<float> want, got(1000 * 3);
  ASSERT_NO_FATAL_FAILURE(SgdTable(&table, &all, &want));
  struct Push {
    std::vector<int64_t> ids;
    std::vector<float> sums;
  };
  std::weak_ptr<Push> watch;
  ParallelReplay applier(2);
  for (int p = 0; p < 20; ++p) {
    auto push = std::make_shared<Push>();
    for (int64_t i = p; i < 1000; i += 3) push->ids.push_back(i);
    push->sums.assign(push->ids.size() * 3, 0.5f + p);
    for (int64_t id : push->ids) {
      for (int j = 0; j < 3; ++j) want[id * 3 + j] += -0.05f * (0.5f + p);
    }
    UpdateRecord r = PushRecord(push->ids, push->sums);
    watch = push;
    r.pin = std::move(push);  // the record's pin is the only owner now
    ASSERT_THAT(table->Replay(p + 1, r, &applier), IsOk());
  }
  applier.Drain();
  EXPECT_TRUE(watch.expired()) << "the queue still holds the last push's pin after Drain";
  ASSERT_THAT(table->Lookup(all, absl::MakeSpan(got)), IsOk());
  for (size_t i = 0; i < got.size(); ++i) ASSERT_FLOAT_EQ(got[i], want[i]) << i;
}

TEST(ParallelReplayTest, ABadIdIsStillDataLossWithAnApplier) {
  const TableSpec spec = Spec(OptimizerKind::kSgd, RowType::kFloat32, 100, 4);
  auto table = EmbeddingTable::Create(spec);
  ASSERT_THAT(table, IsOk());
  ParallelReplay applier(2);
  std::vector<int64_t> ids = {3, 100};
  std::vector<float> sums(8, 1.0f);
  EXPECT_THAT((*table)->Replay(9, PushRecord(ids, sums), &applier),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("record 9 for table 't'")));
}

}  // namespace
}  // namespace embedserve::internal
