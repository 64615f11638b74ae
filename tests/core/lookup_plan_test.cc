#include "core/lookup_plan.h"

#include <cstring>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "core/row_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Row r of the table is {r + 0.5, r + 1.5, r + 2.5}: 5 rows of dim 3.
std::shared_ptr<EmbeddingTable> Table(int64_t padding_idx = -1) {
  TableSpec s;
  s.name = "t";
  s.num_embeddings = 5;
  s.embedding_dim = 3;
  if (padding_idx >= 0) s.padding_idx = padding_idx;
  std::vector<float> values(15);
  for (int r = 0; r < 5; ++r) {
    for (int c = 0; c < 3; ++c) values[r * 3 + c] = r + c + 0.5f;
  }
  return *EmbeddingTable::Create(s, values);
}

std::vector<float> RunFloats(const LookupPlan& plan, int q) {
  std::vector<float> out(plan.output_bytes(q) / sizeof(float));
  EXPECT_THAT(plan.Run(q, out.data()), IsOk());
  return out;
}

TEST(LookupPlanTest, PlainAnswersHaveTheIndexShapeThenDim) {
  const auto table = Table();
  const std::vector<int64_t> ids = {4, 0, 2, 2}, shape = {2, 2}, one = {1};
  LookupPlan plan;
  ASSERT_THAT(plan.Add(table, PlainLookup{ids, shape}), IsOk());
  ASSERT_THAT(plan.Add(table, PlainLookup{ids, {}}), IsOk());
  ASSERT_THAT(plan.Add(table, PlainLookup{one, {}, /*scalar=*/true}), IsOk());
  ASSERT_EQ(plan.size(), 3);
  EXPECT_THAT(plan.output_shape(0), ElementsAre(2, 2, 3));
  EXPECT_THAT(plan.output_shape(1), ElementsAre(4, 3));
  EXPECT_THAT(plan.output_shape(2), ElementsAre(3));
  EXPECT_EQ(plan.output_rows(0), 4);
  EXPECT_EQ(plan.num_ids(0), 4);
  EXPECT_EQ(plan.output_bytes(0), 4 * 3 * 4);
  EXPECT_EQ(&plan.table(1), table.get());
  EXPECT_THAT(RunFloats(plan, 0),
              ElementsAre(4.5, 5.5, 6.5, 0.5, 1.5, 2.5, 2.5, 3.5, 4.5, 2.5, 3.5, 4.5));
  EXPECT_EQ(RunFloats(plan, 1), RunFloats(plan, 0));
  EXPECT_THAT(RunFloats(plan, 2), ElementsAre(1.5, 2.5, 3.5));
}

