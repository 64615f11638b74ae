#include "core/initializer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/enum_names.h"
#include "core/gather.h"
#include "core/internal/init_kernels.h"
#include "core/internal/philox.h"
#include "core/internal/sharded_row_storage.h"
#include "core/parallel_lookup.h"
#include "core/row_codec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kDims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 128, 1024};

std::vector<SimdLevel> SupportedLevels() {
  std::vector<SimdLevel> out;
  for (SimdLevel l : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    if (CpuSupports(l)) out.push_back(l);
  }
  return out;
}

// Restores the best level when a test that forces one ends.
class ForcedLevel {
 public:
  explicit ForcedLevel(SimdLevel level) { EXPECT_THAT(ForceSimdLevel(level), IsOk()); }
  ~ForcedLevel() { EXPECT_THAT(ForceSimdLevel(BestSupportedLevel()), IsOk()); }
};

TableSpec Spec(int64_t n, int64_t dim, InitKind kind = InitKind::kNormal, uint64_t seed = 7) {
  TableSpec s;
  s.name = "init";
  s.num_embeddings = n;
  s.embedding_dim = dim;
  s.initializer.kind = kind;
  s.initializer.seed = seed;
  return *NormalizeTableSpec(s);
}

std::vector<uint8_t> Bytes(const RowStorage& rows, int64_t n) {
  const int64_t rb = rows.format().row_bytes;
  std::vector<uint8_t> out(n * rb);
  for (int64_t r = 0; r < n; ++r) std::memcpy(out.data() + r * rb, rows.Row(rows.SlotOf(r)), rb);
  return out;
}

std::vector<float> Values(const TableSpec& spec, uint64_t row0, int64_t rows) {
  std::vector<float> out, row(spec.embedding_dim);
  for (int64_t r = 0; r < rows; ++r) {
    InitialRow(spec, static_cast<int64_t>(row0) + r, absl::MakeSpan(row));
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

// ---- The generator.

// Random123's kat_vectors for philox4x32 with 10 rounds (counter, key,
// expected), as used by cuRAND's and torch's Philox.
TEST(InitializerTest, PhiloxMatchesRandom123KnownAnswers) {
  using internal::Philox4x32;
  EXPECT_EQ(Philox4x32({0, 0, 0, 0}, {0, 0}),
            (internal::PhiloxWords{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}));
  EXPECT_EQ(Philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}),
            (internal::PhiloxWords{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}));
  EXPECT_EQ(Philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}),
            (internal::PhiloxWords{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}));
}

// Every SIMD level gives the reference's bits, for whole blocks and tails,
// several rows at once (lanes spanning row ends), high row ids, and every
// distribution's parameters.
TEST(InitializerTest, EveryLevelMatchesTheScalarReferenceBitForBit) {
  std::vector<internal::InitParams> params;
  for (InitKind kind : {InitKind::kNormal, InitKind::kUniform, InitKind::kXavierUniform}) {
    internal::InitParams p;
    p.key[0] = 0x89abcdef;
    p.key[1] = 0x1234567;
    p.normal = kind == InitKind::kNormal;
    p.mean = -0.75f;
    p.std = 3.5f;
    p.a = kind == InitKind::kXavierUniform ? -0.25 : -1e30;
    p.width = kind == InitKind::kXavierUniform ? 0.5 : 2.5 + 1e30;
    p.below_b = std::nextafter(kind == InitKind::kXavierUniform ? 0.25f : 2.5f, 0.0f);
    params.push_back(p);
  }
  params.push_back(internal::InitParams{});  // N(0, 1), seed 0
  for (SimdLevel level : SupportedLevels()) {
    if (level == SimdLevel::kScalar) continue;
    const internal::InitKernels& k = internal::InitKernelsFor(level);
    ASSERT_EQ(k.level, level);
    for (const internal::InitParams& p : params) {
      for (int64_t dim : kDims) {
        const int64_t nb = (dim + 3) / 4;
        for (uint64_t row0 : {uint64_t{0}, uint64_t{12345}, (uint64_t{1} << 32) - 40,
                              (uint64_t{7} << 32) + 3}) {
          for (int64_t rows : {1, 2, 5, 37}) {
            if ((row0 >> 32) != ((row0 + rows - 1) >> 32)) continue;
            std::vector<float> want(rows * nb * 4 + 1, -9.0f), got(want);
            internal::InitFillScalar(p, row0, rows, nb, want.data());
            k.fill(p, row0, rows, nb, got.data());
            ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
                << std::string(Name(level)) << " normal " << p.normal << " dim " << dim << " row0 "
                << row0 << " rows " << rows;
          }
        }
      }
    }
  }
}

