// The word-vector text parser shared by word2vec text and GloVe, its
// "rows dim" header parser (shared with the binary format), and the
// word2vec binary reader's limits.
#include "storage/internal/text_vectors_reader.h"

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/table_spec.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/internal/safe_file.h"
#include "storage/internal/word2vec_binary_reader.h"
#include "tests/testing/load_bytes.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::LoadBytes;
using ::embedserve::testing::PretrainedReader;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(ParseWord2VecHeaderTest, TwoSpaceSeparatedIntegersOnly) {
  int64_t rows = 0, dim = 0;
  EXPECT_TRUE(ParseWord2VecHeader("3 4", &rows, &dim));
  EXPECT_EQ(rows, 3);
  EXPECT_EQ(dim, 4);
  EXPECT_TRUE(ParseWord2VecHeader("  10   300 ", &rows, &dim));
  EXPECT_EQ(rows, 10);
  EXPECT_EQ(dim, 300);
  EXPECT_TRUE(ParseWord2VecHeader("4611686018427387904 -1", &rows, &dim));  // ranges: later
  EXPECT_EQ(rows, int64_t{1} << 62);
  for (const char* line : {"", "3", "3 4 5", "a 4", "3 4.0", "3 99999999999999999999"}) {
    EXPECT_FALSE(ParseWord2VecHeader(line, &rows, &dim)) << line;
  }
}

class TextVectorsTest : public ::testing::Test {
 protected:
  absl::StatusOr<std::unique_ptr<PretrainedMatrix>> Load(PretrainedReader reader,
                                                         const std::string& bytes) {
    return LoadBytes(dir_, reader, bytes);
  }

  TempDir dir_{"text_vectors_reader_test"};
};

TEST_F(TextVectorsTest, RunsOfSpacesCrlfAndBlankLinesAreTolerated) {
  auto m = Load(LoadWord2VecText, "\n2  2\r\n\nking   1 -2 \r\n  queen 0.5 3e2\n\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT((*m)->words(), ElementsAre("king", "queen"));
  EXPECT_THAT((*m)->values(), ElementsAre(1.0f, -2.0f, 0.5f, 300.0f));
  m = Load(LoadGloveText, "king   1 -2 \r\n\n  queen 0.5 3e2");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->dim(), 2);
  EXPECT_THAT((*m)->values(), ElementsAre(1.0f, -2.0f, 0.5f, 300.0f));
}

TEST_F(TextVectorsTest, ALineLongerThanAReadChunkIsOneRow) {
  // kMaxEmbeddingDim fields of 18 bytes: over a MiB on one line.
  std::string line = "w";
  for (int64_t d = 0; d < kMaxEmbeddingDim; ++d) line += " 1.000000000000000";
  ASSERT_GT(static_cast<int64_t>(line.size()), kChunkBytes);
  auto m = Load(LoadGloveText, line + "\n" + line + "\n");
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ((*m)->rows(), 2);
  EXPECT_EQ((*m)->dim(), kMaxEmbeddingDim);
  EXPECT_EQ((*m)->values().back(), 1.0f);
  EXPECT_THAT(Load(LoadGloveText, line + " 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(absl::StrCat("more than ", kMaxEmbeddingDim, " numbers"))));
}

TEST_F(TextVectorsTest, ErrorsNameTheLineAndByteOffset) {
  EXPECT_THAT(
      Load(LoadGloveText, "a 1 2\nb 1 x\n"),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("field 3 is not a number"), HasSubstr("(byte offset 10, line 2)"))));
  EXPECT_THAT(Load(LoadGloveText, "a 1 2\n\nb 1\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("expected a word and 2 numbers, got 2 fields"),
                             HasSubstr("line 3"))));
  EXPECT_THAT(Load(LoadGloveText, "\n \r\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no vectors")));
  EXPECT_THAT(Load(LoadWord2VecText, "1 2 3\na 1 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("expected a word2vec header"), HasSubstr("line 1"))));
  EXPECT_THAT(
      Load(LoadWord2VecText, "1 2\na 1 2\nb 3 4\n"),
      StatusIs(absl::StatusCode::kDataLoss,
               AllOf(HasSubstr("promises 1 rows, the file has more"), HasSubstr("line 3"))));
}

TEST_F(TextVectorsTest, Word2VecBinaryLimitsTheHeaderAndWords) {
  const float v[2] = {1.5f, -2.0f};
  const std::string row(reinterpret_cast<const char*>(v), sizeof(v));
  // Rows with and without the newline after them; spaces before a word.
  auto m = Load(LoadWord2VecBinary, "3 2\na " + row + "\n  b " + row + "c " + row);
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT((*m)->words(), ElementsAre("a", "b", "c"));
  EXPECT_THAT(
      Load(LoadWord2VecBinary, std::string(kMaxWord2VecHeaderBytes - 2, ' ') + "1 2\na " + row),
      StatusIs(absl::StatusCode::kInvalidArgument,
               HasSubstr("the header line is longer than 256 bytes")));
  EXPECT_THAT(
      Load(LoadWord2VecBinary, "1 2\n" + std::string(kMaxWordBytes + 1, 'w') + " " + row),
      StatusIs(absl::StatusCode::kInvalidArgument,
               AllOf(HasSubstr("a word is longer than 65536 bytes"), HasSubstr("byte offset 4"))));
  EXPECT_THAT(Load(LoadWord2VecBinary, "2 2\na " + row + "\nb" + row),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("truncated in row 1")));
}

}  // namespace
}  // namespace embedserve::internal
