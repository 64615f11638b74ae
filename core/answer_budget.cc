#include "core/answer_budget.h"

#include <algorithm>

namespace embedserve {

bool AddAnswerBytes(int64_t rows, int64_t width, int64_t value_bytes, int64_t max_bytes,
                    int64_t* total) {
  int64_t bytes;
  return rows >= 0 && width >= 0 && !__builtin_mul_overflow(rows, width, &bytes) &&
         !__builtin_mul_overflow(bytes, value_bytes, &bytes) &&
         !__builtin_add_overflow(*total, bytes, total) && *total <= max_bytes;
}

int64_t Float32RowsThatFit(int64_t max_bytes, int64_t used, int64_t width) {
  return (max_bytes - used) / (width * static_cast<int64_t>(sizeof(float)));
}

int64_t ExportRowsPerChunk(int64_t requested, int64_t dim, int64_t max_answer_bytes) {
  const int64_t rows = requested > 0 ? requested : kDefaultExportRows;
  // Keep each chunk well inside the message and answer limits.
  const int64_t chunk_bytes = std::min(kMaxExportChunkBytes, max_answer_bytes);
  const int64_t max_rows =
      std::max<int64_t>(1, chunk_bytes / (dim * static_cast<int64_t>(sizeof(float))));
  return std::min(rows, max_rows);
}

}  // namespace embedserve
