#include "core/row_codec.h"

#include <cmath>
#include <cstring>
#include <limits>
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

TEST(RowCodecTest, Int8RowsSpanningTheWholeFloatRangeStayFinite) {
  // hi - lo overflows float here; the codec must not produce NaN or inf.
  const std::vector<float> row = {-3e38f, 3e38f, 0.0f, 1.0f, -3.4e38f, 3.4e38f, 1e30f};
  const int64_t dim = static_cast<int64_t>(row.size());
  std::vector<uint8_t> bytes(CompactRowStride(RowType::kInt8Rowwise, dim));
  EncodeRow(RowType::kInt8Rowwise, row.data(), dim, bytes.data());
  std::vector<float> back(dim);
  DecodeRow(RowType::kInt8Rowwise, bytes.data(), dim, back.data());
  for (int64_t d = 0; d < dim; ++d) EXPECT_TRUE(std::isfinite(back[d])) << d << ": " << back[d];
  EXPECT_EQ(back[4], -3.4e38f);  // the bottom of the row is exact
  EXPECT_EQ(FirstUnencodable(RowType::kInt8Rowwise, row.data(), dim), -1);
}

TEST(RowCodecTest, Int8RowsWithADenormalRangeEncodeWithoutNaN) {
  // hi - lo = 2 denormal steps: range / 255 underflows to 0.
  const float tiny = std::numeric_limits<float>::denorm_min();
  const std::vector<float> row = {0.0f, tiny, 2 * tiny};
  std::vector<uint8_t> bytes(CompactRowStride(RowType::kInt8Rowwise, 3));
  EncodeRow(RowType::kInt8Rowwise, row.data(), 3, bytes.data());
  float scale;
  std::memcpy(&scale, bytes.data(), 4);
  EXPECT_GT(scale, 0.0f);
  std::vector<float> back(3);
  DecodeRow(RowType::kInt8Rowwise, bytes.data(), 3, back.data());
  for (float v : back) EXPECT_TRUE(std::isfinite(v));
  EXPECT_EQ(back[0], 0.0f);
}

TEST(RowCodecTest, FirstUnencodableFindsOverflowsOfTheRowType) {
  const float row[] = {1.0f, 65504.0f, 70000.0f};
  EXPECT_EQ(FirstUnencodable(RowType::kFloat16, row, 3), 2);
  EXPECT_EQ(FirstUnencodable(RowType::kFloat32, row, 3), -1);
  EXPECT_EQ(FirstUnencodable(RowType::kBFloat16, row, 3), -1);
  const float nan_row[] = {1.0f, NAN};
  EXPECT_EQ(FirstUnencodable(RowType::kFloat32, nan_row, 2), 1);
}

}  // namespace
}  // namespace embedserve