// fill_ids, the kernel of any ids, gives at every level (the scalar one
// included) the reference's rows for ids with any bits, for every width
// (whole vectors within a row, rows shorter than a vector, tails) and count.
TEST(InitializerTest, FillIdsIsTheReferenceRowOfEachIdAtEveryLevel) {
  internal::InitParams uniform;
  uniform.normal = false;
  uniform.key[0] = 0xdeadbeef;
  uniform.a = -0.5;
  uniform.width = 1.0;
  uniform.below_b = std::nextafter(0.5f, 0.0f);
  std::vector<uint64_t> rows;
  uint64_t x = 99;
  for (int i = 0; i < 40; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    rows.push_back(i % 3 == 0 ? x : i % 3 == 1 ? x >> 40 : ~uint64_t{0} - i);
  }
  for (SimdLevel level : SupportedLevels()) {
    const internal::InitKernels& k = internal::InitKernelsFor(level);
    for (const internal::InitParams& p : {internal::InitParams{}, uniform}) {
      for (int64_t nb : {1, 2, 3, 4, 5, 7, 8, 12, 16, 17, 24, 32, 33, 256}) {
        for (int64_t n : {0, 1, 2, 3, 5, 16, 17, 40}) {
          std::vector<float> want(n * nb * 4 + 1, -9.0f), got(want);
          for (int64_t i = 0; i < n; ++i) {
            internal::InitFillScalar(p, rows[i], 1, nb, want.data() + i * nb * 4);
          }
          k.fill_ids(p, rows.data(), n, nb, got.data());
          ASSERT_EQ(0, std::memcmp(want.data(), got.data(), want.size() * sizeof(float)))
              << std::string(Name(level)) << " normal " << p.normal << " blocks " << nb
              << " ids " << n;
        }
      }
    }
  }
}

// FillInitialRows writes the same bytes at every level, serially or on a
// pool, for every row type, through the in-place path (float32, dim % 16 ==
// 0) and the buffered one; the padding row is zero; values are InitialValue.
TEST(InitializerTest, FilledRowsAreTheSameBytesAtEveryLevelAndOnAPool) {
  LookupParallelism pool(3, 1);
  for (RowType type :
       {RowType::kFloat32, RowType::kFloat16, RowType::kBFloat16, RowType::kInt8Rowwise}) {
    for (InitKind kind : {InitKind::kNormal, InitKind::kUniform, InitKind::kXavierUniform,
                          InitKind::kConstant, InitKind::kZeros}) {
      for (int64_t dim : kDims) {
        if (dim == 1024 && type != RowType::kFloat32) continue;
        TableSpec s = Spec(dim >= 512 ? 300 : 3000, dim, kind, 99);
        s.row_type = type;
        s.padding_idx = 1234 % s.num_embeddings;
        s.initializer.value = 0.375;
        s.num_shards = 5;
        auto fill = [&](SimdLevel level, LookupParallelism* p) {
          ForcedLevel forced(level);
          auto rows = internal::ShardedRowStorage::Create(s);
          EXPECT_THAT(rows, IsOk());
          FillInitialRows(s, {}, **rows, p);
          return Bytes(**rows, s.num_embeddings);
        };
        const std::vector<uint8_t> want = fill(SimdLevel::kScalar, nullptr);
        for (SimdLevel level : SupportedLevels()) {
          ASSERT_EQ(fill(level, nullptr), want)
              << std::string(Name(level)) << " type " << static_cast<int>(type) << " kind "
              << static_cast<int>(kind) << " dim " << dim;
          ASSERT_EQ(fill(level, &pool), want) << std::string(Name(level)) << " on a pool, dim " << dim;
        }
        // The values themselves, through the codec.
        auto rows = internal::ShardedRowStorage::Create(s);
        ASSERT_THAT(rows, IsOk());
        FillInitialRows(s, {}, **rows, &pool);
        std::vector<float> expect(dim), got(dim);
        std::vector<uint8_t> encoded(CompactRowStride(type, dim));
        for (int64_t r : {int64_t{0}, *s.padding_idx, s.num_embeddings - 1}) {
          for (int64_t c = 0; c < dim; ++c) {
            expect[c] = r == *s.padding_idx ? 0.0f : InitialValue(s, r, c);
          }
          EncodeRow(type, expect.data(), dim, encoded.data());
          DecodeRow(type, encoded.data(), dim, expect.data());
          DecodeRow(type, (*rows)->Row(r), dim, got.data());
          ASSERT_EQ(got, expect) << "row " << r << " dim " << dim;
        }
      }
    }
  }
}

