#include "core/answer_budget.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace embedserve {
namespace {

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(AnswerBudgetTest, AddsUpToTheLimitInclusive) {
  int64_t total = 0;
  EXPECT_TRUE(AddAnswerBytes(10, 3, 4, 200, &total));
  EXPECT_EQ(total, 120);
  EXPECT_TRUE(AddAnswerBytes(20, 1, 4, 200, &total));
  EXPECT_EQ(total, 200);
  EXPECT_FALSE(AddAnswerBytes(1, 1, 1, 200, &total));
}

TEST(AnswerBudgetTest, HalfValuesCountTwoBytes) {
  int64_t total = 0;
  EXPECT_TRUE(AddAnswerBytes(10, 3, 2, 60, &total));
  EXPECT_EQ(total, 60);
}

TEST(AnswerBudgetTest, NegativeFactorsAndOverflowsAreRefused) {
  int64_t total = 0;
  EXPECT_FALSE(AddAnswerBytes(-1, 3, 4, kMax, &total));
  total = 0;
  EXPECT_FALSE(AddAnswerBytes(3, -1, 4, kMax, &total));
  total = 0;
  EXPECT_FALSE(AddAnswerBytes(int64_t{1} << 40, int64_t{1} << 30, 4, kMax, &total));
  total = 0;
  EXPECT_FALSE(AddAnswerBytes(int64_t{1} << 31, int64_t{1} << 31, 4, kMax, &total));
  total = kMax - 3;
  EXPECT_FALSE(AddAnswerBytes(1, 1, 4, kMax, &total));
}

TEST(AnswerBudgetTest, Float32RowsThatFitIsWhatIsLeftOverTheRowSize) {
  EXPECT_EQ(Float32RowsThatFit(1000, 0, 10), 25);
  EXPECT_EQ(Float32RowsThatFit(1000, 960, 10), 1);
  EXPECT_EQ(Float32RowsThatFit(1000, 961, 10), 0);
  EXPECT_EQ(Float32RowsThatFit(1000, 1000, 10), 0);
}

TEST(AnswerBudgetTest, ExportChunksDefaultAndAreCappedByBytesButHoldOneRow) {
  EXPECT_EQ(ExportRowsPerChunk(0, 64, kMax), kDefaultExportRows);
  EXPECT_EQ(ExportRowsPerChunk(-5, 64, kMax), kDefaultExportRows);
  EXPECT_EQ(ExportRowsPerChunk(100, 64, kMax), 100);
  // 16 MiB of 64-float rows: 65,536 rows.
  EXPECT_EQ(ExportRowsPerChunk(1'000'000, 64, kMax), 65'536);
  // A smaller answer limit caps harder.
  EXPECT_EQ(ExportRowsPerChunk(1'000'000, 64, 64 * 4 * 10), 10);
  // A row larger than the limit still goes, alone.
  EXPECT_EQ(ExportRowsPerChunk(100, 1 << 16, 1024), 1);
}

}  // namespace
}  // namespace embedserve
