#include "core/embedding_table.h"

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "core/renorm.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/table_helpers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::Iota;
using ::embedserve::testing::Rows;
using ::embedserve::testing::Spec;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TableSpecTest, RejectsBadFields) {
  auto bad = [](TableSpec s, const char* what) {
    EXPECT_THAT(NormalizeTableSpec(s),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(what)));
  };
  bad(Spec(0, 4), "num_embeddings");
  bad(Spec(int64_t{1} << 62, 16), "num_embeddings");
  bad(Spec(10, 0), "embedding_dim");
  TableSpec s = Spec(10, 4);
  s.name = "";
  bad(s, "name");
  s = Spec(10, 4);
  s.name = "bad name";
  bad(s, "name");
  s = Spec(10, 4);
  s.padding_idx = 10;
  bad(s, "padding_idx");
  s.padding_idx = -11;
  bad(s, "padding_idx");
  s = Spec(10, 4);
  s.max_norm = -1;
  bad(s, "max_norm");
  s.max_norm = NAN;
  bad(s, "max_norm");
  s = Spec(10, 4);
  s.norm_type = 0;
  bad(s, "norm_type");
  s = Spec(10, 4);
  s.initializer.kind = InitKind::kUniform;
  s.initializer.a = 2;
  s.initializer.b = 1;
  bad(s, "uniform");
  s = Spec(10, 4);
  s.initializer.std = -1;
  bad(s, "normal");
}

TEST(TableSpecTest, NegativePaddingIdxCountsFromTheEnd) {
  TableSpec s = Spec(10, 4);
  s.padding_idx = -1;
  auto n = NormalizeTableSpec(s);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->padding_idx, 9);
}

TEST(EmbeddingTableTest, PaddingRowIsZeroAtCreation) {
  TableSpec s = Spec(10, 5);
  s.padding_idx = -2;
  auto t = EmbeddingTable::Create(s);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->spec().padding_idx, 8);
  EXPECT_THAT(Rows(**t, {8}), ::testing::Each(0.0f));
  EXPECT_THAT(Rows(**t, {7}), ::testing::Not(::testing::Each(0.0f)));
}

TEST(EmbeddingTableTest, FromPretrainedKeepsValuesPaddingRowIncluded) {
  TableSpec s = Spec(6, 3);
  s.padding_idx = 2;
  s.frozen = true;
  const std::vector<float> w = Iota(18);
  auto t = EmbeddingTable::Create(s, w);
  ASSERT_THAT(t, IsOk());
  EXPECT_TRUE((*t)->spec().frozen);
  EXPECT_EQ(Rows(**t, {0, 1, 2, 3, 4, 5}), w);
}

