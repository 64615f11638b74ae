// EmbeddingTable::UpdateSettings: what may change after creation and what is
// fixed (the optimizer kind, initial_accumulator_value).
#include "core/embedding_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

std::unique_ptr<EmbeddingTable> Adagrad() {
  TableSpec s;
  s.name = "s";
  s.num_embeddings = 8;
  s.embedding_dim = 4;
  s.optimizer.kind = OptimizerKind::kAdagrad;
  auto t = EmbeddingTable::Create(s);
  EXPECT_THAT(t, IsOk());
  return *std::move(t);
}

TEST(TableSettingsTest, HyperParametersAndFrozenChange) {
  auto t = Adagrad();
  ASSERT_THAT(t->UpdateSettings({.frozen = true, .lr = 0.5}), IsOk());
  EXPECT_TRUE(t->spec().frozen);
  EXPECT_EQ(t->spec().optimizer.lr, 0.5);
  // Naming the kind it has is no change.
  EXPECT_THAT(t->UpdateSettings({.kind = OptimizerKind::kAdagrad}), IsOk());
}

TEST(TableSettingsTest, TheKindAndTheInitialAccumulatorAreFixed) {
  auto t = Adagrad();
  EXPECT_THAT(t->UpdateSettings({.lr = 0.7, .kind = OptimizerKind::kSparseAdam}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("kind is fixed")));
  EXPECT_THAT(t->UpdateSettings({.lr = 0.7, .initial_accumulator_value = 1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("initial_accumulator_value is fixed")));
  // Nothing changed.
  EXPECT_EQ(t->spec().optimizer.kind, OptimizerKind::kAdagrad);
  EXPECT_NE(t->spec().optimizer.lr, 0.7);
}

TEST(TableSettingsTest, InvalidValuesChangeNothing) {
  auto t = Adagrad();
  const double lr = *t->spec().optimizer.lr;
  EXPECT_THAT(t->UpdateSettings({.frozen = true, .lr = -1.0}),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  EXPECT_FALSE(t->spec().frozen);
  EXPECT_EQ(*t->spec().optimizer.lr, lr);
}

}  // namespace
}  // namespace embedserve
