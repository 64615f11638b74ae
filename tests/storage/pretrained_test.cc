#include "storage/pretrained.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/table_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace embedserve {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::Not;

class PretrainedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/embedserve-pretrained-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(std::fwrite(bytes.data(), 1, bytes.size(), f), bytes.size());
    std::fclose(f);
    return path;
  }

  std::string dir_;
};

std::string Floats(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

// A version-1 .npy file as numpy writes it: the header padded with spaces
// so that the data starts at a multiple of 64.
std::string Npy(const std::string& descr, const std::string& shape, const std::string& data) {
  std::string header =
      absl::StrCat("{'descr': '", descr, "', 'fortran_order': False, 'shape': ", shape, ", }");
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY\x01";
  out += '\0';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  return out + header + data;
}

const std::vector<float> kValues = {1.5f, -2.0f, 0.25f, 3.0f, 4.0f, -0.5f};  // 2 x 3

// --- Normal files of every format -------------------------------------------

TEST_F(PretrainedTest, LoadsRaw) {
  auto m = LoadPretrained(Write("w.f32", Floats(kValues)), PretrainedFormat::kRaw, 3);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_EQ((*m)->dim(), 3);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));
  EXPECT_TRUE((*m)->words().empty());
}

TEST_F(PretrainedTest, LoadsNpyFloat32Float16Float64) {
  auto m = LoadPretrained(Write("f4.npy", Npy("<f4", "(2, 3)", Floats(kValues))),
                          PretrainedFormat::kNpy);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_EQ((*m)->dim(), 3);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));

  std::string f8;
  for (float v : kValues) {
    const double d = v;
    f8.append(reinterpret_cast<const char*>(&d), 8);
  }
  m = LoadPretrained(Write("f8.npy", Npy("<f8", "(3, 2)", f8)), PretrainedFormat::kNpy);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 3);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));

  // 1.0, -2.0 and 0.5 as IEEE half floats.
  const std::string f2("\x00\x3c\x00\xc0\x00\x38", 6);
  m = LoadPretrained(Write("f2.npy", Npy("<f2", "(1, 3)", f2)), PretrainedFormat::kNpy);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT((*m)->values(), ElementsAre(1.0f, -2.0f, 0.5f));
}

TEST_F(PretrainedTest, LoadsNpyLargerThanOneReadChunk) {
  std::vector<float> big(3 << 20);  // 12 MiB: several pread chunks
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<float>(i % 9973);
  auto m = LoadPretrained(Write("big.npy", Npy("<f4", "(3145728, 1)", Floats(big))),
                          PretrainedFormat::kNpy);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 3 << 20);
  EXPECT_TRUE(std::equal(big.begin(), big.end(), (*m)->values().begin()));
}

TEST_F(PretrainedTest, LoadsWord2VecText) {
  auto m = LoadPretrained(Write("w.txt", "2 3\nking 1.5 -2 0.25\nqueen 3 4 -0.5\n"),
                          PretrainedFormat::kWord2VecText);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_EQ((*m)->dim(), 3);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));
  EXPECT_THAT((*m)->words(), ElementsAre("king", "queen"));
}

TEST_F(PretrainedTest, LoadsGloveTextWithoutFinalNewline) {
  auto m = LoadPretrained(Write("g.txt", "king 1.5 -2 0.25\r\n\nqueen 3 4 -0.5"),
                          PretrainedFormat::kGloveText);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));
  EXPECT_THAT((*m)->words(), ElementsAre("king", "queen"));
}

TEST_F(PretrainedTest, LoadsWord2VecBinary) {
  const std::string bytes =
      "2 3\nking " + Floats({1.5f, -2.0f, 0.25f}) + "\nqueen " + Floats({3.0f, 4.0f, -0.5f}) + "\n";
  auto m = LoadPretrained(Write("w.bin", bytes), PretrainedFormat::kWord2VecBinary);
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_THAT((*m)->values(), ElementsAreArray(kValues));
  EXPECT_THAT((*m)->words(), ElementsAre("king", "queen"));
}

// --- Inputs that crashed or froze the server --------------------------------

TEST_F(PretrainedTest, HugeRawDimIsInvalidArgument) {
  const std::string path = Write("w.f32", Floats(kValues));
  EXPECT_THAT(
      LoadPretrained(path, PretrainedFormat::kRaw, int64_t{1} << 62),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr(path), HasSubstr("raw_dim"))));
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kRaw, kMaxEmbeddingDim + 1),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("raw_dim")));
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kRaw, -3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("raw_dim")));
}