TEST(InitializerTest, InitialRowIsInitialValueAtEveryLevelAndAnyRowId) {
  for (InitKind kind : {InitKind::kNormal, InitKind::kUniform}) {
    TableSpec s = Spec(int64_t{1} << 40, 33, kind, 5);
    s.padding_idx = 3;
    for (SimdLevel level : SupportedLevels()) {
      ForcedLevel forced(level);
      for (int64_t row : {int64_t{0}, int64_t{3}, (int64_t{1} << 32) + 17, (int64_t{1} << 40) - 1}) {
        std::vector<float> got(33);
        InitialRow(s, row, absl::MakeSpan(got));
        for (int64_t c = 0; c < 33; ++c) {
          ASSERT_EQ(got[c], row == 3 ? 0.0f : InitialValue(s, row, c)) << row << " " << c;
        }
      }
    }
  }
}

// ---- RowInitializer: the rows of any ids, batched.

std::vector<int64_t> DenseIds(int64_t n, int64_t count, uint64_t seed) {
  std::vector<int64_t> ids;
  uint64_t x = seed;
  for (int64_t i = 0; i < count; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.push_back(static_cast<int64_t>((x >> 17) % static_cast<uint64_t>(n)));
  }
  return ids;
}

std::vector<float> FillOf(const RowInitializer& init, absl::Span<const int64_t> ids) {
  // Poisoned: every value must be written.
  std::vector<float> out(ids.size() * init.dim(), std::numeric_limits<float>::quiet_NaN());
  init.Fill(ids, out.data());
  return out;
}

TEST(RowInitializerTest, FillIsInitialRowForDenseIdsAtEveryLevel) {
  for (uint32_t generator : {1u, 2u}) {
    for (InitKind kind : {InitKind::kNormal, InitKind::kUniform, InitKind::kXavierUniform,
                          InitKind::kZeros, InitKind::kConstant}) {
      for (int64_t dim : kDims) {
        TableSpec s = Spec(1000, dim, kind, 11);
        s.initializer.generator = generator;
        s.initializer.a = -0.25;
        s.initializer.b = 0.75;
        s.initializer.value = 1.5;
        s.padding_idx = 3;
        s = *NormalizeTableSpec(s);
        const RowInitializer init(s);
        // Batches of several sizes (the kernels' tails), padding and
        // repeated ids included.
        std::vector<int64_t> ids = DenseIds(1000, 41, dim);
        ids[5] = 3;
        ids[6] = ids[7];
        std::vector<float> want;
        for (int64_t id : ids) {
          std::vector<float> row(dim);
          InitialRow(s, id, absl::MakeSpan(row));
          want.insert(want.end(), row.begin(), row.end());
        }
        for (SimdLevel level : SupportedLevels()) {
          ForcedLevel forced(level);
          for (int64_t count : {int64_t{1}, int64_t{2}, int64_t{5}, int64_t{16}, int64_t{41}}) {
            const std::vector<float> got =
                FillOf(init, absl::MakeConstSpan(ids.data(), static_cast<size_t>(count)));
            ASSERT_EQ(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)), 0)
                << "generator " << generator << " kind " << static_cast<int>(kind) << " dim "
                << dim << " level " << std::string(Name(level)) << " count " << count;
          }
        }
      }
    }
  }
}

