#include "core/pooling.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

TEST(BagBoundsTest, OffsetsAndShapes) {
  EXPECT_EQ(*BagBounds(5, {0, 2, 2}, false, {}), (std::vector<int64_t>{0, 2, 2, 5}));
  EXPECT_EQ(*BagBounds(5, {0, 2, 4}, true, {}), (std::vector<int64_t>{0, 2, 4}));
  EXPECT_EQ(*BagBounds(6, {}, false, {3, 2}), (std::vector<int64_t>{0, 2, 4, 6}));
  EXPECT_THAT(BagBounds(5, {1, 2}, false, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("offsets[0] must be 0")));
  EXPECT_THAT(BagBounds(5, {0, 3, 2}, false, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-decreasing")));
  EXPECT_THAT(BagBounds(5, {0, 6}, false, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("past the end")));
  EXPECT_THAT(BagBounds(5, {}, false, {2, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not match")));
  EXPECT_THAT(BagBounds(5, {}, false, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("needs offsets")));
  EXPECT_THAT(BagBounds(4, {}, false, {2, 1, 2}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("2-D")));
}

TEST(BagBoundsTest, TooManyBagsIsResourceExhaustedBeforeAllocating) {
  // A 30-byte request: shape [500000000, 0], no ids.
  EXPECT_THAT(BagBounds(0, {}, false, {500000000, 0}, /*max_bags=*/1000),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("500000000 bags")));
  EXPECT_THAT(BagBounds(0, {}, false, {1000, 0}, /*max_bags=*/1000), IsOk());
  EXPECT_THAT(BagBounds(3, {0, 0, 0, 3}, false, {}, /*max_bags=*/3),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("bags")));
  EXPECT_THAT(BagBounds(3, {0, 0, 0, 3}, true, {}, /*max_bags=*/3), IsOk());
}

TEST(CheckBagWeightsTest, OneFiniteWeightPerIdAndOnlyWithSum) {
  EXPECT_THAT(CheckBagWeights(2, PoolingMode::kMax, {}), IsOk());
  EXPECT_THAT(CheckBagWeights(2, PoolingMode::kSum, {0.5f, -2.0f}), IsOk());
  EXPECT_THAT(
      CheckBagWeights(2, PoolingMode::kMean, {1, 1}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("only supported with mode SUM")));
  EXPECT_THAT(CheckBagWeights(2, PoolingMode::kSum, {1}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("has 1 entries, expected one per id (2)")));
  EXPECT_THAT(
      CheckBagWeights(3, PoolingMode::kSum, {1, 1, INFINITY}),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("per_sample_weights[2] is inf")));
}

TEST(PoolCopiedBagTest, PoolsThePackedRowsAsTheKernelsDo) {
  const std::vector<float> rows = {1, -2, 3, 4, 5, -6};  // 3 rows of dim 2
  std::vector<float> out(2);
  PoolCopiedBag(rows, 2, PoolingMode::kSum, {}, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(9, -4));
  PoolCopiedBag(rows, 2, PoolingMode::kMean, {}, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(3, -4.0f / 3));
  PoolCopiedBag(rows, 2, PoolingMode::kMax, {}, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(5, 4));
  PoolCopiedBag(rows, 2, PoolingMode::kSum, {2, 0, 0.5f}, out.data());
  EXPECT_THAT(out, ::testing::ElementsAre(4.5f, -7));
  PoolCopiedBag({}, 2, PoolingMode::kMax, {}, out.data());  // empty bag
  EXPECT_THAT(out, ::testing::ElementsAre(0, 0));
}

}  // namespace
}  // namespace embedserve
