// Over ~450 lines on purpose: the model of the rules, the fixtures of tagged
// rows and the tests that share them are one unit's; the index and the
// sketch have their own files.
//
// The dynamic (id-keyed) row storage of issue 15 (its id index and admission
// sketch have their own tests): the admission / eviction rules against
// a plain std::map model, its determinism, and lookups concurrent with a
// writer that inserts, evicts and rebuilds the index.

#include "core/internal/dynamic_row_storage.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/gather.h"
#include "core/internal/admission_sketch.h"
#include "core/internal/id_index.h"
#include "core/internal/row_seqlock.h"
#include "core/row_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/exact_counts.h"

namespace embedserve::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

RowFormat FloatFormat(int64_t dim, int element_slots = 0, int row_slots = 0,
                      float initial_state = 0.0f, RowType type = RowType::kFloat32) {
  RowFormat f;
  f.dim = dim;
  f.type = type;
  f.row_bytes = CompactRowStride(type, dim);
  f.element_slots = element_slots;
  f.row_slots = row_slots;
  f.initial_state = initial_state;
  return f;
}

std::unique_ptr<DynamicRowStorage> MakeStorage(const RowFormat& f, const DynamicRowOptions& o) {
  auto s = DynamicRowStorage::Create(f, o);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *std::move(s) : nullptr;
}

// A row's contents as the tests write it: element 0 names the id, element
// j >= 1 is IdTag(id) + version + j (so a torn row has two versions).
float IdTag(int64_t id) {
  return static_cast<float>(static_cast<uint64_t>(id) % 1000003);
}

void WriteTagged(DynamicRowStorage& s, int64_t slot, int64_t id, int version) {
  float* row = reinterpret_cast<float*>(s.MutableRow(slot));
  row[0] = IdTag(id);
  for (int64_t j = 1; j < s.format().dim; ++j) row[j] = IdTag(id) + static_cast<float>(version + j);
}

// ---- IdIndex ---------------------------------------------------------------

class Model {
 public:
  explicit Model(const DynamicRowOptions& o)
      : o_(o), exact_(o.sketch_window > 0 ? o.sketch_window : 16 * o.sketch_width) {}

  // Returns, per id, whether it has a row after the update.
  std::vector<bool> Upsert(const std::vector<int64_t>& ids, int64_t step, UpsertMode mode) {
    if (o_.ttl_steps > 0) {
      for (auto it = rows_.begin(); it != rows_.end();) {
        if (it->second.first <= step - o_.ttl_steps) {
          it = rows_.erase(it);
          ++expired;
        } else {
          ++it;
        }
      }
    }
    std::vector<bool> has(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) {
      const int64_t id = ids[i];
      if (rows_.count(id)) {
        rows_[id] = {step, seq_++};
        has[i] = true;
        continue;
      }
      if (mode == UpsertMode::kPush && o_.admit_after >= 2 && exact_.Add(id) < o_.admit_after) {
        continue;
      }
      if (o_.max_rows > 0 && static_cast<int64_t>(rows_.size()) >= o_.max_rows) {
        auto lru = rows_.begin();
        for (auto it = rows_.begin(); it != rows_.end(); ++it) {
          if (it->second < lru->second) lru = it;
        }
        if (lru->second.first >= step) continue;  // pinned
        rows_.erase(lru);
        ++evicted;
      }
      rows_[id] = {step, seq_++};
      has[i] = true;
    }
    return has;
  }
  // Ids from least to most recently updated, with their last steps.
  std::vector<std::pair<int64_t, int64_t>> Order() const {
    std::vector<std::tuple<int64_t, int64_t, int64_t>> v;
    for (const auto& [id, at] : rows_) v.emplace_back(at.first, at.second, id);
    std::sort(v.begin(), v.end());
    std::vector<std::pair<int64_t, int64_t>> out;
    for (const auto& [step, seq, id] : v) out.emplace_back(id, step);
    return out;
  }
  bool Has(int64_t id) const { return rows_.count(id) > 0; }

  int64_t evicted = 0, expired = 0;

 private:
  DynamicRowOptions o_;
  ExactCounts exact_;
  int64_t seq_ = 0;
  std::map<int64_t, std::pair<int64_t, int64_t>> rows_;  // id -> (last step, order)
};

