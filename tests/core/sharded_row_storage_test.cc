#include "core/internal/sharded_row_storage.h"

#include <cstdint>
#include <vector>

#include "core/row_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

TableSpec Spec(int64_t n, int64_t dim, OptimizerKind kind = OptimizerKind::kSgd) {
  TableSpec s;
  s.name = "s";
  s.num_embeddings = n;
  s.embedding_dim = dim;
  s.optimizer.kind = kind;
  return *NormalizeTableSpec(s);
}

TEST(ShardedRowStorageTest, ShardsArePowerOfTwoIdRangesOfPaddedRows) {
  TableSpec s = Spec(100, 17);
  s.num_shards = 4;
  auto rows = ShardedRowStorage::Create(s);
  ASSERT_THAT(rows, IsOk());
  const ShardedRowStorage& r = **rows;
  EXPECT_EQ(r.rows_per_shard(), 32);
  EXPECT_EQ(r.num_shards(), 4);
  EXPECT_EQ(r.num_slots(), 100);
  EXPECT_EQ(r.format().row_bytes, 32 * 4);  // 17 floats rounded up to cache lines
  EXPECT_EQ(r.row_bytes(), 100 * 32 * 4);
  EXPECT_EQ(r.state_bytes(), 0);
  for (int64_t id : {0, 31, 32, 99}) {
    EXPECT_EQ(reinterpret_cast<uintptr_t>(r.Row(id)) % 64, 0u);
    EXPECT_EQ(r.kernel_rows().rows.Row(id), reinterpret_cast<const float*>(r.Row(id)));
  }
  EXPECT_EQ(r.Row(1) - r.Row(0), 32 * 4);
  EXPECT_EQ(ShardedRowStorage::EstimateBytes(s), r.row_bytes() + r.state_bytes());
}

TEST(ShardedRowStorageTest, SlotsAreTheIdsThemselves) {
  auto rows = ShardedRowStorage::Create(Spec(10, 4));
  ASSERT_THAT(rows, IsOk());
  const std::vector<int64_t> ids = {3, 9, -1, 10};
  std::vector<int64_t> scratch;
  const absl::Span<const int64_t> slots = (*rows)->Resolve(ids, &scratch);
  EXPECT_EQ(slots.data(), ids.data());  // nothing copied
  EXPECT_EQ(slots.size(), ids.size());
  EXPECT_EQ((*rows)->SlotOf(7), 7);
  // An id without a row maps outside [0, num_slots).
  EXPECT_GE((*rows)->SlotOf(10), (*rows)->num_slots());
}

TEST(ShardedRowStorageTest, RecordsRoundTripWithEveryOptimizersState) {
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kAdagrad,
                             OptimizerKind::kRowWiseAdagrad, OptimizerKind::kSparseAdam}) {
    auto rows = ShardedRowStorage::Create(Spec(5, 3, kind));
    ASSERT_THAT(rows, IsOk());
    const int64_t rf = (*rows)->format().record_floats();
    std::vector<float> in(rf), out(rf);
    for (int64_t j = 0; j < rf; ++j) in[j] = 0.5f + j;
    (*rows)->WriteRecord(2, in.data());
    (*rows)->ReadRecord(2, out.data());
    EXPECT_EQ(out, in);
    std::vector<float> row(3);
    DecodeRow(RowType::kFloat32, (*rows)->Row(2), 3, row.data());
    EXPECT_THAT(row, ElementsAre(0.5f, 1.5f, 2.5f));
  }
}

TEST(ShardedRowStorageTest, NewRowsAreZeroWithTheirOptimizersInitialState) {
  TableSpec s = Spec(4, 2, OptimizerKind::kAdagrad);
  s.optimizer.initial_accumulator_value = 0.25;
  auto adagrad = ShardedRowStorage::Create(s);
  ASSERT_THAT(adagrad, IsOk());
  std::vector<float> record(4);
  (*adagrad)->ReadRecord(3, record.data());
  EXPECT_THAT(record, ElementsAre(0, 0, 0.25f, 0.25f));
  EXPECT_EQ((*adagrad)->state_bytes(), 4 * 16 * 4);  // one cache line of state per row

  s.optimizer.kind = OptimizerKind::kRowWiseAdagrad;
  auto rowwise = ShardedRowStorage::Create(s);
  ASSERT_THAT(rowwise, IsOk());
  record.resize(3);
  (*rowwise)->ReadRecord(0, record.data());
  EXPECT_THAT(record, ElementsAre(0, 0, 0.25f));

  s.optimizer.kind = OptimizerKind::kSparseAdam;  // moments start at 0
  auto adam = ShardedRowStorage::Create(*NormalizeTableSpec(s));
  ASSERT_THAT(adam, IsOk());
  record.resize(6);
  (*adam)->ReadRecord(1, record.data());
  EXPECT_THAT(record, ElementsAreArray(std::vector<float>(6, 0.0f)));
}

TEST(ShardedRowStorageTest, CompactRowsAreEncodedAndSeenByTheCompactView) {
  TableSpec s = Spec(8, 5);
  s.row_type = RowType::kFloat16;
  auto rows = ShardedRowStorage::Create(s);
  ASSERT_THAT(rows, IsOk());
  EXPECT_TRUE((*rows)->kernel_rows().is_compact);
  EXPECT_EQ((*rows)->kernel_rows().compact.type, RowType::kFloat16);
  const float record[5] = {1, 2, 3, 4, 65504};
  (*rows)->WriteRecord(6, record);
  std::vector<float> back(5);
  DecodeRow(RowType::kFloat16, (*rows)->kernel_rows().compact.Row(6), 5, back.data());
  EXPECT_THAT(back, ElementsAre(1, 2, 3, 4, 65504));
}

}  // namespace
}  // namespace embedserve::internal
