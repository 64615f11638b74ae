#include "core/row_storage.h"

#include <cmath>
#include <vector>

#include "core/row_codec.h"
#include "gtest/gtest.h"

namespace embedserve {
namespace {

TableSpec Spec(OptimizerKind kind, RowType type = RowType::kFloat32) {
  TableSpec s;
  s.name = "f";
  s.num_embeddings = 4;
  s.embedding_dim = 3;
  s.row_type = type;
  s.optimizer.kind = kind;
  s.optimizer.initial_accumulator_value = 0.5;
  return *NormalizeTableSpec(s);
}

TEST(RowFormatTest, RecordsHoldTheRowThenEachOptimizersState) {
  const RowFormat sgd = RowFormat::For(Spec(OptimizerKind::kSgd));
  EXPECT_EQ(sgd.record_floats(), 3);
  EXPECT_EQ(sgd.row_bytes, CompactRowStride(RowType::kFloat32, 3));
  const RowFormat adagrad = RowFormat::For(Spec(OptimizerKind::kAdagrad));
  EXPECT_EQ(adagrad.record_floats(), 6);
  EXPECT_EQ(adagrad.initial_state, 0.5f);
  const RowFormat rowwise = RowFormat::For(Spec(OptimizerKind::kRowWiseAdagrad));
  EXPECT_EQ(rowwise.record_floats(), 4);
  EXPECT_EQ(rowwise.initial_state, 0.5f);
  const RowFormat adam = RowFormat::For(Spec(OptimizerKind::kSparseAdam));
  EXPECT_EQ(adam.record_floats(), 9);
  EXPECT_EQ(adam.initial_state, 0.0f);  // moments start at 0
  const RowFormat half = RowFormat::For(Spec(OptimizerKind::kSgd, RowType::kFloat16));
  EXPECT_EQ(half.type, RowType::kFloat16);
  EXPECT_EQ(half.row_bytes, CompactRowStride(RowType::kFloat16, 3));
}

TEST(RowFormatTest, FirstUnstorableFindsTheFirstValueARowCannotKeep) {
  const RowFormat f = RowFormat::For(Spec(OptimizerKind::kAdagrad));
  std::vector<float> record = {1, 2, 3, 4, 5, 6};
  EXPECT_EQ(f.FirstUnstorable(record.data()), -1);
  record[4] = INFINITY;
  EXPECT_EQ(f.FirstUnstorable(record.data()), 4);  // state
  record[1] = NAN;
  EXPECT_EQ(f.FirstUnstorable(record.data()), 1);  // the row comes first
  const RowFormat half = RowFormat::For(Spec(OptimizerKind::kSgd, RowType::kFloat16));
  const std::vector<float> big = {1, 65504, 70000};  // float16 tops out at 65504
  EXPECT_EQ(half.FirstUnstorable(big.data()), 2);
}

}  // namespace
}  // namespace embedserve