std::vector<std::pair<int64_t, int64_t>> Order(const DynamicRowStorage& s) {
  std::vector<std::pair<int64_t, int64_t>> out;
  s.ForEachRow([&](int64_t id, int64_t, int64_t step) { out.emplace_back(id, step); });
  return out;
}

struct RuleCase {
  int64_t max_rows, ttl_steps;
  int admit_after;
};

class DynamicRulesTest : public ::testing::TestWithParam<RuleCase> {};

TEST_P(DynamicRulesTest, MatchesTheModelOverRandomUpdates) {
  DynamicRowOptions o;
  o.max_rows = GetParam().max_rows;
  o.ttl_steps = GetParam().ttl_steps;
  o.admit_after = GetParam().admit_after;
  o.sketch_width = 1 << 16;
  o.sketch_window = 3000;
  o.seed = 5;
  auto s = MakeStorage(FloatFormat(8), o);
  Model model(o);
  std::mt19937_64 rng(GetParam().max_rows * 131 + GetParam().ttl_steps * 7 + o.admit_after);
  // Ids from a large sparse range, a few hundred of them in play, with the
  // extremes among them.
  std::vector<int64_t> universe = {kMin, kMax, 0, -1};
  while (universe.size() < 400) universe.push_back(static_cast<int64_t>(rng()));
  std::map<int64_t, int> versions;  // the model's row contents
  int64_t step = 0;
  for (int push = 0; push < 1500; ++push) {
    step += 1 + static_cast<int64_t>(rng() % 3 == 0);
    std::set<int64_t> distinct;
    const int n = 1 + static_cast<int>(rng() % 24);
    while (static_cast<int>(distinct.size()) < n) distinct.insert(universe[rng() % universe.size()]);
    std::vector<int64_t> ids(distinct.begin(), distinct.end());
    std::shuffle(ids.begin(), ids.end(), rng);
    const UpsertMode mode = rng() % 10 == 0 ? UpsertMode::kWrite : UpsertMode::kPush;
    std::vector<int64_t> slots(ids.size());
    std::vector<bool> fresh(ids.size());
    ASSERT_TRUE(s->Upsert(ids, step, mode, absl::MakeSpan(slots), [&](int64_t i, int64_t slot) {
                   fresh[i] = true;
                   WriteTagged(*s, slot, ids[i], 0);
                 }).ok());
    const std::vector<bool> has = model.Upsert(ids, step, mode);
    for (size_t i = 0; i < ids.size(); ++i) {
      ASSERT_EQ(slots[i] >= 0, has[i]) << "push " << push << " id " << ids[i];
      if (slots[i] < 0) continue;
      if (fresh[i]) versions[ids[i]] = 0;
      // The update: the caller writes the row it was given.
      WriteTagged(*s, slots[i], ids[i], ++versions[ids[i]]);
    }
    ASSERT_EQ(Order(*s), model.Order()) << "push " << push;
    // Every id of the universe resolves to its own row, or to no row.
    std::vector<int64_t> scratch;
    const absl::Span<const int64_t> resolved = s->Resolve(universe, &scratch);
    for (size_t i = 0; i < universe.size(); ++i) {
      ASSERT_EQ(resolved[i] >= 0, model.Has(universe[i])) << "push " << push;
      ASSERT_EQ(resolved[i] == DynamicRowStorage::kMissingSlot, !model.Has(universe[i]));
      if (resolved[i] < 0) continue;
      ASSERT_LT(resolved[i], s->num_slots());
      ASSERT_EQ(s->SlotOf(universe[i]), resolved[i]);
      const float* row = reinterpret_cast<const float*>(s->Row(resolved[i]));
      ASSERT_EQ(row[0], IdTag(universe[i]));
      ASSERT_EQ(row[1], IdTag(universe[i]) + static_cast<float>(versions[universe[i]] + 1));
    }
  }
  const DynamicRowStats st = s->stats();
  EXPECT_EQ(st.rows_stored, static_cast<int64_t>(model.Order().size()));
  EXPECT_EQ(st.rows_evicted, model.evicted);
  EXPECT_EQ(st.rows_expired, model.expired);
  EXPECT_EQ(st.rows_admitted, st.rows_stored + st.rows_evicted + st.rows_expired);
  if (o.max_rows > 0) EXPECT_GT(st.rows_evicted, 0);
  if (o.ttl_steps > 0) EXPECT_GT(st.rows_expired, 0);
  if (o.admit_after >= 2) EXPECT_GT(st.pushes_not_admitted, 0);
  if (o.max_rows > 0) EXPECT_LE(st.rows_stored, o.max_rows);
}

