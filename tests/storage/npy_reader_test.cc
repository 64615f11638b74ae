// The .npy reader: the header dict parser's edge cases (key order, spacing,
// the dtypes it describes without quoting), the preamble's versions and
// header-length limit, and float16/float64 conversion across read chunks.
#include "storage/internal/npy_reader.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/internal/safe_file.h"
#include "tests/testing/load_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::LoadBytes;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

absl::StatusOr<NpyHeader> Parse(const std::string& header) {
  return ParseNpyHeader(header, "x.npy", 10);
}

TEST(ParseNpyHeaderTest, AcceptsFloatTypesWithKeysInAnyOrderAndLooseSpacing) {
  auto h = Parse("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->item_bytes, 4);
  EXPECT_EQ(h->rows, 3);
  EXPECT_EQ(h->dim, 4);
  h = Parse("{'shape':(  7 ,2 ),'fortran_order':False,'descr':'<f8'}");
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->item_bytes, 8);
  EXPECT_EQ(h->rows, 7);
  EXPECT_EQ(h->dim, 2);
  h = Parse("{'descr': '=f2', 'fortran_order': False, 'shape': (1, 1)}");
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->item_bytes, 2);
  // The shape's range is CheckedMatrixBytes' business, not the parser's.
  h = Parse("{'descr': '<f4', 'fortran_order': False, 'shape': (-2, 0)}");
  ASSERT_THAT(h, IsOk());
  EXPECT_EQ(h->rows, -2);
}

TEST(ParseNpyHeaderTest, RefusedDtypesAreDescribedNotQuoted) {
  const auto refused = [](const std::string& descr) {
    return Parse("{'descr': '" + descr + "', 'fortran_order': False, 'shape': (3, 4)}");
  };
  EXPECT_THAT(refused(">f4"), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("x.npy: dtype float32 (big-endian) is not"),
                                             HasSubstr("(byte offset 10)"))));
  EXPECT_THAT(refused("<i8"), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("dtype int64 (little-endian)")));
  EXPECT_THAT(refused("|b1"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dtype bool8 ")));
  EXPECT_THAT(refused("<c16"), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("dtype complex128 (little-endian)")));
  for (const std::string descr : {"<U5", "<f4secret", "<f", "<f99"}) {
    EXPECT_THAT(refused(descr),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         AllOf(HasSubstr("dtype (unrecognised)"), Not(HasSubstr(descr)))))
        << descr;
  }
}

