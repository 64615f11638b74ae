#ifndef EMBEDSERVE_STORAGE_INTERNAL_RAW_READER_H_
#define EMBEDSERVE_STORAGE_INTERNAL_RAW_READER_H_

// Raw files: little-endian float32 values, row-major, with no header; the
// row width comes from the caller. Thread-safe: calls share nothing.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "storage/internal/safe_file.h"
#include "storage/pretrained.h"

namespace embedserve::internal {

// Reads the whole of `in` (positioned at its start) as rows of `raw_dim`
// floats. InvalidArgument when raw_dim is not in [1, kMaxEmbeddingDim] or the
// row count is above kMaxNumEmbeddings; DataLoss when the file is empty or
// not a whole number of rows; DataLoss or Cancelled from `in`. Words are
// empty.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadRaw(SafeFile& in, int64_t raw_dim);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_RAW_READER_H_
