#ifndef EMBEDSERVE_STORAGE_INTERNAL_WORD2VEC_BINARY_READER_H_
#define EMBEDSERVE_STORAGE_INTERNAL_WORD2VEC_BINARY_READER_H_

// word2vec's binary format: a text header line "rows dim\n", then `rows`
// times: a word, a space, `dim` little-endian float32 values and (as the
// reference tool writes it) an optional "\n". Spaces and newlines before a
// word are skipped. Thread-safe: calls share nothing.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "storage/internal/safe_file.h"
#include "storage/pretrained.h"

namespace embedserve::internal {

// Longest header line ("rows dim": two int64s and a space).
inline constexpr int64_t kMaxWord2VecHeaderBytes = 256;
// Longest word (the reference tool's limit is 50).
inline constexpr int64_t kMaxWordBytes = 64 << 10;

// Reads a whole word2vec binary file from `in` (positioned at its start).
// InvalidArgument for a header that is not "rows dim" or is longer than
// kMaxWord2VecHeaderBytes, rows or dim out of range (CheckedMatrixBytes), a
// word longer than kMaxWordBytes; DataLoss "truncated" when the file cannot
// hold rows x dim floats or ends inside a row; DataLoss or Cancelled from
// `in`. The values are allocated only once the header is known to fit.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadWord2VecBinary(SafeFile& in);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_WORD2VEC_BINARY_READER_H_