TEST(EmbeddingTableTest, RejectsWrongOrNonFiniteInitialValues) {
  EXPECT_THAT(EmbeddingTable::Create(Spec(6, 3), Iota(17)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected")));
  std::vector<float> w = Iota(18);
  w[7] = NAN;
  EXPECT_THAT(EmbeddingTable::Create(Spec(6, 3), w),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initial_values[7] (row 2")));
}

TEST(EmbeddingTableTest, ShardsHoldContiguousPowerOfTwoRanges) {
  TableSpec s = Spec(100, 17);
  s.num_shards = 4;
  const std::vector<float> w = Iota(100 * 17);
  auto t = EmbeddingTable::Create(s, w);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->rows_per_shard(), 32);
  EXPECT_EQ((*t)->num_shards(), 4);
  // Rows are padded to 32 floats (17 rounded up to 16-float cache lines).
  EXPECT_EQ((*t)->bytes_used(), 100 * 32 * 4);
  std::vector<int64_t> ids(100);
  std::iota(ids.begin(), ids.end(), 0);
  EXPECT_EQ(Rows(**t, ids), w);
}

TEST(EmbeddingTableTest, SameSpecGivesSameTableAnyShardCount) {
  TableSpec a = Spec(300, 7);
  a.initializer.seed = 42;
  TableSpec b = a;
  b.num_shards = 7;
  TableSpec c = a;
  c.initializer.seed = 43;
  auto ta = EmbeddingTable::Create(a), tb = EmbeddingTable::Create(b),
       tc = EmbeddingTable::Create(c);
  std::vector<int64_t> ids(300);
  std::iota(ids.begin(), ids.end(), 0);
  EXPECT_EQ(Rows(**ta, ids), Rows(**tb, ids));
  EXPECT_NE(Rows(**ta, ids), Rows(**tc, ids));
}

TEST(EmbeddingTableTest, InitializersHaveTheirDistributions) {
  std::vector<int64_t> ids(2000);
  std::iota(ids.begin(), ids.end(), 0);
  auto moments = [&](const TableSpec& s, double* mean, double* sd, float* lo, float* hi) {
    auto t = EmbeddingTable::Create(s);
    ASSERT_THAT(t, IsOk());
    std::vector<float> v = Rows(**t, ids);
    double sum = 0, sq = 0;
    *lo = v[0];
    *hi = v[0];
    for (float x : v) {
      sum += x;
      sq += double{x} * x;
      *lo = std::min(*lo, x);
      *hi = std::max(*hi, x);
    }
    *mean = sum / v.size();
    *sd = std::sqrt(sq / v.size() - *mean * *mean);
  };
  double mean, sd;
  float lo, hi;
  TableSpec s = Spec(2000, 50);  // 100,000 values: mean within ~5 sigma = 0.016
  moments(s, &mean, &sd, &lo, &hi);
  EXPECT_NEAR(mean, 0.0, 0.016);
  EXPECT_NEAR(sd, 1.0, 0.016);
  s.initializer.mean = 3;
  s.initializer.std = 0.5;
  moments(s, &mean, &sd, &lo, &hi);
  EXPECT_NEAR(mean, 3.0, 0.008);
  EXPECT_NEAR(sd, 0.5, 0.008);
  s.initializer = {};
  s.initializer.kind = InitKind::kUniform;
  s.initializer.a = -2;
  s.initializer.b = 4;
  moments(s, &mean, &sd, &lo, &hi);
  EXPECT_NEAR(mean, 1.0, 0.05);
  EXPECT_GE(lo, -2.0f);
  EXPECT_LT(hi, 4.0f);
  EXPECT_NEAR(sd, 6 / std::sqrt(12.0), 0.03);
  s.initializer.kind = InitKind::kXavierUniform;
  moments(s, &mean, &sd, &lo, &hi);
  const double r = std::sqrt(6.0 / (2000 + 50));
  EXPECT_GE(lo, -r);
  EXPECT_LE(hi, r);
  EXPECT_GT(hi, 0.99 * r);
  s.initializer.kind = InitKind::kZeros;
  moments(s, &mean, &sd, &lo, &hi);
  EXPECT_EQ(lo, 0.0f);
  EXPECT_EQ(hi, 0.0f);
  s.initializer.kind = InitKind::kConstant;
  s.initializer.value = 0.25;
  moments(s, &mean, &sd, &lo, &hi);
  EXPECT_EQ(lo, 0.25f);
  EXPECT_EQ(hi, 0.25f);
}

TEST(EmbeddingTableTest, OutOfRangeIdIsInvalidArgumentNamingIdAndPosition) {
  auto t = EmbeddingTable::Create(Spec(10, 4));
  std::vector<float> out(3 * 4);
  EXPECT_THAT((*t)->Lookup({1, 10, 2}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("id 10 at position 1 is out of range [0, 10)")));
  EXPECT_THAT((*t)->Lookup({1, 2, -1}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id -1 at position 2")));
}

TEST(EmbeddingTableTest, MaxNormRenormalisesReferencedRowsInPlace) {
  for (double p : {2.0, 1.0, 3.0, static_cast<double>(INFINITY)}) {
    SCOPED_TRACE(p);
    TableSpec s = Spec(4, 3);
    s.max_norm = 1.5;
    s.norm_type = p;
    std::vector<float> w = {3, 4, 0, 0.1f, 0.2f, 0.3f, 10, -10, 10, 1, 1, 1};
    auto t = EmbeddingTable::Create(s, w);
    ASSERT_THAT(t, IsOk());
    const int64_t v0 = (*t)->version();
    std::vector<float> got = Rows(**t, {0, 1, 0});
    EXPECT_GT((*t)->version(), v0);
    const double n0 = RowNorm(w.data(), 3, p);
    const float scale = static_cast<float>(1.5 / (n0 + 1e-7));
    for (int d = 0; d < 3; ++d) {
      EXPECT_EQ(got[d], w[d] * scale);
      EXPECT_EQ(got[6 + d], w[d] * scale);  // duplicate renormed once
      EXPECT_EQ(got[3 + d], w[3 + d]);      // small row untouched
    }
    EXPECT_LE(RowNorm(got.data(), 3, p), 1.5 + 1e-6);
    // Row 2 was not referenced: still as created. Looking at it renorms it.
    std::vector<float> row2(3);
    ASSERT_THAT((*t)->AssignRows({3}, {1, 1, 1}), IsOk());
    EXPECT_EQ(Rows(**t, {0})[0], got[0]);  // already within max_norm: stable
  }
}

TEST(EmbeddingTableTest, BadIdOnMaxNormTableChangesNothing) {
  TableSpec s = Spec(4, 2);
  s.max_norm = 1.0;
  std::vector<float> w = {3, 4, 6, 8, 0, 0, 0, 0};
  auto t = EmbeddingTable::Create(s, w);
  std::vector<float> out(2 * 2);
  const int64_t v0 = (*t)->version();
  EXPECT_THAT((*t)->Lookup({0, 4}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("position 1")));
  EXPECT_EQ((*t)->version(), v0);
  std::vector<int64_t> bounds = {0, 2};
  std::vector<float> pooled(2);
  EXPECT_THAT((*t)->LookupPooled({1, -3}, bounds, PoolingMode::kSum, {}, absl::MakeSpan(pooled)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id -3 at position 1")));
  EXPECT_EQ((*t)->version(), v0);
  // Now a good lookup: both rows are renormed from their original values.
  std::vector<float> got = Rows(**t, {0, 1});
  EXPECT_FLOAT_EQ(got[0], 3 * static_cast<float>(1.0 / (5 + 1e-7)));
  EXPECT_FLOAT_EQ(got[2], 6 * static_cast<float>(1.0 / (10 + 1e-7)));
}

TEST(EmbeddingTableTest, AssignRowsSetsWholeRowsEvenFrozenAndPadding) {
  TableSpec s = Spec(5, 3);
  s.padding_idx = 0;
  s.frozen = true;
  auto t = EmbeddingTable::Create(s);
  auto v = (*t)->AssignRows({0, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
  ASSERT_THAT(v, IsOk());
  EXPECT_EQ(*v, 1);
  EXPECT_EQ(Rows(**t, {0, 3}), (std::vector<float>{1, 2, 3, 7, 8, 9}));  // last wins
}

TEST(EmbeddingTableTest, BadAssignChangesNothing) {
  auto t = EmbeddingTable::Create(Spec(5, 2));
  const std::vector<float> before = Rows(**t, {0, 1, 2, 3, 4});
  EXPECT_THAT((*t)->AssignRows({1, 2}, {1, 2, 3}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected")));
  EXPECT_THAT((*t)->AssignRows({1, 5}, {1, 2, 3, 4}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 5 at position 1")));
  EXPECT_THAT((*t)->AssignRows({1, 2}, {1, 2, 3, INFINITY}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("values[3]")));
  EXPECT_EQ(Rows(**t, {0, 1, 2, 3, 4}), before);
  EXPECT_EQ((*t)->version(), 0);
}

TEST(EmbeddingTableTest, PooledValidatesWeights) {
  auto t = EmbeddingTable::Create(Spec(5, 2));
  std::vector<int64_t> bounds = {0, 2};
  std::vector<float> out(2);
  EXPECT_THAT(
      (*t)->LookupPooled({1, 2}, bounds, PoolingMode::kMean, {1, 1}, absl::MakeSpan(out)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only supported with mode SUM")));
  EXPECT_THAT((*t)->LookupPooled({1, 2}, bounds, PoolingMode::kSum, {1}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("one per id")));
  EXPECT_THAT((*t)->LookupPooled({1, 2}, bounds, PoolingMode::kSum, {1, NAN}, absl::MakeSpan(out)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("per_sample_weights[1]")));
}

TEST(EmbeddingTableTest, AssignPastTheRowTypesRangeIsRejected) {
  TableSpec s = Spec(2, 2);
  s.row_type = RowType::kFloat16;
  auto t = EmbeddingTable::Create(s, {1, 2, 3, 4});
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT((*t)->AssignRows({1}, {1, 70000}),  // float16 tops out at 65504
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 1 not finite")));
  EXPECT_EQ(Rows(**t, {1}), (std::vector<float>{3, 4}));
  EXPECT_THAT((*t)->AssignRows({1}, {1, 65504}), IsOk());
}

TEST(TableSpecTest, InitializerArgumentsMustFitFloat32AsInTorch) {
  // torch.nn.init.constant_(w, 1e39) and uniform_(w, -1e39, 1) raise.
  TableSpec s = Spec(2, 2);
  s.initializer.kind = InitKind::kConstant;
  s.initializer.value = 1e39;
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initializer value")));
  s.initializer.value = 3e38;
  EXPECT_THAT(NormalizeTableSpec(s), IsOk());
  s.initializer.kind = InitKind::kUniform;
  s.initializer.a = -1e39;
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initializer a")));
  s.initializer.kind = InitKind::kNormal;
  s.initializer.mean = 1e39;
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initializer mean")));
}

}  // namespace
}  // namespace embedserve