TEST_F(PretrainedTest, NpyShapeWhoseProductOverflowsIsInvalidArgument) {
  const std::string data = Npy("<f4", "(4611686018427387904, 4611686018427387904)", "");
  ASSERT_LE(data.size(), 160u);
  const std::string path = Write("overflow.npy", data + std::string(144 - data.size() % 144, 0));
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("shape[0] (rows)"))));
  // Each dimension in range, the product not: the product is checked
  // against the file's size before anything is allocated.
  const std::string path2 = Write("big.npy", Npy("<f8", "(1099511627776, 65536)", "abcd"));
  EXPECT_THAT(LoadPretrained(path2, PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(
      LoadPretrained(Write("dim.npy", Npy("<f4", "(2, 70000)", "")), PretrainedFormat::kNpy),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape[1] (dim)")));
  EXPECT_THAT(LoadPretrained(Write("neg.npy", Npy("<f4", "(-2, -3)", Floats(kValues))),
                             PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape[0] (rows)")));
  EXPECT_THAT(LoadPretrained(Write("3d.npy", Npy("<f4", "(1, 2, 3)", Floats(kValues))),
                             PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("3 dimensions")));
}

TEST_F(PretrainedTest, Word2VecBinaryHugeHeaderIsRefusedWithoutAllocating) {
  const std::string path =
      Write("huge.bin", "4611686018427387904 4611686018427387904\nking " + Floats({1, 2}));
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kWord2VecBinary),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(path), HasSubstr("rows in the header"))));
  // In range, but more than the file holds.
  EXPECT_THAT(LoadPretrained(Write("big.bin", "1099511627776 65536\nking " + Floats({1, 2})),
                             PretrainedFormat::kWord2VecBinary),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(LoadPretrained(Write("big.txt", "1099511627776 65536\nking 1 2\n"),
                             PretrainedFormat::kWord2VecText),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
}

TEST_F(PretrainedTest, FifoIsInvalidArgumentAtOnce) {
  const std::string path = dir_ + "/fifo";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const auto start = std::chrono::steady_clock::now();
  // Without O_NONBLOCK the open() blocks forever (no writer): the test
  // would hang, so a watchdog opens the writing end after a few seconds to
  // make an unfixed loader fail instead.
  pid_t watchdog = ::fork();
  ASSERT_GE(watchdog, 0);
  if (watchdog == 0) {
    ::sleep(5);
    const int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK);
    if (fd >= 0) ::close(fd);
    ::_exit(0);
  }
  const auto m = LoadPretrained(path, PretrainedFormat::kNpy);
  const auto took = std::chrono::steady_clock::now() - start;
  ::kill(watchdog, SIGKILL);
  ::waitpid(watchdog, nullptr, 0);
  EXPECT_THAT(
      m, StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr(path), HasSubstr("FIFO"))));
  EXPECT_LT(took, std::chrono::seconds(2));
}

TEST_F(PretrainedTest, DirectoryAndDeviceAreInvalidArgument) {
  EXPECT_THAT(
      LoadPretrained(dir_, PretrainedFormat::kGloveText),
      StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr(dir_), HasSubstr("directory"))));
  EXPECT_THAT(LoadPretrained("/dev/zero", PretrainedFormat::kRaw, 4),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("/dev/zero"), HasSubstr("character device"))));
}