INSTANTIATE_TEST_SUITE_P(Rules, DynamicRulesTest,
                         ::testing::Values(RuleCase{0, 0, 1}, RuleCase{50, 0, 1},
                                           RuleCase{0, 6, 1}, RuleCase{0, 0, 3},
                                           RuleCase{40, 8, 2}, RuleCase{10, 0, 1},
                                           RuleCase{120, 30, 4}));

TEST(DynamicRowStorageTest, RowsOfTheUpdateInProgressAreNotEvicted) {
  DynamicRowOptions o;
  o.max_rows = 2;
  auto s = MakeStorage(FloatFormat(4), o);
  std::vector<int64_t> slots(3);
  ASSERT_TRUE(s->Upsert({10, 20, 30}, 1, UpsertMode::kPush, absl::MakeSpan(slots),
                        [](int64_t, int64_t) {}).ok());
  EXPECT_GE(slots[0], 0);
  EXPECT_GE(slots[1], 0);
  EXPECT_EQ(slots[2], DynamicRowStorage::kMissingSlot);
  EXPECT_EQ(s->stats().pushes_dropped_full, 1);
  // At the next step 10 (least recently updated) goes for 30, and its slot
  // is the one 30 gets.
  const int64_t slot10 = slots[0];
  ASSERT_TRUE(s->Upsert({20, 30}, 2, UpsertMode::kPush, absl::MakeSpan(slots).subspan(0, 2),
                        [](int64_t, int64_t) {}).ok());
  EXPECT_EQ(slots[1], slot10);
  EXPECT_EQ(s->SlotOf(10), DynamicRowStorage::kMissingSlot);
  EXPECT_THAT(Order(*s), ElementsAre(std::pair<int64_t, int64_t>{20, 2},
                                     std::pair<int64_t, int64_t>{30, 2}));
}

TEST(DynamicRowStorageTest, TtlCountsStepsNotCalls) {
  DynamicRowOptions o;
  o.ttl_steps = 3;
  auto s = MakeStorage(FloatFormat(4), o);
  std::vector<int64_t> slot(1);
  auto push = [&](int64_t id, int64_t step) {
    return s->Upsert({id}, step, UpsertMode::kPush, absl::MakeSpan(slot), [](int64_t, int64_t) {});
  };
  ASSERT_TRUE(push(1, 10).ok());
  ASSERT_TRUE(push(2, 12).ok());
  // Updated at 10, at step 12 it was not updated for 2 steps: kept.
  EXPECT_GE(s->SlotOf(1), 0);
  ASSERT_TRUE(push(2, 13).ok());  // 13 - 3 = 10: row 1 goes
  EXPECT_EQ(s->SlotOf(1), DynamicRowStorage::kMissingSlot);
  EXPECT_GE(s->SlotOf(2), 0);
  EXPECT_EQ(s->Expire(15), 0);
  EXPECT_EQ(s->Expire(16), 1);
  EXPECT_EQ(s->stats().rows_expired, 2);
  EXPECT_EQ(s->stats().rows_stored, 0);
}

