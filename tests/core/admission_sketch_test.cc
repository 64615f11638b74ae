// The dynamic storage's admission sketch (core/internal/admission_sketch.h):
// never below the exact (aged) count, exact when roomy, saturating.

#include "core/internal/admission_sketch.h"
#include "tests/testing/exact_counts.h"

#include <cstdint>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

TEST(AdmissionSketchTest, NeverBelowTheExactCountAndExactWhenRoomy) {
  for (const int64_t width : {64, 1 << 16}) {
    AdmissionSketch sketch(11, width, 5000);
    ExactCounts exact(5000);
    std::mt19937_64 rng(2);
    int64_t over = 0;
    for (int i = 0; i < 40000; ++i) {
      const int64_t id = static_cast<int64_t>(rng() % 2000) - 1000;
      const int e = exact.Add(id);
      const int s = sketch.Add(id);
      ASSERT_GE(s, e) << "width " << width << " add " << i;
      over += s > e;
    }
    if (width == 64) {
      EXPECT_GT(over, 0);  // 2000 ids in 64 counters a row: collisions
    } else {
      EXPECT_EQ(over, 0);
    }
    EXPECT_EQ(sketch.agings(), 8);
    EXPECT_EQ(sketch.bytes(), AdmissionSketch::kDepth * sketch.width());
  }
}

TEST(AdmissionSketchTest, SaturatesAt255) {
  AdmissionSketch sketch(0, 64, 1 << 20);
  int last = 0;
  for (int i = 0; i < 300; ++i) last = sketch.Add(kMax);
  EXPECT_EQ(last, 255);
  EXPECT_EQ(sketch.Estimate(kMax), 255);
  EXPECT_EQ(sketch.Estimate(kMin), 0);
}

// ---- DynamicRowStorage: the rules against a model --------------------------

// The rules of DynamicRowStorage::Upsert, written plainly.

}  // namespace
}  // namespace embedserve::internal