// Any int64 id: its row is the uint64 row of the same bits, computed here
// from the reference block (Philox counter {block, 0, row lo, row hi}).
TEST(RowInitializerTest, AnyIdIsTheReferenceValueOfItsUint64Row) {
  for (InitKind kind : {InitKind::kNormal, InitKind::kUniform}) {
    for (int64_t dim : {int64_t{7}, int64_t{64}, int64_t{100}, int64_t{4099}}) {
      TableSpec s = Spec(10, dim, kind, 0x1234567890abcdefULL);
      s.initializer.mean = 0.5;
      s.initializer.std = 2.0;
      s.initializer.a = -1.0;
      s.initializer.b = 3.0;
      s = *NormalizeTableSpec(s);
      s.num_embeddings = 0;  // a dynamic table's: no range
      internal::InitParams p;
      p.normal = kind == InitKind::kNormal;
      p.key[0] = static_cast<uint32_t>(s.initializer.seed);
      p.key[1] = static_cast<uint32_t>(s.initializer.seed >> 32);
      p.mean = 0.5f;
      p.std = 2.0f;
      p.a = -1.0;
      p.width = 4.0;
      p.below_b = std::nextafter(3.0f, 0.0f);
      const std::vector<int64_t> ids = {-1,
                                        std::numeric_limits<int64_t>::min(),
                                        std::numeric_limits<int64_t>::max(),
                                        (int64_t{1} << 40) + 5,
                                        -123456789012345,
                                        0x0123456789abcdefLL,
                                        (int64_t{1} << 32) - 1,
                                        int64_t{1} << 32,
                                        42};
      const RowInitializer init(s);
      for (SimdLevel level : SupportedLevels()) {
        ForcedLevel forced(level);
        const std::vector<float> got = FillOf(init, ids);
        for (size_t i = 0; i < ids.size(); ++i) {
          for (int64_t c = 0; c < dim; ++c) {
            float block[4];
            internal::InitBlockScalar(p, static_cast<uint64_t>(ids[i]),
                                      static_cast<uint32_t>(c / 4), block);
            ASSERT_EQ(got[i * dim + c], block[c % 4])
                << "id " << ids[i] << " col " << c << " level " << std::string(Name(level));
          }
        }
      }
      // Dense ids agree with InitialValue whatever the table's range.
      const std::vector<float> got = FillOf(init, {int64_t{42}});
      for (int64_t c = 0; c < dim; ++c) ASSERT_EQ(got[c], InitialValue(s, 42, c));
    }
  }
}

TEST(RowInitializerTest, PaddingIdIsZerosAnywhere) {
  TableSpec s = Spec(10, 20);
  s.num_embeddings = 0;
  s.padding_idx = -(int64_t{1} << 50);  // a dynamic table's padding id may be any id
  const RowInitializer init(s);
  const std::vector<int64_t> ids = {1, *s.padding_idx, 2, *s.padding_idx};
  for (SimdLevel level : SupportedLevels()) {
    ForcedLevel forced(level);
    const std::vector<float> got = FillOf(init, ids);
    for (size_t i = 0; i < ids.size(); ++i) {
      bool all_zero = true;
      for (int64_t c = 0; c < 20; ++c) all_zero = all_zero && got[i * 20 + c] == 0.0f;
      EXPECT_EQ(all_zero, ids[i] == *s.padding_idx) << i;
    }
  }
  // Filling an empty batch writes nothing.
  init.Fill({}, nullptr);
}

// Generator 2 does not depend on the table's width: column c of row r is the
// same in a table of 8 and of 100 columns (dynamic tables may widen).
TEST(InitializerTest, Generator2ValuesDoNotDependOnTheWidth) {
  const TableSpec narrow = Spec(10, 8), wide = Spec(10, 100);
  for (int64_t r = 0; r < 10; ++r) {
    for (int64_t c = 0; c < 8; ++c) EXPECT_EQ(InitialValue(narrow, r, c), InitialValue(wide, r, c));
  }
}

