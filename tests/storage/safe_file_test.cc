// The descriptor layer under every pretrained-file reader: what is opened
// (and what is refused) beneath a root, reads that stay within the file's
// size at open and notice a file that changes, the window's token scanning
// across chunk boundaries, and the size checks done before any allocation.
#include "storage/internal/safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <limits>
#include <memory>
#include <string>

#include "core/table_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

class SafeFileTest : public ::testing::Test {
 protected:
  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_.Path(name);
    std::ofstream(path, std::ios::binary) << bytes;
    return path;
  }
  std::unique_ptr<SafeFile> Open(const std::string& path) {
    auto f = SafeFile::Open(path, options_);
    EXPECT_THAT(f, IsOk());
    return f.ok() ? *std::move(f) : nullptr;
  }

  TempDir dir_{"safe_file_test"};
  LoadOptions options_;
};

// --- CheckedMatrixBytes -----------------------------------------------------

TEST(CheckedMatrixBytesTest, ExactFitIsOkOneByteShortIsTruncated) {
  EXPECT_THAT(CheckedMatrixBytes("f", 8, "rows", 3, "dim", 5, 4, 60), IsOk());
  EXPECT_EQ(*CheckedMatrixBytes("f", 8, "rows", 3, "dim", 5, 4, 60), 60);
  EXPECT_THAT(CheckedMatrixBytes("f", 8, "rows", 3, "dim", 5, 4, 59),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("f: truncated"), HasSubstr("need 60 bytes"),
                             HasSubstr("byte offset 8"), HasSubstr("holds 59"))));
}