TEST_F(PretrainedTest, MissingFileIsNotFound) {
  EXPECT_THAT(LoadPretrained(dir_ + "/nope.npy", PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open")));
}

TEST_F(PretrainedTest, PathWithNulByteIsInvalidArgument) {
  // open() would stop at the NUL and read another file than the one named.
  const std::string path = Write("w.f32", Floats(kValues));
  EXPECT_THAT(LoadPretrained(path + std::string("\0.npy", 5), PretrainedFormat::kRaw, 3),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("NUL")));
}

TEST_F(PretrainedTest, TruncatedBetweenHeaderAndDataIsDataLoss) {
  const std::string npy = Npy("<f4", "(2, 3)", Floats(kValues));
  const std::string header_only = npy.substr(0, npy.size() - kValues.size() * 4);
  EXPECT_THAT(LoadPretrained(Write("h.npy", header_only), PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("truncated"),
                             HasSubstr(absl::StrCat("byte offset ", header_only.size())))));
  EXPECT_THAT(LoadPretrained(Write("t.npy", npy.substr(0, npy.size() - 5)), PretrainedFormat::kNpy),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(LoadPretrained(Write("t.bin", "2 3\nking " + Floats({1, 2, 3}) + "\nqueen \x01"),
                             PretrainedFormat::kWord2VecBinary),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated in row 1")));
  EXPECT_THAT(
      LoadPretrained(Write("t.txt", "3 2\nking 1 2\nqueen 3 4\n"), PretrainedFormat::kWord2VecText),
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("promises 3 rows")));
  // Too short to hold 3 x 2 numbers at all: refused at the header.
  EXPECT_THAT(LoadPretrained(Write("s.txt", "3 2\nking 1 2\n"), PretrainedFormat::kWord2VecText),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated")));
  EXPECT_THAT(LoadPretrained(Write("t.f32", std::string(10, '\0')), PretrainedFormat::kRaw, 2),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("byte offset 8")));
}

// --- Limits, cancellation, messages -----------------------------------------

TEST_F(PretrainedTest, FileOverMaxBytesIsResourceExhausted) {
  const std::string path = Write("w.f32", Floats(kValues));
  LoadOptions options;
  options.raw_dim = 3;
  options.max_file_bytes = 23;
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kRaw, options),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr(path)));
  options.max_file_bytes = 24;
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kRaw, options), IsOk());
}

TEST_F(PretrainedTest, CancelledLoadStopsBetweenChunks) {
  std::vector<float> big(1 << 20);  // 4 MiB: four chunks
  const std::string path = Write("big.f32", Floats(big));
  int polls = 0;
  LoadOptions options;
  options.raw_dim = 8;
  options.cancelled = [&polls] { return ++polls == 2; };
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kRaw, options),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr(path)));
  EXPECT_EQ(polls, 2);
}

TEST_F(PretrainedTest, FileTruncatedDuringTheLoadIsDataLoss) {
  // What np.save does to a file being read: truncate it, then rewrite it.
  // With the file memory-mapped this was a SIGBUS.
  std::vector<float> big(1 << 20);  // 4 MiB: four chunks
  const std::string path = Write("big.npy", Npy("<f4", "(262144, 4)", Floats(big)));
  int polls = 0;
  LoadOptions options;
  options.cancelled = [&] {
    if (++polls == 3) {
      EXPECT_EQ(::truncate(path.c_str(), 100), 0);
    }
    return false;
  };
  EXPECT_THAT(LoadPretrained(path, PretrainedFormat::kNpy, options),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(path), HasSubstr("changed while it was being read"))));
  // Rewritten to the same size during the load: the mtime gives it away.
  const std::string text = Write("w.txt", "2 3\nking 1.5 -2 0.25\nqueen 3 4 -0.5\n");
  options.cancelled = [&] {
    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
    EXPECT_EQ(::utimensat(AT_FDCWD, text.c_str(), times, 0), 0);
    return false;
  };
  EXPECT_THAT(LoadPretrained(text, PretrainedFormat::kWord2VecText, options),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("changed while it was being read")));
}

TEST_F(PretrainedTest, MessagesNeverQuoteTheFile) {
  const std::string secret = "hunter2";
  auto m = LoadPretrained(Write("bad.txt", "2 3\nking 1 2 3\nqueen 1 " + secret + " 3\n"),
                          PretrainedFormat::kWord2VecText);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument,
                          AllOf(HasSubstr("field 3 is not a number"), HasSubstr("line 3"),
                                HasSubstr("byte offset 23"), Not(HasSubstr(secret)))));
  m = LoadPretrained(Write("bad.bin", secret + " 3\n"), PretrainedFormat::kWord2VecBinary);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(secret))));
  m = LoadPretrained(Write("bad.npy", Npy(secret, "(2, 3)", Floats(kValues))),
                     PretrainedFormat::kNpy);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(secret))));
  m = LoadPretrained(Write("shape.npy", Npy("<f4", "(2, " + secret + ")", Floats(kValues))),
                     PretrainedFormat::kNpy);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(secret))));
  m = LoadPretrained(Write("int.npy", Npy("<i4", "(2, 3)", Floats(kValues))),
                     PretrainedFormat::kNpy);
  EXPECT_THAT(m, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dtype int32")));
}

}  // namespace
}  // namespace embedserve
