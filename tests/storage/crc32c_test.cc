// CRC-32C: the RFC 3720 vectors at every level, Extend, masking, and the
// SSE4.2 level against the portable one on random inputs of every small
// length at every alignment.
#include "storage/internal/crc32c.h"

#include <random>
#include <string>

#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

struct Level {
  const char* name;
  uint32_t (*extend)(uint32_t, const char*, size_t);
};

std::vector<Level> Levels() {
  std::vector<Level> levels = {{"portable", Crc32cExtendPortable}, {"dispatched", Crc32cExtend}};
  if (Crc32cHasSse42()) levels.push_back({"sse42", Crc32cExtendSse42});
  return levels;
}

uint32_t Of(const Level& l, const std::string& s) { return l.extend(0, s.data(), s.size()); }

TEST(Crc32cTest, KnownVectors) {
  std::string ascending(32, 0), descending(32, 0);
  for (int i = 0; i < 32; ++i) {
    ascending[i] = static_cast<char>(i);
    descending[i] = static_cast<char>(31 - i);
  }
  for (const Level& l : Levels()) {
    SCOPED_TRACE(l.name);
    EXPECT_EQ(Of(l, "123456789"), 0xE3069283u);
    EXPECT_EQ(Of(l, ""), 0u);
    // RFC 3720, B.4.
    EXPECT_EQ(Of(l, std::string(32, '\0')), 0x8A9136AAu);
    EXPECT_EQ(Of(l, std::string(32, '\xff')), 0x62A8AB43u);
    EXPECT_EQ(Of(l, ascending), 0x46DD794Eu);
    EXPECT_EQ(Of(l, descending), 0x113FDB5Cu);
  }
}

TEST(Crc32cTest, ExtendContinuesACrc) {
  const std::string a = "hello, ", b = "update log";
  for (const Level& l : Levels()) {
    EXPECT_EQ(l.extend(Of(l, a), b.data(), b.size()), Of(l, a + b)) << l.name;
  }
}

TEST(Crc32cTest, MaskRoundTripsAndChangesTheValue) {
  for (uint32_t crc : {0u, 1u, 0xE3069283u, 0xFFFFFFFFu}) {
    EXPECT_NE(MaskCrc32c(crc), crc);
    EXPECT_EQ(UnmaskCrc32c(MaskCrc32c(crc)), crc);
  }
}

TEST(Crc32cTest, Sse42MatchesPortableOnRandomInputs) {
  if (!Crc32cHasSse42()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937_64 rng(7);
  std::string buf(4096 + 8, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n = 0; n <= 300; ++n) {
      const uint32_t seed = static_cast<uint32_t>(rng());
      ASSERT_EQ(Crc32cExtendSse42(seed, buf.data() + offset, n),
                Crc32cExtendPortable(seed, buf.data() + offset, n))
          << "offset " << offset << " length " << n;
    }
  }
  EXPECT_EQ(Crc32cExtendSse42(0, buf.data() + 3, 4096), Crc32cExtendPortable(0, buf.data() + 3, 4096));
}

TEST(Crc32cTest, Sse42MatchesPortableOnLongInputs) {
  // Past 3 x 8 KiB the SSE4.2 level runs three streams and joins them.
  if (!Crc32cHasSse42()) GTEST_SKIP() << "no SSE4.2 on this CPU";
  std::mt19937_64 rng(11);
  std::string buf((1 << 20) + 8, '\0');
  for (char& c : buf) c = static_cast<char>(rng());
  for (size_t n : {size_t{24576} - 1, size_t{24576}, size_t{24576} + 1, size_t{49152} + 13,
                   size_t{100000}, size_t{1} << 20}) {
    for (size_t offset : {0, 3}) {
      const uint32_t seed = static_cast<uint32_t>(rng());
      ASSERT_EQ(Crc32cExtendSse42(seed, buf.data() + offset, n),
                Crc32cExtendPortable(seed, buf.data() + offset, n))
          << "offset " << offset << " length " << n;
    }
  }
}

}  // namespace
}  // namespace embedserve::internal
