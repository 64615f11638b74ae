#include "core/coalesce.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

TEST(CoalesceTest, SumsDuplicatesInFirstOccurrenceOrder) {
  const std::vector<int64_t> ids = {7, 2, 7, 5, 2, 7};
  const std::vector<float> grads = {1, 10, 2, 20, 3, 30, 4, 40, 5, 50, 6, 60};
  const CoalescedGradients g = CoalesceGradients(ids, grads, 2, /*padding_idx=*/std::nullopt, false);
  EXPECT_THAT(g.ids, ElementsAre(7, 2, 5));
  EXPECT_THAT(g.sums, ElementsAre(1 + 3 + 6, 10 + 30 + 60, 2 + 5, 20 + 50, 4, 40));
}

TEST(CoalesceTest, SumsInPushOrderAsFloat32) {
  // 1 + 1e8 rounds to 1e8 in float32: summed in push order, 1, 1e8, -1e8
  // give 0 and 1e8, -1e8, 1 give 1.
  const std::vector<int64_t> ids = {3, 3, 3};
  const std::vector<float> grads = {1.0f, 1e8f, -1e8f};
  EXPECT_THAT(CoalesceGradients(ids, grads, 1, std::nullopt, false).sums, ElementsAre(0.0f));
  const std::vector<float> other = {1e8f, -1e8f, 1.0f};
  EXPECT_THAT(CoalesceGradients(ids, other, 1, std::nullopt, false).sums, ElementsAre(1.0f));
}

TEST(CoalesceTest, PaddingIsDroppedAndScaleDividesByCount) {
  const std::vector<int64_t> ids = {0, 4, 4, 0, 1};
  const std::vector<float> grads = {9, 9, 2, 4, 6, 8, 9, 9, 1, 1};
  const CoalescedGradients g = CoalesceGradients(ids, grads, 2, /*padding_idx=*/0, true);
  EXPECT_THAT(g.ids, ElementsAre(4, 1));
  EXPECT_THAT(g.sums, ElementsAre((2 + 6) / 2.0f, (4 + 8) / 2.0f, 1, 1));
  EXPECT_THAT(CoalesceGradients({0, 0}, {1, 1}, 1, 0, false).ids, IsEmpty());
}

TEST(CoalesceTest, AssignmentKeepsTheLastOccurrence) {
  const CoalescedAssignment a = CoalesceAssignment(std::vector<int64_t>{5, 1, 5, 2, 1});
  EXPECT_THAT(a.ids, ElementsAre(5, 2, 1));
  EXPECT_THAT(a.positions, ElementsAre(2, 3, 4));
}

}  // namespace
}  // namespace embedserve
