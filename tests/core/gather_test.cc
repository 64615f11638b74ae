// Every SIMD level against the scalar reference, over dims that exercise
// every tail, several shards, empty bags, padding and bad ids.
#include "core/gather.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "core/enum_names.h"
#include "core/row_codec.h"
#include "gtest/gtest.h"

namespace embedserve {

void PrintTo(SimdLevel level, std::ostream* os) { *os << Name(level); }

namespace {

constexpr int64_t kDims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128, 1024};

// A RowView over `rows` random rows split into shards of 2^shift rows, laid
// out as EmbeddingTable does (64-byte aligned, stride a multiple of 16).
class TestTable {
 public:
  TestTable(int64_t rows, int64_t dim, int shift, uint32_t seed) {
    stride_ = (dim + 15) / 16 * 16;
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    const int64_t per = int64_t{1} << shift;
    for (int64_t first = 0; first < rows; first += per) {
      const int64_t n = std::min(per, rows - first);
      float* p = static_cast<float*>(std::aligned_alloc(64, n * stride_ * sizeof(float)));
      for (int64_t i = 0; i < n * stride_; ++i) p[i] = (i % stride_) < dim ? normal(rng) : 0.0f;
      buffers_.emplace_back(p);
      ptrs_.push_back(p);
    }
    view_ = RowView{ptrs_.data(), shift, rows, dim, stride_};
  }
  const RowView& view() const { return view_; }

 private:
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  int64_t stride_;
  std::vector<std::unique_ptr<float, Free>> buffers_;
  std::vector<const float*> ptrs_;
  RowView view_;
};

std::vector<SimdLevel> SimdLevels() { return {SimdLevel::kAvx2, SimdLevel::kAvx512}; }

class GatherLevelTest : public ::testing::TestWithParam<SimdLevel> {
 protected:
  void SetUp() override {
    if (!CpuSupports(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run " << Name(GetParam());
    }
  }
  const GatherKernels& kernels() { return KernelsFor(GetParam()); }
  const GatherKernels& reference() { return KernelsFor(SimdLevel::kScalar); }
};

TEST_P(GatherLevelTest, PlainGatherMatchesReferenceExactly) {
  for (int64_t dim : kDims) {
    SCOPED_TRACE("dim " + std::to_string(dim));
    TestTable t(/*rows=*/100, dim, /*shift=*/4, /*seed=*/dim);
    std::mt19937 rng(7);
    std::vector<int64_t> ids(77);
    for (auto& id : ids) id = rng() % 100;
    ids[3] = 0;
    ids[4] = 99;
    // Guards around the output catch writes past the packed rows.
    std::vector<float> got(ids.size() * dim + 16, 12345.0f), want(ids.size() * dim, -1.0f);
    ASSERT_EQ(kernels().gather(t.view(), ids.data(), ids.size(), got.data()), kAllValid);
    ASSERT_EQ(reference().gather(t.view(), ids.data(), ids.size(), want.data()), kAllValid);
    for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "at " << i;
    for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 12345.0f);
    for (int64_t d = 0; d < dim; ++d) ASSERT_EQ(got[3 * dim + d], t.view().Row(0)[d]);
  }
}

TEST_P(GatherLevelTest, PlainGatherReportsFirstBadId) {
  TestTable t(50, 17, 3, 1);
  for (int64_t bad : {int64_t{-1}, int64_t{50}, int64_t{1} << 40, INT64_MIN}) {
    std::vector<int64_t> ids = {1, 2, 3, bad, 4, -5};
    std::vector<float> out(ids.size() * 17);
    EXPECT_EQ(kernels().gather(t.view(), ids.data(), ids.size(), out.data()), 3);
    EXPECT_EQ(reference().gather(t.view(), ids.data(), ids.size(), out.data()), 3);
    // Past the first prefetch blocks (the kernels copy in blocks of 16), and
    // a bad id in a block prefetched but not reached.
    std::vector<int64_t> longer(60, 7);
    longer[37] = bad;
    longer[55] = -5;
    out.assign(longer.size() * 17, 0.0f);
    EXPECT_EQ(kernels().gather(t.view(), longer.data(), longer.size(), out.data()), 37);
    EXPECT_EQ(reference().gather(t.view(), longer.data(), longer.size(), out.data()), 37);
  }
}

TEST_P(GatherLevelTest, PooledMatchesReference) {
  std::mt19937 rng(11);
  for (int64_t dim : kDims) {
    for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean, PoolingMode::kMax}) {
      for (bool weighted : {false, true}) {
        if (weighted && mode != PoolingMode::kSum) continue;
        SCOPED_TRACE("dim " + std::to_string(dim) + " mode " +
                     std::to_string(static_cast<int>(mode)) + " weighted " +
                     std::to_string(weighted));
        TestTable t(64, dim, 3, dim + 100);
        // Bags of size 0..20, some made only of padding (row 5).
        std::vector<int64_t> ids, bounds = {0};
        for (int b = 0; b < 12; ++b) {
          const int size = b == 2 ? 0 : static_cast<int>(rng() % 21);
          for (int i = 0; i < size; ++i) ids.push_back(b == 7 ? 5 : rng() % 64);
          bounds.push_back(ids.size());
        }
        std::vector<float> weights(ids.size());
        for (auto& w : weights) w = static_cast<float>(rng() % 1000) / 250.0f - 2.0f;
        BagArgs args{ids.data(),
                     static_cast<int64_t>(ids.size()),
                     bounds.data(),
                     static_cast<int64_t>(bounds.size()) - 1,
                     mode,
                     weighted ? weights.data() : nullptr,
                     /*padding_idx=*/5};
        std::vector<float> got(args.num_bags * dim + 16, 12345.0f), want(args.num_bags * dim);
        ASSERT_EQ(kernels().pooled(t.view(), args, got.data()), kAllValid);
        ASSERT_EQ(reference().pooled(t.view(), args, want.data()), kAllValid);
        for (size_t i = 0; i < want.size(); ++i) {
          if (weighted) {
            // FMA rounds once where the reference rounds twice.
            ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::fabs(want[i]))) << "at " << i;
          } else {
            ASSERT_EQ(got[i], want[i]) << "at " << i;
          }
        }
        for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 12345.0f);
        for (int64_t d = 0; d < dim; ++d) {
          ASSERT_EQ(got[2 * dim + d], 0.0f) << "empty bag";
          ASSERT_EQ(got[7 * dim + d], 0.0f) << "bag of padding only";
        }
      }
    }
  }
}

