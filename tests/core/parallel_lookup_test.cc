// Lookups split across threads give exactly the serial answers, and report
// the first bad id of the whole request.
#include <numeric>
#include <random>
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

class ParallelLookupTest : public ::testing::Test {
 protected:
  void TearDown() override { SetLookupParallelism(0, 0); }
};

TEST_F(ParallelLookupTest, SameAnswersAsSerial) {
  for (RowType type : {RowType::kFloat32, RowType::kFloat16}) {
    TableSpec spec;
    spec.name = "p";
    spec.num_embeddings = 5000;
    spec.embedding_dim = 33;
    spec.padding_idx = 4;
    spec.row_type = type;
    auto t = EmbeddingTable::Create(spec);
    ASSERT_TRUE(t.ok());
    std::mt19937_64 rng(3);
    std::vector<int64_t> ids(10007);
    for (auto& id : ids) id = rng() % 5000;
    std::vector<int64_t> bounds = {0};
    while (bounds.back() < static_cast<int64_t>(ids.size())) {
      bounds.push_back(std::min<int64_t>(ids.size(), bounds.back() + rng() % 40));
    }
    SetLookupParallelism(0, 0);
    const Answers serial = LookupBoth(**t, ids, bounds);
    SetLookupParallelism(3, 1);
    const Answers parallel = LookupBoth(**t, ids, bounds);
    EXPECT_EQ(parallel.rows, serial.rows);
    EXPECT_EQ(parallel.pooled, serial.pooled);
  }
}

TEST_F(ParallelLookupTest, ReportsTheFirstBadIdOfTheWholeRequest) {
  TableSpec spec;
  spec.name = "p";
  spec.num_embeddings = 100;
  spec.embedding_dim = 8;
  auto t = EmbeddingTable::Create(spec);
  SetLookupParallelism(4, 1);
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

}  // namespace
}  // namespace embedserve
