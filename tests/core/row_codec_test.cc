#include "core/row_codec.h"

#include <cmath>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace embedserve {
namespace {

TEST(RowCodecTest, HalfConversionsRoundTripAndRound) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = HalfToFloat(static_cast<uint16_t>(h));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToHalf(f), h) << h;
  }
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f)), 1.0f);
  EXPECT_EQ(HalfToFloat(FloatToHalf(65504.0f)), 65504.0f);
  EXPECT_TRUE(std::isinf(HalfToFloat(FloatToHalf(1e6f))));
  EXPECT_EQ(HalfToFloat(FloatToHalf(1.0f + 1.0f / 4096)), 1.0f);  // ties to even
  for (uint32_t b = 0; b < 0x10000; b += 7) {
    const float f = BFloat16ToFloat(static_cast<uint16_t>(b));
    if (std::isnan(f)) continue;
    ASSERT_EQ(FloatToBFloat16(f), b);
  }
}

TEST(RowCodecTest, DecodedRowsStayWithinTheDocumentedBounds) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0, 2);
  for (int64_t dim : {1, 7, 16, 33, 100}) {
    std::vector<float> x(dim), y(dim);
    for (auto& v : x) v = normal(rng);
    for (RowType type : {RowType::kFloat16, RowType::kBFloat16, RowType::kInt8Rowwise}) {
      std::vector<uint8_t> buf(CompactRowStride(type, dim));
      EXPECT_EQ(buf.size() % (type == RowType::kInt8Rowwise ? 16 : 64), 0u);
      EncodeRow(type, x.data(), dim, buf.data());
      DecodeRow(type, buf.data(), dim, y.data());
      const float lo = *std::min_element(x.begin(), x.end());
      const float hi = *std::max_element(x.begin(), x.end());
      for (int64_t d = 0; d < dim; ++d) {
        const float err = std::fabs(y[d] - x[d]);
        switch (type) {
          case RowType::kFloat16: EXPECT_LE(err, std::ldexp(std::fabs(x[d]), -11) + 6e-8f); break;
          case RowType::kBFloat16: EXPECT_LE(err, std::ldexp(std::fabs(x[d]), -8)); break;
          default: EXPECT_LE(err, (hi - lo) / 510 * 1.0001f + 1e-6f); break;
        }
      }
    }
  }
  // A constant row survives int8 exactly.
  std::vector<float> c(5, 0.75f), out(5);
  std::vector<uint8_t> buf(64);
  EncodeRow(RowType::kInt8Rowwise, c.data(), 5, buf.data());
  DecodeRow(RowType::kInt8Rowwise, buf.data(), 5, out.data());
  EXPECT_EQ(out, c);
}

}  // namespace
}  // namespace embedserve