// ---- Generator 2 stays bit for bit too: stored tables and every server's
// unseen ids depend on it. Checksums (FNV-1a over the values' bits) of the
// initial rows of 256 ids, the first 8 small and the others spread over all
// 64 bits, as main computed them (c283b9f) before the fill kernels were
// rescheduled; at every level, through RowInitializer::Fill and FillIds.
uint64_t Fnv1a(absl::Span<const float> values) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (float f : values) {
    uint32_t b;
    std::memcpy(&b, &f, 4);
    for (int i = 0; i < 4; ++i) {
      h ^= (b >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  }
  return h;
}

TEST(InitializerTest, Generator2ValuesArePinned) {
  std::vector<int64_t> ids;
  uint64_t x = 1;
  for (int i = 0; i < 256; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.push_back(static_cast<int64_t>(i < 8 ? uint64_t(i) : x));
  }
  struct Pin {
    InitKind kind;
    int64_t dim;
    uint64_t fnv;
    float first;  // row of id 0, column 0
  };
  const Pin pins[] = {
      {InitKind::kNormal, 64, 0xa163c447985befe0ULL, 0x1.e16be2p-2f},
      {InitKind::kNormal, 12, 0x65aa149edb1ba3f9ULL, 0x1.e16be2p-2f},
      {InitKind::kUniform, 64, 0x74d9085496fd39b4ULL, 0x1.c2811p-3f},
      {InitKind::kUniform, 12, 0xc581f910b52271ebULL, 0x1.c2811p-3f},
  };
  for (const Pin& pin : pins) {
    TableSpec s = Spec(1000, pin.dim, pin.kind, 0x0123456789abcdefULL);
    s.initializer.mean = 0.25;
    s.initializer.std = 2.0;
    s.initializer.a = -0.5;
    s.initializer.b = 0.5;
    const RowInitializer init(s);
    for (SimdLevel level : SupportedLevels()) {
      ForcedLevel forced(level);
      std::vector<float> rows(ids.size() * pin.dim);
      init.Fill(ids, rows.data());
      EXPECT_EQ(Fnv1a(rows), pin.fnv)
          << std::string(Name(level)) << " " << std::string(Name(pin.kind)) << " dim " << pin.dim;
      EXPECT_EQ(rows[0], pin.first) << std::string(Name(level));
      EXPECT_EQ(InitialValue(s, 0, 0), pin.first);
    }
  }
}

// ---- Generator 1 stays bit for bit: tables made by earlier servers were
// filled with it. These values are what every release before generator 2
// computed.
TEST(InitializerTest, Generator1ValuesArePinned) {
  TableSpec s = Spec(1000, 7);
  s.initializer.generator = 1;
  s.initializer.seed = 42;
  s.initializer.a = -2;
  s.initializer.b = 3;
  s.initializer.mean = 0.5;
  s.initializer.std = 2;
  struct Pin {
    InitKind kind;
    int64_t row, col;
    float value;
  };
  const Pin pins[] = {
      {InitKind::kNormal, 0, 0, -0x1.c811bap-1f},
      {InitKind::kNormal, 0, 6, -0x1.cc1716p+0f},
      {InitKind::kNormal, 1, 0, 0x1.7063c8p+0f},
      {InitKind::kNormal, 999, 3, -0x1.bcda2ep+1f},
      {InitKind::kUniform, 0, 0, -0x1.22586ap-2f},
      {InitKind::kUniform, 0, 6, 0x1.237bb8p+0f},
      {InitKind::kUniform, 1, 0, -0x1.775c4cp-1f},
      {InitKind::kUniform, 999, 3, 0x1.32b396p+1f},
      {InitKind::kXavierUniform, 0, 0, -0x1.8c5f0ep-6f},
      {InitKind::kXavierUniform, 0, 6, 0x1.430da4p-6f},
      {InitKind::kXavierUniform, 1, 0, -0x1.37e6fp-5f},
      {InitKind::kXavierUniform, 999, 3, 0x1.df97fp-5f},
  };
  LookupParallelism pool(2, 1);
  for (const Pin& pin : pins) {
    s.initializer.kind = pin.kind;
    EXPECT_EQ(InitialValue(s, pin.row, pin.col), pin.value);
    std::vector<float> row(7);
    InitialRow(s, pin.row, absl::MakeSpan(row));
    EXPECT_EQ(row[pin.col], pin.value);
    // A table of generator 1 is filled with them too, on a pool or not.
    for (LookupParallelism* p : {static_cast<LookupParallelism*>(nullptr), &pool}) {
      auto rows = internal::ShardedRowStorage::Create(s);
      ASSERT_THAT(rows, IsOk());
      FillInitialRows(s, {}, **rows, p);
      float got;
      std::memcpy(&got, (*rows)->Row(pin.row) + 4 * pin.col, 4);
      EXPECT_EQ(got, pin.value);
    }
  }
}

// ---- The generator's version in the spec.
TEST(InitializerTest, SpecGeneratorZeroMeansCurrentAndUnknownIsRejected) {
  TableSpec s;
  s.name = "g";
  s.num_embeddings = 4;
  s.embedding_dim = 4;
  auto n = NormalizeTableSpec(s);
  ASSERT_THAT(n, IsOk());
  EXPECT_EQ(n->initializer.generator, kCurrentInitGenerator);
  EXPECT_EQ(kCurrentInitGenerator, 2u);
  s.initializer.generator = 1;
  EXPECT_EQ(NormalizeTableSpec(s)->initializer.generator, 1u);
  s.initializer.generator = 3;
  EXPECT_THAT(NormalizeTableSpec(s),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("initializer generator 3")));
}

