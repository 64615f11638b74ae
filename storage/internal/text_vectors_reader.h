#ifndef EMBEDSERVE_STORAGE_INTERNAL_TEXT_VECTORS_READER_H_
#define EMBEDSERVE_STORAGE_INTERNAL_TEXT_VECTORS_READER_H_

// Word vectors as text, one line per row: "word v1 .. vD", fields separated
// by one or more spaces, trailing whitespace (a "\r" included) ignored, blank
// lines skipped. word2vec's text format puts a "rows dim" line first; GloVe's
// has none and takes D from its first row. One parser serves both.
// Thread-safe: calls share nothing.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/internal/safe_file.h"
#include "storage/pretrained.h"

namespace embedserve::internal {

// The word2vec header "rows dim" (text and binary formats alike): exactly two
// space-separated integers. False when `line` is anything else (then *rows
// and *dim are unspecified).
bool ParseWord2VecHeader(absl::string_view line, int64_t* rows, int64_t* dim);

// Reads a whole word2vec text file from `in` (positioned at its start).
// InvalidArgument (naming the byte offset and line) for a bad header, a
// header's rows or dim out of range (or rows x dim overflowing), a row with a
// number of fields other than 1 + dim, or a field that is not a number;
// DataLoss when the file has more or fewer rows than the header promises (an
// empty file included), "truncated" when the header's values cannot fit in
// the rest of the file (at least two bytes a value); DataLoss or Cancelled
// from `in`.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadWord2VecText(SafeFile& in);

// Reads a whole GloVe file from `in`: as LoadWord2VecText with no header; the
// first row sets the dim (at most kMaxEmbeddingDim); InvalidArgument "no
// vectors" for a file without a row.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadGloveText(SafeFile& in);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_TEXT_VECTORS_READER_H_
