// EmbeddingTable's optimizer step (ApplyGradients): duplicates coalesced,
// padding skipped, scale_grad_by_freq, lazy Adagrad/Adam state, and pushes
// that must change nothing (bad ids or shapes, non-finite results, learning
// rates torch would overflow on).
#include <cstring>
#include <vector>

#include "core/embedding_table.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/table_helpers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::Rows;
using ::embedserve::testing::Spec;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

TEST(EmbeddingTableTrainingTest, SgdStepCoalescesDuplicatesAndSkipsPadding) {
  TableSpec s = Spec(4, 2);
  s.padding_idx = 3;
  s.optimizer.lr = 0.5;
  auto t = EmbeddingTable::Create(s, {1, 1, 2, 2, 3, 3, 4, 4});
  ASSERT_THAT(t, IsOk());
  auto r = (*t)->ApplyGradients({1, 1, 3, 0}, {1, 2, 3, 4, 100, 100, -2, -2});
  ASSERT_THAT(r, IsOk());
  EXPECT_EQ(r->rows_applied, 2);
  EXPECT_EQ(r->version, 1);
  // row 1: 2 - 0.5 * (1 + 3) = 0, 2 - 0.5 * (2 + 4) = -1; row 0: 1 + 1.
  EXPECT_EQ(Rows(**t, {0, 1, 2, 3}), (std::vector<float>{2, 2, 0, -1, 3, 3, 4, 4}));
}

TEST(EmbeddingTableTrainingTest, ScaleGradByFreqDividesByCount) {
  TableSpec s = Spec(2, 1);
  s.scale_grad_by_freq = true;
  s.optimizer.lr = 1.0;
  auto t = EmbeddingTable::Create(s, {0, 0});
  ASSERT_THAT((*t)->ApplyGradients({1, 1, 1, 0}, {3, 6, 9, 5}), IsOk());
  EXPECT_EQ(Rows(**t, {0, 1}), (std::vector<float>{-5, -6}));
}

TEST(EmbeddingTableTrainingTest, AdagradAndAdamKeepLazyState) {
  TableSpec s = Spec(3, 2);
  s.optimizer.kind = OptimizerKind::kSparseAdam;
  auto t = EmbeddingTable::Create(s, {1, 1, 1, 1, 1, 1});
  ASSERT_THAT((*t)->ApplyGradients({0}, {1, -1}), IsOk());
  ASSERT_THAT((*t)->ApplyGradients({1}, {2, 2}), IsOk());
  auto state = (*t)->ReadOptimizerState({0, 1, 2});
  ASSERT_THAT(state, IsOk());
  ASSERT_EQ(state->size(), 2u);
  EXPECT_EQ((*state)[0].name, "exp_avg");
  // Row 0 was pushed once (step 1) and not decayed by the second push.
  EXPECT_FLOAT_EQ((*state)[0].values[0], 0.1f);
  EXPECT_FLOAT_EQ((*state)[0].values[2], 0.2f);
  EXPECT_EQ((*state)[0].values[4], 0.0f);
  EXPECT_EQ((*t)->optimizer_step(), 2);
  EXPECT_EQ((*t)->optimizer_state_bytes(), 2 * 3 * 16 * 4);
}