TEST(InitializerTest, GeneratorsGiveDifferentTables) {
  TableSpec v1 = Spec(50, 16), v2 = Spec(50, 16);
  v1.initializer.generator = 1;
  EXPECT_NE(Values(v1, 0, 50), Values(v2, 0, 50));
}

// ---- Distributions.

// Kolmogorov-Smirnov distance of sorted `x` from the CDF `cdf`.
template <typename Cdf>
double KsDistance(std::vector<float> x, Cdf cdf) {
  std::sort(x.begin(), x.end());
  const double n = static_cast<double>(x.size());
  double d = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const double f = cdf(x[i]);
    d = std::max({d, f - i / n, (i + 1) / n - f});
  }
  return d;
}

TEST(InitializerTest, NormalHasItsMomentsAndShape) {
  // 1,000,000 values (10,000 rows of 100: tails of blocks included).
  TableSpec s = Spec(10000, 100, InitKind::kNormal, 2024);
  const std::vector<float> x = Values(s, 0, 10000);
  ASSERT_EQ(x.size(), 1000000u);
  double sum = 0, sq = 0, m4 = 0, amax = 0;
  for (float v : x) {
    sum += v;
    sq += double{v} * v;
    m4 += double{v} * v * v * v;
    amax = std::max(amax, std::fabs(double{v}));
  }
  const double n = x.size(), mean = sum / n, var = sq / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 0.005);         // 5 sigma = 5 / sqrt(n)
  EXPECT_NEAR(std::sqrt(var), 1.0, 0.004);  // sd of the sd estimate ~ 1 / sqrt(2n)
  EXPECT_NEAR(m4 / n, 3.0, 0.05);         // kurtosis of a normal
  EXPECT_GT(amax, 4.0);                   // tails reached (P(|z| > 4) ~ 6e-5)
  EXPECT_LT(amax, 6.8);                   // u >= 2^-33 bounds |z| by 6.77
  // KS at level 0.001: sqrt(n) D < 1.95.
  const double d = KsDistance(x, [](double v) { return 0.5 * std::erfc(-v / std::sqrt(2.0)); });
  EXPECT_LT(d * std::sqrt(n), 1.95) << d;
  // Pairs of one Box-Muller draw (columns 2k, 2k + 1) are uncorrelated.
  double cross = 0;
  for (size_t i = 0; i < x.size(); i += 2) cross += double{x[i]} * x[i + 1];
  EXPECT_NEAR(cross / (n / 2), 0.0, 0.01);

  s.initializer.mean = 3;
  s.initializer.std = 0.5;
  const std::vector<float> y = Values(s, 0, 2000);
  sum = sq = 0;
  for (float v : y) {
    sum += v;
    sq += double{v} * v;
  }
  const double ny = y.size(), my = sum / ny;
  EXPECT_NEAR(my, 3.0, 0.5 * 5 / std::sqrt(ny));
  EXPECT_NEAR(std::sqrt(sq / ny - my * my), 0.5, 0.01);
}