TEST(ParseNpyHeaderTest, FortranOrderAndBadShapesAreInvalidArgument) {
  // Fortran order is checked first: a bad dtype does not hide it.
  EXPECT_THAT(Parse("{'descr': '<i4', 'fortran_order': True, 'shape': (3, 4)}"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Fortran-order")));
  const auto with_shape = [](const std::string& shape) {
    return Parse("{'descr': '<f4', 'fortran_order': False" + shape + "}");
  };
  EXPECT_THAT(with_shape(""),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no shape in the header")));
  EXPECT_THAT(with_shape(", 'shape': (3,)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 1 dimensions, not 2")));
  EXPECT_THAT(with_shape(", 'shape': ()"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 0 dimensions, not 2")));
  EXPECT_THAT(with_shape(", 'shape': (3, 4, 5)"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("has 3 dimensions, not 2")));
  EXPECT_THAT(with_shape(", 'shape': (3, 4L)"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("shape field 1 is not an integer"), Not(HasSubstr("4L")))));
  EXPECT_THAT(with_shape(", 'shape': (3, 4"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no shape")));
}

class LoadNpyTest : public ::testing::Test {
 protected:
  // A .npy file of format `version` (1: 2-byte header length, 2 and 3:
  // 4-byte) whose header length field says `header_len`.
  static std::string File(int version, const std::string& header, uint32_t header_len,
                          const std::string& data) {
    std::string out = "\x93NUMPY";
    out += static_cast<char>(version);
    out += '\0';
    for (int i = 0; i < (version == 1 ? 2 : 4); ++i) {
      out += static_cast<char>(header_len >> (8 * i));
    }
    return out + header + data;
  }
  static std::string File(int version, const std::string& header, const std::string& data) {
    return File(version, header, header.size(), data);
  }

  absl::StatusOr<std::unique_ptr<PretrainedMatrix>> Load(const std::string& bytes) {
    return LoadBytes(dir_, LoadNpy, bytes, "a.npy");
  }

  TempDir dir_{"npy_reader_test"};
};

const std::string kF4Header = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 2), }\n";

TEST_F(LoadNpyTest, Versions1To3AreReadOthersRefused) {
  const float values[2] = {1.5f, -3.0f};
  const std::string data(reinterpret_cast<const char*>(values), sizeof(values));
  for (int version : {1, 2, 3}) {
    auto m = Load(File(version, kF4Header, data));
    ASSERT_THAT(m, IsOk()) << version;
    EXPECT_THAT((*m)->values(), ::testing::ElementsAre(1.5f, -3.0f));
    EXPECT_TRUE((*m)->words().empty());
  }
  EXPECT_THAT(Load(File(4, kF4Header, data)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("unsupported .npy version 4"), HasSubstr("byte offset 6"))));
  EXPECT_THAT(Load("\x93NUMPX" + File(1, kF4Header, data).substr(6)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no \\x93NUMPY magic")));
  EXPECT_THAT(Load("\x93NUMPY\x01"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too short")));
}

TEST_F(LoadNpyTest, HeaderLengthIsLimitedBeforeAnythingIsRead) {
  // Over the limit: refused from the length field alone, not "truncated".
  EXPECT_THAT(
      Load(File(2, kF4Header, kMaxNpyHeaderBytes + 1, "")),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("header length is over 65536 bytes"), HasSubstr("byte offset 8"))));
  EXPECT_THAT(Load(File(2, kF4Header, 0xffffffffu, "")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header length is over")));
  // At the limit: accepted, then the file is too short for it.
  EXPECT_THAT(Load(File(2, kF4Header, kMaxNpyHeaderBytes, "")),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated in the .npy header")));
}

TEST_F(LoadNpyTest, HalfAndDoubleAreConvertedAcrossReadChunks) {
  // An odd count of values, more than one chunk's worth of each type, so
  // that the last conversion chunk is partial.
  const int64_t rows = kChunkBytes / 4 + 3, dim = 3;
  std::string f2, f8;
  std::vector<float> want;
  // Half floats by their bits (a subnormal and the largest finite among
  // them), each exact as a float and a double.
  const std::pair<uint16_t, float> kHalves[] = {
      {0x3c00, 1.0f},     {0xc000, -2.0f},    {0x3800, 0.5f}, {0x0000, 0.0f},
      {0x7bff, 65504.0f}, {0x0001, 0x1p-24f}, {0xbc00, -1.0f}};
  for (int64_t i = 0; i < rows * dim; ++i) {
    const auto [half, value] = kHalves[i % 7];
    f2.append(reinterpret_cast<const char*>(&half), 2);
    const double d = value;
    f8.append(reinterpret_cast<const char*>(&d), 8);
    want.push_back(value);
  }
  const std::string shape = absl::StrCat("(", rows, ", ", dim, ")");
  for (const auto& [descr, data] : {std::pair<std::string, std::string>{"<f2", f2}, {"<f8", f8}}) {
    auto m = Load(File(
        1, "{'descr': '" + descr + "', 'fortran_order': False, 'shape': " + shape + ", }\n", data));
    ASSERT_THAT(m, IsOk()) << descr;
    EXPECT_EQ((*m)->rows(), rows);
    EXPECT_EQ((*m)->dim(), dim);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), (*m)->values().begin())) << descr;
  }
}

}  // namespace
}  // namespace embedserve::internal