TEST_P(GatherLevelTest, PooledReportsFirstBadId) {
  TestTable t(10, 9, 2, 3);
  std::vector<int64_t> ids = {1, 2, 3, 4, 10, 5, -1};
  std::vector<int64_t> bounds = {0, 2, 7};
  std::vector<float> out(2 * 9);
  for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean, PoolingMode::kMax}) {
    BagArgs args{ids.data(), 7, bounds.data(), 2, mode, nullptr, -1};
    EXPECT_EQ(kernels().pooled(t.view(), args, out.data()), 4);
    EXPECT_EQ(reference().pooled(t.view(), args, out.data()), 4);
  }
}

// Compact rows: every level against the scalar reference.
class CompactTable {
 public:
  CompactTable(int64_t rows, int64_t dim, int shift, RowType type, uint32_t seed) {
    const int64_t stride = CompactRowStride(type, dim);
    std::mt19937 rng(seed);
    std::normal_distribution<float> normal;
    std::vector<float> row(dim);
    const int64_t per = int64_t{1} << shift;
    for (int64_t first = 0; first < rows; first += per) {
      const int64_t n = std::min(per, rows - first);
      auto* p = static_cast<uint8_t*>(std::aligned_alloc(64, n * stride));
      std::memset(p, 0, n * stride);
      for (int64_t r = 0; r < n; ++r) {
        for (auto& v : row) v = normal(rng);
        EncodeRow(type, row.data(), dim, p + r * stride);
      }
      buffers_.emplace_back(p);
      ptrs_.push_back(p);
    }
    view_ = CompactRowView{ptrs_.data(), shift, rows, dim, stride, type};
  }
  const CompactRowView& view() const { return view_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const { std::free(p); }
  };
  std::vector<std::unique_ptr<uint8_t, Free>> buffers_;
  std::vector<const uint8_t*> ptrs_;
  CompactRowView view_;
};