TEST(InitializerTest, UniformStaysInItsRangeAndIsFlat) {
  TableSpec s = Spec(10000, 100, InitKind::kUniform, 11);
  s.initializer.a = -2;
  s.initializer.b = 4;
  const std::vector<float> x = Values(s, 0, 10000);
  const auto [lo, hi] = std::minmax_element(x.begin(), x.end());
  EXPECT_GE(*lo, -2.0f);
  EXPECT_LT(*hi, 4.0f);
  EXPECT_LT(*lo, -1.99f);
  EXPECT_GT(*hi, 3.99f);
  const double d = KsDistance(x, [](double v) { return std::clamp((v + 2) / 6, 0.0, 1.0); });
  EXPECT_LT(d * std::sqrt(double(x.size())), 1.95) << d;

  // b is excluded even where rounding would reach it: in [1, 1 + 2^-20)
  // floats are 2^-23 apart, and without the bound about 1 value in 16
  // would round up to b.
  s.initializer.a = 1;
  s.initializer.b = 1 + 0x1.0p-20;
  const std::vector<float> t = Values(s, 0, 100);
  std::set<float> seen(t.begin(), t.end());
  EXPECT_EQ(*seen.begin(), 1.0f);
  EXPECT_EQ(*seen.rbegin(), std::nextafter(static_cast<float>(1 + 0x1.0p-20), 0.0f));
  EXPECT_EQ(seen.size(), 8u);
  // a == b: every value is a.
  s.initializer.a = s.initializer.b = 0.5;
  for (float v : Values(s, 0, 10)) ASSERT_EQ(v, 0.5f);

  // Xavier: U[-r, r).
  TableSpec xs = Spec(2000, 50, InitKind::kXavierUniform);
  const float r = static_cast<float>(std::sqrt(6.0 / 2050));
  for (float v : Values(xs, 0, 2000)) {
    ASSERT_GE(v, -r);
    ASSERT_LT(v, r);
  }
}

TEST(InitializerTest, RowsAndSeedsDiffer) {
  TableSpec s = Spec(20000, 16);
  const std::vector<float> x = Values(s, 0, 20000);
  std::set<std::vector<float>> rows;
  for (int64_t r = 0; r < 20000; ++r) {
    rows.emplace(x.begin() + r * 16, x.begin() + (r + 1) * 16);
  }
  EXPECT_EQ(rows.size(), 20000u);
  // Every bit of the seed matters, the high word included.
  const std::vector<float> base = Values(Spec(4, 16, InitKind::kNormal, 1), 0, 4);
  for (uint64_t seed : {uint64_t{0}, uint64_t{3}, (uint64_t{1} << 32) + 1, uint64_t{1} << 63}) {
    EXPECT_NE(Values(Spec(4, 16, InitKind::kNormal, seed), 0, 4), base) << seed;
  }
  // Rows 2^32 apart differ (the counter's high word is used).
  EXPECT_NE(Values(s, 5, 1), Values(s, (uint64_t{1} << 32) + 5, 1));
}

// ---- Filling a table.

TEST(InitializerTest, GivenValuesAreWrittenAsGiven) {
  TableSpec s = Spec(40, 9);
  s.row_type = RowType::kFloat16;
  s.padding_idx = 2;
  std::vector<float> values(40 * 9);
  for (size_t i = 0; i < values.size(); ++i) values[i] = 0.25f * static_cast<float>(i) - 7.0f;
  ASSERT_THAT(CheckInitialValues(s, values), IsOk());
  LookupParallelism pool(2, 1);
  auto rows = internal::ShardedRowStorage::Create(s);
  ASSERT_THAT(rows, IsOk());
  FillInitialRows(s, values, **rows, &pool);
  std::vector<float> got(9), want(9);
  std::vector<uint8_t> enc(CompactRowStride(s.row_type, 9));
  for (int64_t r = 0; r < 40; ++r) {
    EncodeRow(s.row_type, values.data() + r * 9, 9, enc.data());
    DecodeRow(s.row_type, enc.data(), 9, want.data());
    DecodeRow(s.row_type, (*rows)->Row(r), 9, got.data());
    ASSERT_EQ(got, want) << r;  // the padding row included: values are as given
  }
}

// Optimizer state is left as the storage made it (FillInitialRows writes
// rows only).
TEST(InitializerTest, OptimizerStateKeepsItsInitialValue) {
  TableSpec s = Spec(100, 16);
  s.optimizer.kind = OptimizerKind::kAdagrad;
  s.optimizer.initial_accumulator_value = 0.5;
  s = *NormalizeTableSpec(s);
  LookupParallelism pool(2, 1);
  auto rows = internal::ShardedRowStorage::Create(s);
  ASSERT_THAT(rows, IsOk());
  FillInitialRows(s, {}, **rows, &pool);
  std::vector<float> record((*rows)->format().record_floats());
  for (int64_t r = 0; r < 100; ++r) {
    (*rows)->ReadRecord(r, record.data());
    for (int64_t c = 0; c < 16; ++c) {
      ASSERT_EQ(record[c], InitialValue(s, r, c));
      ASSERT_EQ(record[16 + c], 0.5f);
    }
  }
}

}  // namespace
}  // namespace embedserve
