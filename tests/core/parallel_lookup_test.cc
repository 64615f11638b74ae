// Lookups split across threads give exactly the serial answers, and report
// the first bad id of the whole request.
#include "core/parallel_lookup.h"

#include <mutex>
#include <numeric>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "core/embedding_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

struct Answers {
  std::vector<float> rows, pooled;
};

Answers LookupBoth(EmbeddingTable& t, const std::vector<int64_t>& ids,
                   const std::vector<int64_t>& bounds) {
  Answers a;
  a.rows.resize(ids.size() * t.dim());
  a.pooled.resize((bounds.size() - 1) * t.dim());
  EXPECT_TRUE(t.Lookup(ids, absl::MakeSpan(a.rows)).ok());
  EXPECT_TRUE(t.LookupPooled(ids, bounds, PoolingMode::kMean, {}, absl::MakeSpan(a.pooled)).ok());
  return a;
}

// Lookups of `ids` and pooled lookups of bags of 0-39 of them (random
// bounds) give the same answers on the serial and the split table.
void ExpectSplitAnswersAsSerial(EmbeddingTable& serial, EmbeddingTable& split,
                                const std::vector<int64_t>& ids, std::mt19937_64& rng) {
  std::vector<int64_t> bounds = {0};
  while (bounds.back() < static_cast<int64_t>(ids.size())) {
    bounds.push_back(std::min<int64_t>(ids.size(), bounds.back() + rng() % 40));
  }
  const Answers want = LookupBoth(serial, ids, bounds);
  const Answers got = LookupBoth(split, ids, bounds);
  EXPECT_EQ(got.rows, want.rows);
  EXPECT_EQ(got.pooled, want.pooled);
}

TEST(ParallelLookupTest, SameAnswersAsSerial) {
  for (RowType type : {RowType::kFloat32, RowType::kFloat16}) {
    TableSpec spec;
    spec.name = "p";
    spec.num_embeddings = 5000;
    spec.embedding_dim = 33;
    spec.padding_idx = 4;
    spec.row_type = type;
    // The same spec gives bit-identical rows; one table runs every lookup on
    // its caller, the other splits them across 3 threads.
    auto t = EmbeddingTable::Create(spec);
    ASSERT_TRUE(t.ok());
    auto split = EmbeddingTable::Create(
        spec, {}, TableOptions{nullptr, std::make_shared<LookupParallelism>(3, 1)});
    ASSERT_TRUE(split.ok());
    std::mt19937_64 rng(3);
    std::vector<int64_t> ids(10007);
    for (auto& id : ids) id = rng() % 5000;
    ExpectSplitAnswersAsSerial(**t, **split, ids, rng);
  }
}

// A dynamic table's lookups split the same way: stored and unseen ids,
// padding, compact rows and max_norm (whose renorm runs before the split,
// under the table's lock).
TEST(ParallelLookupTest, DynamicTablesGiveTheSerialAnswers) {
  for (RowType type : {RowType::kFloat32, RowType::kFloat16}) {
    for (bool max_norm : {false, true}) {
      TableSpec spec;
      spec.name = "d";
      spec.embedding_dim = 33;
      spec.row_type = type;
      spec.padding_idx = -4;
      if (max_norm) spec.max_norm = 3.0;
      spec.dynamic = DynamicSpec{};
      spec.dynamic->max_rows = 4000;
      auto t = EmbeddingTable::Create(spec);
      ASSERT_TRUE(t.ok()) << t.status();
      auto split = EmbeddingTable::Create(
          spec, {}, TableOptions{nullptr, std::make_shared<LookupParallelism>(3, 1)});
      ASSERT_TRUE(split.ok()) << split.status();
      std::mt19937_64 rng(5);
      std::vector<int64_t> stored(3000);
      for (auto& id : stored) id = static_cast<int64_t>(rng());
      std::vector<float> values(stored.size() * 33);
      for (auto& v : values) v = static_cast<float>(rng() % 1000) / 100.0f - 5.0f;
      ASSERT_TRUE((*t)->AssignRows(stored, values).ok());
      ASSERT_TRUE((*split)->AssignRows(stored, values).ok());
      std::vector<int64_t> ids(10007);
      for (auto& id : ids) {
        const uint64_t r = rng() % 10;
        id = r < 6 ? stored[rng() % stored.size()] : r < 9 ? static_cast<int64_t>(rng()) : -4;
      }
      ExpectSplitAnswersAsSerial(**t, **split, ids, rng);
    }
  }
}

TEST(ParallelLookupTest, ReportsTheFirstBadIdOfTheWholeRequest) {
  TableSpec spec;
  spec.name = "p";
  spec.num_embeddings = 100;
  spec.embedding_dim = 8;
  auto t = EmbeddingTable::Create(spec, {},
                                  TableOptions{nullptr, std::make_shared<LookupParallelism>(4, 1)});
  std::vector<int64_t> ids(4000, 1);
  ids[3999] = 100;  // last piece
  ids[2100] = -7;   // a middle piece: the first bad one
  std::vector<float> out(ids.size() * 8);
  EXPECT_THAT((*t)->Lookup(ids, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id -7 at position 2100")));
  std::vector<int64_t> bounds(401);
  std::iota(bounds.begin(), bounds.end(), 0);
  for (auto& b : bounds) b *= 10;
  std::vector<float> pooled(400 * 8);
  EXPECT_THAT((*t)->LookupPooled(ids, bounds, PoolingMode::kSum, {}, absl::MakeSpan(pooled)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position 2100")));
}

TEST(ParallelLookupTest, SmallWorkRunsAsOnePieceOnTheCaller) {
  LookupParallelism p(3, /*min_ids=*/100);
  std::vector<std::pair<int64_t, int64_t>> pieces;
  std::thread::id ran_on;
  EXPECT_EQ(p.Run(50, 99,
                  [&](int64_t b, int64_t e) {
                    pieces.emplace_back(b, e);
                    ran_on = std::this_thread::get_id();
                    return kAllValid;
                  }),
            kAllValid);
  EXPECT_EQ(pieces, (std::vector<std::pair<int64_t, int64_t>>{{0, 50}}));
  EXPECT_EQ(ran_on, std::this_thread::get_id());
}

TEST(ParallelLookupTest, LargeWorkIsSplitIntoContiguousPiecesCoveringEachIndexOnce) {
  LookupParallelism p(3, /*min_ids=*/100);
  EXPECT_EQ(p.threads(), 3);
  std::mutex mu;
  std::vector<int> seen(1001, 0);
  int pieces = 0;
  const int64_t bad = p.Run(1001, 1001, [&](int64_t b, int64_t e) -> int64_t {
    std::lock_guard<std::mutex> lock(mu);
    ++pieces;
    for (int64_t i = b; i < e; ++i) ++seen[i];
    // Every piece reports its last position as bad: the answer is the
    // smallest over all pieces.
    return e - 1;
  });
  EXPECT_EQ(pieces, 4);  // 3 pool threads + the caller
  EXPECT_EQ(seen, std::vector<int>(1001, 1));
  EXPECT_EQ(bad, 250);  // pieces of ceil(1001 / 4) = 251
}

}  // namespace
}  // namespace embedserve