TEST_P(GatherLevelTest, CompactRowsMatchReference) {
  std::mt19937 rng(5);
  for (RowType type : {RowType::kFloat16, RowType::kBFloat16, RowType::kInt8Rowwise}) {
    for (int64_t dim : kDims) {
      SCOPED_TRACE("type " + std::to_string(static_cast<int>(type)) + " dim " +
                   std::to_string(dim));
      CompactTable t(40, dim, 3, type, static_cast<uint32_t>(dim));
      std::vector<int64_t> ids(23);
      for (auto& id : ids) id = rng() % 40;
      std::vector<float> got(ids.size() * dim + 16, 777.0f), want(ids.size() * dim);
      ASSERT_EQ(kernels().compact_gather(t.view(), ids.data(), ids.size(), got.data()), kAllValid);
      ASSERT_EQ(reference().compact_gather(t.view(), ids.data(), ids.size(), want.data()),
                kAllValid);
      for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << i;
      for (size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 777.0f);
      std::vector<int64_t> bounds = {0, 5, 5, 12, 23};
      std::vector<float> w(ids.size(), 0.5f);
      for (PoolingMode mode : {PoolingMode::kSum, PoolingMode::kMean, PoolingMode::kMax}) {
        for (bool weighted : {false, true}) {
          if (weighted && mode != PoolingMode::kSum) continue;
          BagArgs args{ids.data(), 23, bounds.data(), 4, mode, weighted ? w.data() : nullptr, 7};
          std::vector<float> pg(4 * dim + 16, 777.0f), pw(4 * dim);
          ASSERT_EQ(kernels().compact_pooled(t.view(), args, pg.data()), kAllValid);
          ASSERT_EQ(reference().compact_pooled(t.view(), args, pw.data()), kAllValid);
          for (size_t i = 0; i < pw.size(); ++i) {
            if (weighted) {
              ASSERT_NEAR(pg[i], pw[i], 1e-5f * (1 + std::fabs(pw[i])));
            } else {
              ASSERT_EQ(pg[i], pw[i]) << i;
            }
          }
          for (size_t i = pw.size(); i < pg.size(); ++i) ASSERT_EQ(pg[i], 777.0f);
        }
      }
      std::vector<int64_t> bad = {1, 40};
      EXPECT_EQ(kernels().compact_gather(t.view(), bad.data(), 2, got.data()), 1);
      std::vector<int64_t> later(40, 1);  // past the first prefetch block
      later[21] = 40;
      std::vector<float> out(later.size() * dim);
      EXPECT_EQ(kernels().compact_gather(t.view(), later.data(), later.size(), out.data()), 21);
    }
  }
}

