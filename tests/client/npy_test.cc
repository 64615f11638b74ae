#include "client/internal/npy.h"

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::HasSubstr;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NpyHeaderTest, Version1Float32COrderAlignedTo64) {
  for (const auto& [rows, cols] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 0}, {1, 3}, {100000, 64}, {int64_t{1} << 40, 1 << 20}}) {
    const std::string h = NpyFloat32Header(rows, cols);
    SCOPED_TRACE(h);
    ASSERT_GT(h.size(), 10u);
    EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
    const size_t len = static_cast<uint8_t>(h[8]) | static_cast<uint8_t>(h[9]) << 8;
    EXPECT_EQ(h.size(), 10 + len);  // the length is little-endian and counts the dict
    EXPECT_EQ(h.size() % 64, 0u);   // the data starts on a 64-byte boundary
    EXPECT_EQ(h.back(), '\n');
    const std::string dict = absl::StrCat("{'descr': '<f4', 'fortran_order': False, 'shape': (",
                                          rows, ", ", cols, "), }");
    EXPECT_EQ(h.substr(10, dict.size()), dict);
    EXPECT_EQ(h.find_first_not_of(' ', 10 + dict.size()), h.size() - 1) << "padded with spaces";
  }
}

TEST(NpyHeaderTest, MatchesNumpysBytes) {
  // The first 128 bytes of numpy.save(f, numpy.zeros((2, 3), numpy.float32)).
  const std::string numpy = std::string("\x93NUMPY\x01\x00\x76\x00", 10) +
                            "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }" +
                            std::string(58, ' ') + "\n";
  ASSERT_EQ(numpy.size(), 128u);
  EXPECT_EQ(NpyFloat32Header(2, 3), numpy);
}

class NpyFileWriterTest : public ::testing::Test {
 protected:
  ::embedserve::testing::TempDir dir_{"npy_test"};
  const std::string path_ = dir_.Path("out.npy");
};

TEST_F(NpyFileWriterTest, CommitRenamesTheCompleteFileIntoPlace) {
  auto w = NpyFileWriter::Create(path_);
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ((*w)->part_path(), path_ + ".part");
  ASSERT_THAT((*w)->WriteHeader(2, 1), IsOk());
  const float rows[2] = {1.5f, -2};
  ASSERT_THAT((*w)->Append(absl::string_view(reinterpret_cast<const char*>(rows), 4)), IsOk());
  ASSERT_THAT((*w)->Append(absl::string_view(reinterpret_cast<const char*>(rows + 1), 4)), IsOk());
  EXPECT_FALSE(std::filesystem::exists(path_)) << "nothing at the destination before Commit";
  ASSERT_THAT((*w)->Commit(), IsOk());
  w->reset();
  EXPECT_EQ(ReadAll(path_),
            NpyFloat32Header(2, 1) + std::string(reinterpret_cast<const char*>(rows), 8));
  EXPECT_FALSE(std::filesystem::exists(path_ + ".part"));
}

TEST_F(NpyFileWriterTest, AnAbandonedWriteLeavesTheOldFile) {
  std::ofstream(path_) << "old";
  {
    auto w = NpyFileWriter::Create(path_);
    ASSERT_THAT(w, IsOk());
    ASSERT_THAT((*w)->WriteHeader(1, 1), IsOk());
    EXPECT_TRUE(std::filesystem::exists(path_ + ".part"));
  }
  EXPECT_EQ(ReadAll(path_), "old");
  EXPECT_FALSE(std::filesystem::exists(path_ + ".part"));
}

TEST_F(NpyFileWriterTest, UnwritablePlacesAreUnavailable) {
  const std::string nowhere = dir_.Path("missing/out.npy");
  EXPECT_THAT(NpyFileWriter::Create(nowhere),
              StatusIs(absl::StatusCode::kUnavailable, "cannot write " + nowhere + ".part"));
  // The rename fails when the destination is a non-empty directory.
  std::filesystem::create_directories(path_ + "/x");
  auto w = NpyFileWriter::Create(path_);
  ASSERT_THAT(w, IsOk());
  ASSERT_THAT((*w)->WriteHeader(0, 0), IsOk());
  EXPECT_THAT((*w)->Commit(), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot rename")));
  w->reset();
  EXPECT_FALSE(std::filesystem::exists(path_ + ".part"));
}

}  // namespace
}  // namespace embedserve::internal
