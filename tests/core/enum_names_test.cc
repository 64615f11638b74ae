#include "core/enum_names.h"

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace embedserve {
namespace {

// Every value of the enum (they are dense from 0) has a distinct name that
// parses back to it.
template <typename Enum, typename ParseFn>
void ExpectRoundTrip(absl::Span<const EnumName<Enum>> names, int count, ParseFn parse) {
  ASSERT_EQ(names.size(), static_cast<size_t>(count));
  std::set<std::string> seen;
  for (int i = 0; i < count; ++i) {
    const Enum value = static_cast<Enum>(i);
    EXPECT_EQ(names[i].value, value) << "tables are in declaration order";
    const absl::string_view name = Name(value);
    EXPECT_NE(name, "unknown");
    EXPECT_TRUE(seen.insert(std::string(name)).second) << name << " named twice";
    EXPECT_EQ(parse(name), std::optional<Enum>(value)) << name;
  }
  EXPECT_EQ(Name(static_cast<Enum>(count)), "unknown");
  EXPECT_EQ(parse("no_such_name"), std::nullopt);
  EXPECT_EQ(parse(""), std::nullopt);
}

TEST(EnumNamesTest, EveryOptimizerKindRoundTrips) {
  ExpectRoundTrip(OptimizerKindNames(), 4, ParseOptimizerKind);
}
TEST(EnumNamesTest, EveryInitKindRoundTrips) {
  ExpectRoundTrip(InitKindNames(), 5, ParseInitKind);
}
TEST(EnumNamesTest, EveryRowTypeRoundTrips) { ExpectRoundTrip(RowTypeNames(), 4, ParseRowType); }
TEST(EnumNamesTest, EveryPoolingModeRoundTrips) {
  ExpectRoundTrip(PoolingModeNames(), 3, ParsePoolingMode);
}
TEST(EnumNamesTest, EverySimdLevelRoundTrips) {
  ExpectRoundTrip(SimdLevelNames(), 3,
                  [](absl::string_view n) { return ParseSimdLevel(n); });
}

// The names are a contract (on disk, on the command line, in metrics labels).
TEST(EnumNamesTest, NamesAreTheDocumentedOnes) {
  EXPECT_EQ(Name(OptimizerKind::kRowWiseAdagrad), "rowwise_adagrad");
  EXPECT_EQ(Name(OptimizerKind::kSparseAdam), "sparse_adam");
  EXPECT_EQ(Name(InitKind::kXavierUniform), "xavier_uniform");
  EXPECT_EQ(Name(RowType::kBFloat16), "bfloat16");
  EXPECT_EQ(Name(RowType::kInt8Rowwise), "int8_rowwise");
  EXPECT_EQ(Name(PoolingMode::kMean), "mean");
  EXPECT_EQ(Name(SimdLevel::kAvx512), "avx512");
}

TEST(EnumNamesTest, ParseIsCaseSensitive) {
  EXPECT_EQ(ParseOptimizerKind("SGD"), std::nullopt);
  EXPECT_EQ(ParseRowType("Float16"), std::nullopt);
}

TEST(EnumNamesTest, NameListJoinsWithCommasAndOr) {
  EXPECT_EQ(NameList(SimdLevelNames()), "scalar, avx2 or avx512");
  EXPECT_EQ(NameList(SimdLevelNames().subspan(0, 1)), "scalar");
  EXPECT_EQ(NameList(SimdLevelNames().subspan(0, 0)), "");
}

}  // namespace
}  // namespace embedserve