TEST(DynamicRowStorageTest, BadInputIsRejected) {
  DynamicRowOptions bad;
  bad.admit_after = 256;
  EXPECT_EQ(DynamicRowStorage::Create(FloatFormat(4), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.max_rows = -1;
  EXPECT_EQ(DynamicRowStorage::Create(FloatFormat(4), bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  bad = {};
  bad.ttl_steps = -5;
  EXPECT_EQ(DynamicRowStorage::Create(FloatFormat(4), bad).status().code(),
            absl::StatusCode::kInvalidArgument);

  auto s = MakeStorage(FloatFormat(4), {});
  std::vector<int64_t> slots(2);
  const std::vector<int64_t> ids = {kMin, kMax};
  ASSERT_TRUE(s->Upsert(ids, 5, UpsertMode::kPush, absl::MakeSpan(slots), [](int64_t, int64_t) {})
                  .ok());
  EXPECT_EQ(s->Upsert(ids, 4, UpsertMode::kPush, absl::MakeSpan(slots), [](int64_t, int64_t) {})
                .code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s->Upsert(ids, 6, UpsertMode::kPush, absl::MakeSpan(slots).subspan(0, 1),
                      [](int64_t, int64_t) {})
                .code(),
            absl::StatusCode::kInvalidArgument);
  // The extremes are ordinary ids; the sentinel is never a slot.
  EXPECT_GE(s->SlotOf(kMin), 0);
  EXPECT_GE(s->SlotOf(kMax), 0);
  EXPECT_EQ(s->SlotOf(kMin + 1), DynamicRowStorage::kMissingSlot);
  const int64_t sentinel = DynamicRowStorage::kMissingSlot;
  EXPECT_FALSE(sentinel >= 0 && sentinel < s->num_slots());
  // The kernels report it as a bad position.
  const std::vector<int64_t> probe = {s->SlotOf(kMax), sentinel};
  std::vector<float> out(8);
  EXPECT_EQ(KernelsFor(SimdLevel::kScalar).gather(s->kernel_rows().rows, probe.data(), 2, out.data()),
            1);
  EXPECT_EQ(ActiveKernels().gather(s->kernel_rows().rows, probe.data(), 2, out.data()), 1);

  // A full storage of max_rows slots hands out no more.
  DynamicRowOptions one;
  one.max_rows = 1;
  auto t = MakeStorage(FloatFormat(4), one);
  for (int64_t step = 1; step <= 5; ++step) {
    std::vector<int64_t> slot(1);
    ASSERT_TRUE(t->Upsert({step * 1000}, step, UpsertMode::kPush, absl::MakeSpan(slot),
                          [](int64_t, int64_t) {}).ok());
    EXPECT_EQ(slot[0], 0);
  }
}

TEST(DynamicRowStorageTest, GrowthKeepsSlotsAndRowAddresses) {
  auto s = MakeStorage(FloatFormat(16), {});
  std::mt19937_64 rng(9);
  std::vector<int64_t> ids(150000);
  for (int64_t& id : ids) id = static_cast<int64_t>(rng());
  std::vector<int64_t> slots(ids.size());
  const uint8_t* first_row = nullptr;
  for (size_t begin = 0; begin < ids.size(); begin += 1000) {
    auto part = absl::MakeConstSpan(ids).subspan(begin, 1000);
    ASSERT_TRUE(s->Upsert(part, static_cast<int64_t>(begin), UpsertMode::kPush,
                          absl::MakeSpan(slots).subspan(begin, 1000),
                          [&](int64_t i, int64_t slot) { WriteTagged(*s, slot, part[i], 0); })
                    .ok());
    if (first_row == nullptr) first_row = s->Row(slots[0]);
  }
  const DynamicRowStats st = s->stats();
  EXPECT_EQ(st.rows_stored, 150000);
  EXPECT_GT(st.index_rebuilds, 0);
  EXPECT_GT(s->num_shards(), 1);
  EXPECT_EQ(s->Row(slots[0]), first_row);
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> resolved = s->Resolve(ids, &scratch);
  for (size_t i = 0; i < ids.size(); ++i) {
    ASSERT_EQ(resolved[i], slots[i]);
    ASSERT_EQ(reinterpret_cast<const float*>(s->Row(resolved[i]))[3], IdTag(ids[i]) + 3);
  }
  // Slots are handed out densely from 0.
  EXPECT_EQ(*std::max_element(slots.begin(), slots.end()), 149999);
}

TEST(DynamicRowStorageTest, RecordsKeepOptimizerStateAndNewRowsStartAtTheInitialState) {
  auto s = MakeStorage(FloatFormat(5, 2, 1, 0.25f), {});
  std::vector<int64_t> slot(1);
  ASSERT_TRUE(s->Upsert({kMin}, 0, UpsertMode::kWrite, absl::MakeSpan(slot),
                        [](int64_t, int64_t) {}).ok());
  std::vector<float> record(s->format().record_floats());
  s->ReadRecord(slot[0], record.data());
  for (int j = 5; j < 16; ++j) EXPECT_EQ(record[j], 0.25f);
  for (size_t j = 0; j < record.size(); ++j) record[j] = static_cast<float>(j) - 3;
  s->WriteRecord(slot[0], record.data());
  std::vector<float> back(record.size());
  s->ReadRecord(slot[0], back.data());
  EXPECT_EQ(back, record);
  EXPECT_GT(s->state_bytes(), 0);
}

// ---- Determinism -----------------------------------------------------------

std::vector<std::tuple<int64_t, int64_t, int64_t>> Feed(const DynamicRowOptions& o,
                                                        DynamicRowStats* stats) {
  auto s = MakeStorage(FloatFormat(8), o);
  std::mt19937_64 rng(77);
  for (int64_t step = 1; step <= 3000; ++step) {
    std::set<int64_t> distinct;
    while (distinct.size() < 20) distinct.insert(static_cast<int64_t>(rng() % 3000) * 7919 - 5000000);
    std::vector<int64_t> ids(distinct.begin(), distinct.end());
    // Fisher-Yates by hand: std::shuffle differs between standard libraries.
    for (size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[rng() % (i + 1)]);
    std::vector<int64_t> slots(ids.size());
    EXPECT_TRUE(s->Upsert(ids, step, UpsertMode::kPush, absl::MakeSpan(slots),
                          [](int64_t, int64_t) {}).ok());
  }
  std::vector<std::tuple<int64_t, int64_t, int64_t>> rows;
  s->ForEachRow([&](int64_t id, int64_t slot, int64_t step) { rows.emplace_back(id, slot, step); });
  *stats = s->stats();
  return rows;
}

TEST(DynamicRowStorageTest, TheSameUpdatesGiveTheSameRowsAndSlots) {
  DynamicRowOptions o;
  o.max_rows = 900;
  o.ttl_steps = 200;
  o.admit_after = 2;
  o.sketch_width = 1024;
  o.seed = 42;
  DynamicRowStats a_stats, b_stats;
  const auto a = Feed(o, &a_stats);
  const auto b = Feed(o, &b_stats);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a_stats.rows_evicted, b_stats.rows_evicted);
  EXPECT_EQ(a_stats.rows_expired, b_stats.rows_expired);
  EXPECT_EQ(a_stats.pushes_not_admitted, b_stats.pushes_not_admitted);
  EXPECT_GT(a_stats.rows_evicted, 0);
  // Pinned across machines and builds: nothing in the layout may depend on
  // the CPU, the SIMD level, addresses or timing.
  uint64_t h = 1469598103934665603ULL;
  for (const auto& [id, slot, step] : a) {
    for (uint64_t v : {static_cast<uint64_t>(id), static_cast<uint64_t>(slot),
                       static_cast<uint64_t>(step)}) {
      h = (h ^ v) * 1099511628211ULL;
    }
  }
  EXPECT_EQ(a.size(), 900u);
  EXPECT_EQ(h, 14208539589113365130ULL) << "fingerprint";
}

// ---- Lookups: gather with misses -------------------------------------------

TEST(DynamicRowStorageTest, GatherResolvedFillsMissesAtEveryLevel) {
  for (RowType type : {RowType::kFloat32, RowType::kFloat16}) {
    for (int64_t dim : {1, 7, 16, 33, 64}) {
      auto s = MakeStorage(FloatFormat(dim, 0, 0, 0, type), {});
      const std::vector<int64_t> stored = {5, kMin, 99, kMax};
      std::vector<int64_t> slots(stored.size());
      std::vector<float> row(dim);
      ASSERT_TRUE(s->Upsert(stored, 1, UpsertMode::kPush, absl::MakeSpan(slots),
                            [&](int64_t i, int64_t slot) {
                              for (int64_t j = 0; j < dim; ++j) row[j] = static_cast<float>(i * 100 + j);
                              s->WriteRecord(slot, row.data());
                            }).ok());
      const std::vector<int64_t> ids = {7, 5, 5, kMax, 8, 9, kMin, 99, -1};
      std::vector<int64_t> scratch;
      const absl::Span<const int64_t> resolved = s->Resolve(ids, &scratch);
      for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
        if (!CpuSupports(level)) continue;
        std::vector<float> out(ids.size() * dim, -7.0f);
        GatherResolved(KernelsFor(level), s->kernel_rows(), resolved, out.data(),
                       [&](int64_t i, float* dst) {
                         for (int64_t j = 0; j < dim; ++j) dst[j] = -static_cast<float>(ids[i] & 0xff);
                       });
        for (size_t i = 0; i < ids.size(); ++i) {
          const auto it = std::find(stored.begin(), stored.end(), ids[i]);
          for (int64_t j = 0; j < dim; ++j) {
            const float want = it == stored.end()
                                   ? -static_cast<float>(ids[i] & 0xff)
                                   : static_cast<float>((it - stored.begin()) * 100 + j);
            ASSERT_EQ(out[i * dim + j], want) << "type " << static_cast<int>(type) << " dim "
                                              << dim << " level " << static_cast<int>(level)
                                              << " position " << i;
          }
        }
      }
    }
  }
}

TEST(DynamicRowStorageTest, LookupGivesStoredRowsAndInitialRowsInEveryMix) {
  // Lookup probes through the index's filter while the thread's recent ids
  // were mostly unseen and straight while they were mostly stored: every
  // mix of requests, each way round, must give each stored id its row and
  // each other id its initial row (through erases and an index rebuild).
  constexpr int64_t dim = 8;
  auto s = MakeStorage(FloatFormat(dim), {});
  std::vector<int64_t> stored;
  for (int64_t k = 0; k < 3000; ++k) stored.push_back(k * 1000003 - 5);
  std::vector<int64_t> slots(stored.size());
  std::vector<float> row(dim);
  ASSERT_TRUE(s->Upsert(stored, 1, UpsertMode::kWrite, absl::MakeSpan(slots),
                        [&](int64_t i, int64_t slot) {
                          for (int64_t j = 0; j < dim; ++j) row[j] = static_cast<float>(i + j);
                          s->WriteRecord(slot, row.data());
                        }).ok());
  for (int64_t k = 0; k < 3000; k += 3) ASSERT_TRUE(s->Erase(stored[k]));
  auto initial = [](int64_t id, int64_t j) { return -static_cast<float>((id & 0xff) + j); };
  auto want = [&](int64_t id, int64_t j) {
    const int64_t k = (id + 5) / 1000003;
    const bool has = (id + 5) % 1000003 == 0 && k >= 0 && k < 3000 && k % 3 != 0;
    return has ? static_cast<float>(k + j) : initial(id, j);
  };
  RowSeqlock seqlock;
  std::mt19937_64 rng(8);
  for (int round = 0; round < 60; ++round) {
    // Requests from all-unseen to all-stored, in runs and shuffled.
    const int stored_share = round % 5;  // of 4
    std::vector<int64_t> ids(200);
    for (size_t i = 0; i < ids.size(); ++i) {
      const bool pick_stored = static_cast<int>(rng() % 4) < stored_share;
      ids[i] = pick_stored ? stored[rng() % stored.size()] : static_cast<int64_t>(rng() | 1);
    }
    if (round % 2) std::sort(ids.begin(), ids.end());
    std::vector<float> out(ids.size() * dim, 99.0f);
    s->Lookup(ids, ActiveKernels(), round % 3 ? &seqlock : nullptr, out.data(),
              [&](absl::Span<const int64_t> unseen, float* rows) {
                for (size_t u = 0; u < unseen.size(); ++u) {
                  for (int64_t j = 0; j < dim; ++j) rows[u * dim + j] = initial(unseen[u], j);
                }
              });
    for (size_t i = 0; i < ids.size(); ++i) {
      for (int64_t j = 0; j < dim; ++j) {
        ASSERT_EQ(out[i * dim + j], want(ids[i], j)) << "round " << round << " id " << ids[i];
      }
    }
  }
}

// ---- Concurrency -----------------------------------------------------------

// A writer that inserts, updates, evicts, expires and rebuilds the index
// under the row seqlock, and readers that follow the documented lookup
// protocol and check every row they get: all of it from one version (not
// torn) and of the id they asked for (never a row that an evicted id left
// in a reused slot). Bounded by the writer's work, not by time.
// Readers by the steps of the protocol and by DynamicRowStorage::Lookup.
TEST(DynamicRowStorageTest, LookupsDuringInsertsEvictionsAndRebuildsSeeWholeRowsOfTheirIds) {
  constexpr int64_t kDim = 32;
  DynamicRowOptions o;
  o.max_rows = 64;  // heavy slot reuse
  o.ttl_steps = 40;
  o.seed = 1;
  auto s = MakeStorage(FloatFormat(kDim), o);
  RowSeqlock seqlock;
  // Ids whose tags differ: 300 in play, 5 live per 64 slots.
  std::vector<int64_t> universe;
  for (int64_t k = 0; k < 300; ++k) universe.push_back((k << 40) ^ (k * 1000003 + 17));
  auto expect_row = [&](int64_t id, const float* row, int* bad) {
    // The id's row (initial rows carry version -1), every element of one
    // version.
    const float v = row[1] - IdTag(id) - 1;
    if (row[0] != IdTag(id)) {
      ++*bad;
      return;
    }
    for (int64_t j = 1; j < kDim; ++j) {
      if (row[j] != IdTag(id) + v + static_cast<float>(j)) {
        ++*bad;
        return;
      }
    }
  };
  auto initial = [&](int64_t id, float* dst) {
    dst[0] = IdTag(id);
    for (int64_t j = 1; j < kDim; ++j) dst[j] = IdTag(id) - 1 + static_cast<float>(j);
  };
  std::atomic<bool> done{false};
  std::atomic<int64_t> reads{0};
  std::atomic<int> bad{0};
  // Readers by the steps of the protocol, and by Lookup (the engine's call,
  // whose ids without a row are filled between probes: its callback
  // sleeps now and then, as if preempted between Resolve and Snapshot).
  auto reader = [&](uint64_t seed, bool lookup) {
    std::mt19937_64 rng(seed);
    std::vector<int64_t> ids(48), scratch, redo;
    std::vector<uint32_t> before(ids.size());
    std::vector<float> out(ids.size() * kDim);
    int my_bad = 0;
    while (!done.load(std::memory_order_relaxed)) {
      for (int64_t& id : ids) id = universe[rng() % universe.size()];
      if (lookup) {
        std::fill(out.begin(), out.end(), -1.0f);
        s->Lookup(ids, ActiveKernels(), &seqlock, out.data(),
                  [&](absl::Span<const int64_t> unseen, float* rows) {
                    if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
                    for (size_t u = 0; u < unseen.size(); ++u) initial(unseen[u], rows + u * kDim);
                  });
        for (size_t i = 0; i < ids.size(); ++i) {
          expect_row(ids[i], out.data() + i * kDim, &my_bad);
        }
        reads.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      const absl::Span<const int64_t> slots = s->Resolve(ids, &scratch);
      // Now and then as if preempted here, so that the writer reuses
      // resolved slots before the snapshot (what Recheck is for).
      if (rng() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(20));
      seqlock.Snapshot(slots, absl::MakeSpan(before));
      redo.clear();
      s->Recheck(ids, scratch, &redo);
      GatherResolved(ActiveKernels(), s->kernel_rows(), slots, out.data(),
                     [&](int64_t i, float* dst) { initial(ids[i], dst); });
      seqlock.Torn(slots, before, &redo);
      for (int64_t i : redo) {
        float* dst = out.data() + i * kDim;
        if (!s->ReadRowStable(seqlock, ids[i], [&](const uint8_t* row) {
              std::memcpy(dst, row, kDim * sizeof(float));
            })) {
          initial(ids[i], dst);
        }
      }
      for (size_t i = 0; i < ids.size(); ++i) expect_row(ids[i], out.data() + i * kDim, &my_bad);
      reads.fetch_add(1, std::memory_order_relaxed);
    }
    bad.fetch_add(my_bad);
  };
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) readers.emplace_back(reader, 100 + t, t > 0);

  std::mt19937_64 rng(3);
  std::map<int64_t, int> version;
  for (int64_t step = 1; step <= 20000; ++step) {
    std::set<int64_t> distinct;
    while (distinct.size() < 6) distinct.insert(universe[rng() % universe.size()]);
    std::vector<int64_t> ids(distinct.begin(), distinct.end());
    std::vector<int64_t> slots(ids.size());
    ASSERT_TRUE(s->Upsert(ids, step, UpsertMode::kPush, absl::MakeSpan(slots),
                          [&](int64_t i, int64_t slot) {
                            seqlock.BeginWrite(slot);
                            WriteTagged(*s, slot, ids[i], -1);
                            seqlock.EndWrite(slot);
                            version[ids[i]] = -1;
                          }).ok());
    for (size_t i = 0; i < ids.size(); ++i) {
      if (slots[i] < 0) continue;
      seqlock.BeginWrite(slots[i]);
      // Element by element, so that a torn read is likely to show.
      float* row = reinterpret_cast<float*>(s->MutableRow(slots[i]));
      const int v = ++version[ids[i]];
      for (int64_t j = 1; j < kDim; ++j) {
        reinterpret_cast<volatile float*>(row)[j] = IdTag(ids[i]) + static_cast<float>(v + j);
      }
      seqlock.EndWrite(slots[i]);
    }
  }
  done.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GT(reads.load(), 0);
  const DynamicRowStats st = s->stats();
  EXPECT_GT(st.rows_evicted, 0);
  EXPECT_GT(st.index_rebuilds, 0);
}

}  // namespace
}  // namespace embedserve::internal