// float32 -> float16 for float16 answers: equal to FloatToHalf (the scalar
// level) for every length's tail and for ties, subnormals, overflow and
// infinities; NaN stays NaN with its sign.
TEST_P(GatherLevelTest, ToHalfMatchesFloatToHalf) {
  std::mt19937 rng(11);
  std::vector<float> in;
  for (int i = 0; i < 4000; ++i) {  // random bit patterns cover every exponent
    uint32_t bits = static_cast<uint32_t>(rng());
    float f;
    std::memcpy(&f, &bits, 4);
    if (!std::isnan(f)) in.push_back(f);
  }
  for (float f : {0.0f, -0.0f, 1.0f, 65504.0f, 65519.99f, 65520.0f, -65520.0f, 1e-8f, -3e-5f,
                  5.9604645e-8f, 2.9802322e-8f, 2.9802326e-8f, 6.1035156e-5f, 1.00048828125f,
                  1.00146484375f, INFINITY, -INFINITY}) {
    in.push_back(f);
  }
  for (int64_t n = 0; n <= static_cast<int64_t>(in.size()); n += (n < 40 ? 1 : 397)) {
    std::vector<uint16_t> got(n + 3, 0xabcd);
    kernels().to_half(in.data(), n, got.data());
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], FloatToHalf(in[i])) << "n " << n << " i " << i << " value " << in[i];
    }
    for (int64_t i = n; i < n + 3; ++i) ASSERT_EQ(got[i], 0xabcd) << "wrote past n " << n;
  }
  const float nans[] = {NAN, -NAN, std::nanf("1234")};
  uint16_t h[3];
  kernels().to_half(nans, 3, h);
  for (int i = 0; i < 3; ++i) {
    EXPECT_TRUE(std::isnan(HalfToFloat(h[i]))) << i;
    EXPECT_EQ(h[i] >> 15, std::signbit(nans[i]) ? 1 : 0) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(AllLevels, GatherLevelTest, ::testing::ValuesIn(SimdLevels()),
                         [](const auto& info) { return std::string(Name(info.param)); });

TEST(GatherTest, ScalarReferenceComputesByDefinition) {
  TestTable t(4, 3, 1, 9);
  const RowView& v = t.view();
  std::vector<int64_t> ids = {0, 1, 2, 3, 1};
  std::vector<int64_t> bounds = {0, 3, 5};
  std::vector<float> w = {1.0f, 2.0f, -1.0f, 0.5f, 4.0f};
  std::vector<float> out(6);
  BagArgs args{ids.data(), 5, bounds.data(), 2, PoolingMode::kSum, w.data(), /*padding=*/2};
  ASSERT_EQ(KernelsFor(SimdLevel::kScalar).pooled(v, args, out.data()), kAllValid);
  for (int d = 0; d < 3; ++d) {
    EXPECT_FLOAT_EQ(out[d], v.Row(0)[d] + 2.0f * v.Row(1)[d]);  // row 2 is padding
    EXPECT_FLOAT_EQ(out[3 + d], 0.5f * v.Row(3)[d] + 4.0f * v.Row(1)[d]);
  }
  args.mode = PoolingMode::kMean;
  args.weights = nullptr;
  ASSERT_EQ(KernelsFor(SimdLevel::kScalar).pooled(v, args, out.data()), kAllValid);
  for (int d = 0; d < 3; ++d) EXPECT_FLOAT_EQ(out[d], (v.Row(0)[d] + v.Row(1)[d]) / 2.0f);
  args.mode = PoolingMode::kMax;
  ASSERT_EQ(KernelsFor(SimdLevel::kScalar).pooled(v, args, out.data()), kAllValid);
  for (int d = 0; d < 3; ++d) EXPECT_EQ(out[3 + d], std::max(v.Row(3)[d], v.Row(1)[d]));
}

TEST(GatherTest, ForceSimdLevelSwitchesActiveKernels) {
  const SimdLevel best = BestSupportedLevel();
  ASSERT_TRUE(ForceSimdLevel(SimdLevel::kScalar).ok());
  EXPECT_EQ(ActiveKernels().level, SimdLevel::kScalar);
  ASSERT_TRUE(ForceSimdLevel(best).ok());
  EXPECT_EQ(ActiveKernels().level, best);
  if (!CpuSupports(SimdLevel::kAvx512)) {
    EXPECT_EQ(ForceSimdLevel(SimdLevel::kAvx512).code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(ActiveKernels().level, best);
  }
}

TEST(GatherTest, ParsesLevelNames) {
  EXPECT_EQ(ParseSimdLevel("avx2"), SimdLevel::kAvx2);
  EXPECT_EQ(ParseSimdLevel("avx512"), SimdLevel::kAvx512);
  EXPECT_EQ(ParseSimdLevel("sse9"), std::nullopt);
}

}  // namespace
}  // namespace embedserve