TEST(CheckedMatrixBytesTest, FieldsOutOfRangeAreNamed) {
  for (int64_t rows : {int64_t{0}, int64_t{-1}, kMaxNumEmbeddings + 1}) {
    EXPECT_THAT(CheckedMatrixBytes("f", 0, "the rows", rows, "the dim", 1, 4, 1 << 20),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the rows must be in")));
  }
  for (int64_t dim : {int64_t{0}, int64_t{-7}, kMaxEmbeddingDim + 1}) {
    EXPECT_THAT(CheckedMatrixBytes("f", 0, "the rows", 1, "the dim", dim, 4, 1 << 20),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("the dim must be in")));
  }
  // Each in range, the product in bytes not representable.
  EXPECT_THAT(CheckedMatrixBytes("f", 0, "R", kMaxNumEmbeddings, "D", kMaxEmbeddingDim,
                                 std::numeric_limits<int64_t>::max() / 2, 1 << 20),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("R x D overflows")));
  // Representable, far beyond the file: truncated, never allocated.
  EXPECT_THAT(CheckedMatrixBytes("f", 0, "R", kMaxNumEmbeddings, "D", kMaxEmbeddingDim, 8, 100),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

// --- Open: what is refused --------------------------------------------------

TEST_F(SafeFileTest, RefusesWhatIsNotOneRegularFile) {
  EXPECT_THAT(SafeFile::Open(std::string("a\0b", 3), options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
  EXPECT_THAT(SafeFile::Open(dir_.Path("missing"), options_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open")));
  ASSERT_EQ(::mkfifo(dir_.Path("fifo").c_str(), 0600), 0);
  EXPECT_THAT(SafeFile::Open(dir_.Path("fifo"), options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is a FIFO")));
  EXPECT_THAT(SafeFile::Open(dir_.path(), options_),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is a directory")));
  options_.max_file_bytes = 3;
  EXPECT_THAT(SafeFile::Open(Write("four", "abcd"), options_),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("limit of 3")));
}

TEST_F(SafeFileTest, BeneathARootOnlyConfinedPathsWithoutSymlinksOpen) {
  ASSERT_EQ(::mkdir(dir_.Path("root").c_str(), 0700), 0);
  ASSERT_EQ(::mkdir(dir_.Path("root/sub").c_str(), 0700), 0);
  Write("root/sub/a", "abcd");
  Write("outside", "secret");
  ASSERT_EQ(::symlink("a", dir_.Path("root/sub/link").c_str()), 0);
  ASSERT_EQ(::symlink("sub", dir_.Path("root/dirlink").c_str()), 0);
  ASSERT_EQ(::symlink(dir_.Path("outside").c_str(), dir_.Path("root/out").c_str()), 0);
  options_.root = dir_.Path("root");

  auto f = SafeFile::Open("sub/a", options_);
  ASSERT_THAT(f, IsOk());
  EXPECT_EQ((*f)->size(), 4);
  EXPECT_THAT(SafeFile::Open("sub/../sub/a", options_), IsOk());
  for (const char* path : {"../outside", "sub/../../outside", "sub/link", "dirlink/a", "out"}) {
    EXPECT_THAT(SafeFile::Open(path, options_), StatusIs(absl::StatusCode::kPermissionDenied,
                                                         HasSubstr("leaves the load directory")))
        << path;
  }
  for (const std::string& path : {dir_.Path("outside"), std::string()}) {
    EXPECT_THAT(SafeFile::Open(path, options_),
                StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("not a path relative")));
  }
  EXPECT_THAT(SafeFile::Open("sub/missing", options_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open sub/missing")));
  options_.root = dir_.Path("no-such-root");
  EXPECT_THAT(SafeFile::Open("a", options_),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("load directory")));
}

// --- Reading ----------------------------------------------------------------

TEST_F(SafeFileTest, UntilFindsTokensAcrossChunksAndAtTheEnd) {
  const std::string first(kChunkBytes - 3, 'a');
  auto f = Open(Write("t", first + "\nbcdefgh\nxyz"));
  ASSERT_NE(f, nullptr);
  bool found = false;
  auto token = f->Until('\n', f->size(), "a line", &found);
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(*token, first);
  EXPECT_TRUE(found);
  token = f->Until('\n', f->size(), "a line", &found);  // starts 2 bytes before the chunk's end
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(*token, "bcdefgh");
  EXPECT_EQ(f->offset(), kChunkBytes + 6);
  token = f->Until('\n', f->size(), "a line", &found);
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(*token, "xyz");
  EXPECT_FALSE(found);
  EXPECT_EQ(f->remaining(), 0);
  EXPECT_EQ(*f->Peek(), -1);
  EXPECT_THAT(f->Finish(), IsOk());
}

TEST_F(SafeFileTest, UntilRefusesATokenOverMaxLen) {
  auto f = Open(Write("t", "abcdef abc"));
  ASSERT_NE(f, nullptr);
  bool found;
  EXPECT_THAT(
      f->Until(' ', 5, "a word", &found),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("a word is longer than 5 bytes"), HasSubstr("byte offset 0"))));
  f = Open(Write("t", "abcdef abc"));
  EXPECT_EQ(*f->Until(' ', 6, "a word", &found), "abcdef");
  // No delimiter for longer than a chunk: refused without reading the rest.
  f = Open(Write("long", std::string(3 * kChunkBytes, 'x')));
  EXPECT_THAT(f->Until(' ', 100, "a word", &found),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer than 100")));
  EXPECT_EQ(f->offset(), 0);  // nothing was consumed
}

TEST_F(SafeFileTest, ReadTakesTheWindowThenTheFileAndNeverPastTheEnd) {
  auto f = Open(Write("t", "0123456789"));
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(*f->Peek(), '0');  // fills the window with the whole file
  f->Skip();
  char buf[16] = {};
  EXPECT_THAT(f->Read(buf, 10, "the values"),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("truncated in the values"), HasSubstr("byte offset 1"),
                             HasSubstr("10 bytes needed, 9 left"))));
  EXPECT_EQ(f->offset(), 1);  // nothing consumed by the refused read
  ASSERT_THAT(f->Read(buf, 9, "the values"), IsOk());
  EXPECT_EQ(std::string(buf, 9), "123456789");

  // Past a one-chunk window the rest goes straight into the buffer.
  std::string big(2 * kChunkBytes + 5, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
  f = Open(Write("big", big));
  bool found;
  ASSERT_THAT(f->Until(static_cast<char>(7), 10, "x", &found), IsOk());  // consumes 2 bytes
  std::string rest(big.size() - 2, '\0');
  ASSERT_THAT(f->Read(rest.data(), rest.size(), "the values"), IsOk());
  EXPECT_EQ(rest, big.substr(2));
  EXPECT_THAT(f->Finish(), IsOk());
}

TEST_F(SafeFileTest, CancellationIsPolledBeforeEachChunk) {
  int polls = 0;
  options_.cancelled = [&polls] { return ++polls == 3; };
  auto f = Open(Write("big", std::string(3 * kChunkBytes + 1, 'z')));
  ASSERT_NE(f, nullptr);
  std::string all(f->size(), '\0');
  EXPECT_THAT(f->Read(all.data(), all.size(), "the values"),
              StatusIs(absl::StatusCode::kCancelled,
                       AllOf(HasSubstr("was cancelled"),
                             HasSubstr("byte offset " + std::to_string(2 * kChunkBytes)))));
  EXPECT_EQ(polls, 3);
}

TEST_F(SafeFileTest, AFileThatShrinksOrChangesIsDataLoss) {
  const std::string path = Write("t", std::string(100, 'q'));
  auto f = Open(path);
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(::truncate(path.c_str(), 10), 0);
  char buf[100];
  EXPECT_THAT(f->Read(buf, 100, "the values"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("changed while it was being read (byte offset 10)")));
  EXPECT_THAT(f->Finish(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("changed")));

  // Same size, new mtime: Finish still tells.
  f = Open(Write("u", "abcd"));
  ASSERT_THAT(f->Read(buf, 4, "the values"), IsOk());
  struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  ASSERT_EQ(::utimensat(AT_FDCWD, dir_.Path("u").c_str(), times, 0), 0);
  EXPECT_THAT(f->Finish(), StatusIs(absl::StatusCode::kDataLoss,
                                    HasSubstr("changed while it was being read (byte offset 4)")));
}

}  // namespace
}  // namespace embedserve::internal
