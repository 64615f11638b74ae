#ifndef EMBEDSERVE_CORE_ANSWER_BUDGET_H_
#define EMBEDSERVE_CORE_ANSWER_BUDGET_H_

// How big an answer may grow: the byte arithmetic that sizes a lookup's,
// an optimizer-state read's and an export chunk's answer before anything is
// read or allocated. Every factor comes from a request (ids, bags, shapes),
// so every step is overflow-checked. Pure functions, thread-safe. The
// caller words the error (it knows which limit, and which flag sets it).

#include <cstdint>

namespace embedserve {

// Adds rows * width values of `value_bytes` each to *total. False if a
// factor is negative, a product or the sum overflows, or *total then
// exceeds `max_bytes`; *total is unspecified after false.
bool AddAnswerBytes(int64_t rows, int64_t width, int64_t value_bytes, int64_t max_bytes,
                    int64_t* total);

// Rows of `width` float32 values that fit in what is left of `max_bytes`
// after `used` bytes: the most bags a pooled query may ask for (checked
// before its bag bounds are built: a 30-byte request can ask for 500 M
// empty bags). REQUIRES: width > 0, 0 <= used <= max_bytes.
int64_t Float32RowsThatFit(int64_t max_bytes, int64_t used, int64_t width);

// Rows per ExportTable chunk: `requested` (<= 0: kDefaultExportRows), at
// most what keeps a chunk of `dim` float32 values within
// min(kMaxExportChunkBytes, max_answer_bytes), and at least 1.
// REQUIRES: dim > 0.
inline constexpr int64_t kDefaultExportRows = 4096;
inline constexpr int64_t kMaxExportChunkBytes = int64_t{16} << 20;
int64_t ExportRowsPerChunk(int64_t requested, int64_t dim, int64_t max_answer_bytes);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_ANSWER_BUDGET_H_
