#include "storage/internal/word2vec_binary_reader.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/text_vectors_reader.h"

namespace embedserve::internal {

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadWord2VecBinary(SafeFile& in) {
  bool found;
  ASSIGN_OR_RETURN(absl::string_view header,
                   in.Until('\n', kMaxWord2VecHeaderBytes, "the header line", &found));
  int64_t rows, dim;
  if (!found || !ParseWord2VecHeader(header, &rows, &dim)) {
    return FormatErrorAt(in.path(), 0, "expected a word2vec header 'rows dim'");
  }
  ASSIGN_OR_RETURN(const int64_t bytes,
                   CheckedMatrixBytes(in.path(), 0, "rows in the header", rows, "dim in the header",
                                      dim, sizeof(float), in.remaining()));
  std::vector<float> values(bytes / sizeof(float));
  std::vector<std::string> words;
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  for (int64_t r = 0; r < rows; ++r) {
    while (true) {
      ASSIGN_OR_RETURN(const int c, in.Peek());
      if (c != '\n' && c != ' ') break;
      in.Skip();
    }
    const int64_t word_start = in.offset();
    const auto truncated = [&] {
      return absl::DataLossError(absl::StrCat(in.path(), ": truncated in row ", r, " (byte offset ",
                                              word_start, "): ", rows, " rows promised"));
    };
    ASSIGN_OR_RETURN(absl::string_view word, in.Until(' ', kMaxWordBytes, "a word", &found));
    if (!found) return truncated();
    words.emplace_back(word);
    const absl::Status s = in.Read(values.data() + r * dim, row_bytes, "a row");
    if (absl::IsDataLoss(s) && in.remaining() < row_bytes) return truncated();
    RETURN_IF_ERROR(s);
  }
  return std::make_unique<PretrainedMatrix>(rows, dim, std::move(values), std::move(words));
}

}  // namespace embedserve::internal
