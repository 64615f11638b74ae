#include "storage/internal/text_vectors_reader.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "core/table_spec.h"

namespace embedserve::internal {
namespace {

// The one tokenizer of both word2vec formats and GloVe: fields separated by
// runs of spaces.
std::vector<absl::string_view> SplitFields(absl::string_view line) {
  return absl::StrSplit(line, ' ', absl::SkipEmpty());
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadText(SafeFile& in, bool has_header) {
  int64_t line_no = 0, expect_rows = -1, dim = 0;
  std::vector<float> values;
  std::vector<std::string> words;
  while (in.remaining() > 0) {
    const int64_t line_start = in.offset();
    bool found;
    ASSIGN_OR_RETURN(absl::string_view line, in.Until('\n', in.size(), "a line", &found));
    ++line_no;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty()) continue;
    if (has_header && expect_rows < 0) {
      if (!ParseWord2VecHeader(line, &expect_rows, &dim)) {
        return FormatErrorAt(in.path(), line_start, "expected a word2vec header 'rows dim'",
                             line_no);
      }
      // Each value takes at least two bytes ("0 "): a header the rest of
      // the file cannot hold is refused before anything is reserved.
      RETURN_IF_ERROR(CheckedMatrixBytes(in.path(), line_start, "rows in the header", expect_rows,
                                         "dim in the header", dim, 2, in.remaining())
                          .status());
      values.reserve(expect_rows * dim);
      continue;
    }
    const std::vector<absl::string_view> parts = SplitFields(line);
    if (dim == 0) {
      dim = static_cast<int64_t>(parts.size()) - 1;
      if (dim > kMaxEmbeddingDim) {
        return FormatErrorAt(in.path(), line_start,
                             absl::StrCat("a line has more than ", kMaxEmbeddingDim, " numbers"),
                             line_no);
      }
    }
    if (static_cast<int64_t>(parts.size()) != dim + 1 || dim <= 0) {
      return FormatErrorAt(
          in.path(), line_start,
          absl::StrCat("expected a word and ", dim, " numbers, got ", parts.size(), " fields"),
          line_no);
    }
    if (has_header && static_cast<int64_t>(words.size()) == expect_rows) {
      return absl::DataLossError(absl::StrCat(in.path(), ": the header promises ", expect_rows,
                                              " rows, the file has more (byte offset ", line_start,
                                              ", line ", line_no, ")"));
    }
    words.emplace_back(parts[0]);
    for (int64_t d = 0; d < dim; ++d) {
      float v;
      if (!absl::SimpleAtof(parts[d + 1], &v)) {
        return FormatErrorAt(in.path(), line_start + (parts[d + 1].data() - line.data()),
                             absl::StrCat("field ", d + 2, " is not a number"), line_no);
      }
      values.push_back(v);
    }
  }
  const int64_t rows = static_cast<int64_t>(words.size());
  if (has_header && rows != expect_rows) {
    return absl::DataLossError(absl::StrCat(in.path(), ": the header promises ", expect_rows,
                                            " rows, the file has ", rows, " (byte offset ",
                                            in.size(), ")"));
  }
  if (rows == 0) return FormatErrorAt(in.path(), 0, "no vectors");
  return std::make_unique<PretrainedMatrix>(rows, dim, std::move(values), std::move(words));
}

}  // namespace

bool ParseWord2VecHeader(absl::string_view line, int64_t* rows, int64_t* dim) {
  const std::vector<absl::string_view> parts = SplitFields(line);
  return parts.size() == 2 && absl::SimpleAtoi(parts[0], rows) && absl::SimpleAtoi(parts[1], dim);
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadWord2VecText(SafeFile& in) {
  return LoadText(in, /*has_header=*/true);
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadGloveText(SafeFile& in) {
  return LoadText(in, /*has_header=*/false);
}

}  // namespace embedserve::internal