TEST(EmbeddingTableTrainingTest, BadPushesChangeNothingBitForBit) {
  TableSpec s = Spec(5, 3);
  s.optimizer.kind = OptimizerKind::kAdagrad;
  auto t = EmbeddingTable::Create(s);
  const std::vector<float> before = Rows(**t, {0, 1, 2, 3, 4});
  const auto state_before = *(*t)->ReadOptimizerState({0, 1, 2, 3, 4});
  EXPECT_THAT((*t)->ApplyGradients({1, 5}, std::vector<float>(6, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("id 5 at position 1")));
  EXPECT_THAT((*t)->ApplyGradients({1, 2}, std::vector<float>(5, 1)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected len(ids)")));
  EXPECT_THAT((*t)->ApplyGradients({1, 2}, {1, 1, 1, 1, NAN, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("grads[4] (row 1 of the request, id 2, column 1)")));
  EXPECT_THAT((*t)->ApplyGradients({1}, {1, INFINITY, 1}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("grads[1]")));
  ASSERT_THAT((*t)->UpdateSettings({.frozen = true}), IsOk());
  EXPECT_THAT((*t)->ApplyGradients({1}, {1, 1, 1}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("frozen")));
  EXPECT_THAT((*t)->UpdateSettings({.lr = -1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
  const std::vector<float> after = Rows(**t, {0, 1, 2, 3, 4});
  EXPECT_EQ(std::memcmp(before.data(), after.data(), before.size() * sizeof(float)), 0);
  const auto state_after = *(*t)->ReadOptimizerState({0, 1, 2, 3, 4});
  EXPECT_EQ(state_after[0].values, state_before[0].values);
  EXPECT_EQ((*t)->optimizer_step(), 0);
  EXPECT_EQ((*t)->version(), 0);
  EXPECT_TRUE((*t)->spec().frozen);
  EXPECT_EQ((*t)->spec().optimizer.lr, 0.01);
}

TEST(EmbeddingTableTrainingTest, PushWhoseResultIsNotFiniteAppliesNothing) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                             OptimizerKind::kRowWiseAdagrad, OptimizerKind::kSparseAdam}) {
    TableSpec s = Spec(3, 2);
    s.optimizer.kind = kind;
    s.optimizer.lr = 1.0;
    auto t = EmbeddingTable::Create(s, {1, 1, 1, 1, 1, 1});
    ASSERT_THAT(t, IsOk());
    const std::vector<float> before = Rows(**t, {0, 1, 2});
    // Finite gradients whose square (the Adagrads' and Adam's state) or
    // whose step (SGD: w - 3e38 - 3e38 summed over duplicates) overflows.
    EXPECT_THAT((*t)->ApplyGradients({0, 1, 1}, {1, 1, -3e38f, -3e38f, -3e38f, -3e38f}),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not finite")))
        << static_cast<int>(kind);
    EXPECT_EQ(Rows(**t, {0, 1, 2}), before);
    EXPECT_EQ((*t)->version(), 0);
    EXPECT_EQ((*t)->optimizer_step(), 0);
  }
}

TEST(EmbeddingTableTrainingTest, HugeLearningRateIsRejectedAsTorchWouldOverflow) {
  TableSpec s = Spec(2, 2);
  s.optimizer.lr = 1e300;  // finite double, inf as the float32 scalar it is used as
  EXPECT_THAT(EmbeddingTable::Create(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
  s.optimizer.lr = 0.1;
  auto t = EmbeddingTable::Create(s);
  ASSERT_THAT(t, IsOk());
  EXPECT_THAT((*t)->UpdateSettings({.lr = 1e300}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
  EXPECT_THAT((*t)->UpdateSettings({.eps = 1e39}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("eps")));
  EXPECT_EQ((*t)->spec().optimizer.lr, 0.1);
}

TEST(EmbeddingTableTrainingTest, SparseAdamDefaultLrIsTorchs) {
  TableSpec s = Spec(2, 2);
  s.optimizer.kind = OptimizerKind::kSparseAdam;
  auto t = EmbeddingTable::Create(s);
  ASSERT_THAT(t, IsOk());
  EXPECT_EQ((*t)->spec().optimizer.lr, 0.001);  // torch.optim.SparseAdam
  s.optimizer.kind = OptimizerKind::kAdagrad;
  EXPECT_EQ((*EmbeddingTable::Create(s))->spec().optimizer.lr, 0.01);  // torch.optim.Adagrad
  s.optimizer.kind = OptimizerKind::kSparseAdam;
  s.optimizer.lr = 0.0;  // torch: "Invalid learning rate: 0.0"
  EXPECT_THAT(EmbeddingTable::Create(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("lr")));
}

TEST(EmbeddingTableTrainingTest, PushOfOnlyPaddingIdsDoesNotStep) {
  for (OptimizerKind kind : {OptimizerKind::kAdagrad, OptimizerKind::kSparseAdam}) {
    TableSpec s = Spec(3, 2);
    s.optimizer.kind = kind;
    s.padding_idx = 2;
    auto t = EmbeddingTable::Create(s);
    ASSERT_THAT(t, IsOk());
    auto r = (*t)->ApplyGradients({2, 2}, {1, 1, 1, 1});
    ASSERT_THAT(r, IsOk());
    EXPECT_EQ(r->rows_applied, 0);
    EXPECT_EQ((*t)->optimizer_step(), 0);
    EXPECT_EQ((*t)->version(), 0);
    ASSERT_THAT((*t)->ApplyGradients({}, {}), IsOk());
    EXPECT_EQ((*t)->optimizer_step(), 0);
    ASSERT_THAT((*t)->ApplyGradients({0, 2}, {1, 1, 1, 1}), IsOk());
    EXPECT_EQ((*t)->optimizer_step(), 1);
  }
}

}  // namespace
}  // namespace embedserve