TEST(LookupPlanTest, BadPlainQueriesAreRefusedBeforeAnythingRuns) {
  const auto table = Table();
  const std::vector<int64_t> ids = {1, 2, 3}, two_ids = {1, 2}, bad_id = {1, 5};
  const std::vector<int64_t> shape22 = {2, 2}, negative = {-1, -3}, one = {1};
  LookupPlan plan;
  EXPECT_THAT(
      plan.Add(table, PlainLookup{ids, shape22}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape [2, 2] does not match 3 ids")));
  EXPECT_THAT(plan.Add(table, PlainLookup{ids, negative}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(plan.Add(table, PlainLookup{two_ids, {}, /*scalar=*/true}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("exactly one id")));
  EXPECT_THAT(plan.Add(table, PlainLookup{one, one, /*scalar=*/true}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no shape")));
  EXPECT_THAT(plan.Add(table, PlainLookup{bad_id, {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 5 at position 1")));
  EXPECT_EQ(plan.size(), 0);
}

TEST(LookupPlanTest, Float16AnswersAreTheFloat32OnesRounded) {
  TableSpec s;
  s.name = "h";
  s.num_embeddings = 50;
  s.embedding_dim = 33;
  s.initializer.std = 1000;  // values in the thousands: most round in float16
  auto table = std::shared_ptr<EmbeddingTable>(*EmbeddingTable::Create(s));
  std::vector<int64_t> ids(40);
  std::iota(ids.begin(), ids.end(), 5);
  const std::vector<int64_t> offsets = {0, 7, 7, 30};
  LookupPlan plan;
  ASSERT_THAT(plan.Add(table, PlainLookup{ids, {}, false, OutputType::kFloat32}), IsOk());
  ASSERT_THAT(plan.Add(table, PlainLookup{ids, {}, false, OutputType::kFloat16}), IsOk());
  PooledLookup pooled{ids, offsets};
  pooled.mode = PoolingMode::kMean;
  ASSERT_THAT(plan.Add(table, pooled), IsOk());
  pooled.output = OutputType::kFloat16;
  ASSERT_THAT(plan.Add(table, pooled), IsOk());
  EXPECT_EQ(plan.output_bytes(1), 40 * 33 * 2);
  EXPECT_EQ(plan.output_bytes(3), 4 * 33 * 2);
  for (int q : {0, 2}) {
    const std::vector<float> f32 = RunFloats(plan, q);
    std::vector<uint16_t> f16(plan.output_bytes(q + 1) / 2);
    ASSERT_EQ(f16.size(), f32.size());
    ASSERT_THAT(plan.Run(q + 1, f16.data()), IsOk());
    for (size_t i = 0; i < f32.size(); ++i) ASSERT_EQ(f16[i], FloatToHalf(f32[i])) << i;
  }
}

TEST(LookupPlanTest, PooledAnswersAreBagsByDim) {
  const auto table = Table(/*padding_idx=*/0);
  const std::vector<int64_t> ids = {1, 0, 3, 4, 4, 2}, shape = {3, 2};
  const std::vector<float> weights = {1, 1, 2, 1, 1, 0.5};
  LookupPlan plan;
  PooledLookup q{ids};
  q.shape = shape;
  q.weights = weights;
  ASSERT_THAT(plan.Add(table, q), IsOk());
  EXPECT_THAT(plan.output_shape(0), ElementsAre(3, 3));
  EXPECT_EQ(plan.output_rows(0), 3);
  EXPECT_EQ(plan.num_ids(0), 6);
  // Bag 0: row 1 (padding skipped); bag 1: 2 * row 3 + row 4; bag 2: row 4 + 0.5 * row 2.
  EXPECT_THAT(RunFloats(plan, 0), ElementsAre(1.5, 2.5, 3.5, 11.5, 14.5, 17.5, 5.75, 7.25, 8.75));
}

TEST(LookupPlanTest, BadPooledQueriesAreRefusedBeforeAnythingRuns) {
  const auto table = Table();
  const std::vector<int64_t> ids = {1, 2, 3}, bad = {1, 7, 3}, offsets = {0, 1}, late = {1};
  const std::vector<float> weights = {1, 1};
  LookupPlan plan;
  EXPECT_THAT(plan.Add(table, PooledLookup{ids, late}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offsets[0] must be 0")));
  PooledLookup q{ids, offsets};
  q.weights = weights;
  EXPECT_THAT(plan.Add(table, q),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one per id")));
  EXPECT_THAT(plan.Add(table, PooledLookup{bad, offsets}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 7 at position 1")));
  PooledLookup many{ids, offsets};
  many.max_bags = 1;
  EXPECT_THAT(plan.Add(table, many),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("2 bags")));
  EXPECT_EQ(plan.size(), 0);
}

TEST(LookupPlanTest, WordsResolveToTheirRowsAndThePlanKeepsTheirIds) {
  const auto table = Table();
  ASSERT_THAT(table->SetVocabulary({"a", "b", "c", "d", "e"}), IsOk());
  LookupPlan plan;
  ASSERT_THAT(plan.AddWords(table, std::vector<std::string>{"e", "a"}, PlainLookup{}), IsOk());
  // Many more queries: the plan's storage grows, the word ids must stay.
  for (int i = 0; i < 64; ++i) {
    ASSERT_THAT(plan.AddWords(table, std::vector<std::string>{"c"}, PlainLookup{}), IsOk());
  }
  EXPECT_THAT(plan.output_shape(0), ElementsAre(2, 3));
  EXPECT_THAT(RunFloats(plan, 0), ElementsAre(4.5, 5.5, 6.5, 0.5, 1.5, 2.5));
  EXPECT_THAT(RunFloats(plan, 64), ElementsAre(2.5, 3.5, 4.5));
}

TEST(LookupPlanTest, WordsAreRefusedWithIdsOrUnknownOrWithoutVocabulary) {
  const auto table = Table();
  LookupPlan plan;
  EXPECT_THAT(plan.AddWords(table, std::vector<std::string>{"a"}, PlainLookup{}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no vocabulary")));
  ASSERT_THAT(table->SetVocabulary({"a", "b", "c", "d", "e"}), IsOk());
  const std::vector<int64_t> ids = {1};
  EXPECT_THAT(plan.AddWords(table, std::vector<std::string>{"a"}, PlainLookup{ids}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give ids or words, not both")));
  EXPECT_THAT(plan.AddWords(table, std::vector<std::string>{"a", "zz"}, PlainLookup{}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("'zz'")));
  // The shape is checked against the words' count, as against ids.
  const std::vector<int64_t> shape = {3};
  EXPECT_THAT(plan.AddWords(table, std::vector<std::string>{"a", "b"}, PlainLookup{{}, shape}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match 2 ids")));
  EXPECT_EQ(plan.size(), 0);
}

}  // namespace
}  // namespace embedserve
