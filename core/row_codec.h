#ifndef EMBEDSERVE_CORE_ROW_CODEC_H_
#define EMBEDSERVE_CORE_ROW_CODEC_H_

// Compact row encodings (as FBGEMM's): a row of `dim` floats stored as
//   kFloat16:     dim IEEE binary16 values         x = half(h)
//   kBFloat16:    dim bfloat16 values              x = float(bits << 16)
//   kInt8Rowwise: float scale, float bias, then dim uint8 q
//                 x = scale * q + bias; encoding takes bias = min(row),
//                 scale = (max - min) / 255, q = round((x - bias) / scale)
// Encoding rounds to nearest (even). Worst-case error of a decoded value x':
//   kFloat16 |x' - x| <= 2^-11 |x| (normal range), kBFloat16 <= 2^-8 |x|,
//   kInt8Rowwise <= scale / 2 = (max - min) / 510 of its row.

#include <cstdint>

#include "base/float16.h"  // the scalar conversions the codec uses
#include "core/gather.h"

namespace embedserve {

// Bytes one row takes in memory: a multiple of 64 (16 for int8 rows), and
// large enough that a 16-lane vector load at any value index < dim stays
// inside the row.
int64_t CompactRowStride(RowType type, int64_t dim);

void EncodeRow(RowType type, const float* src, int64_t dim, uint8_t* dst);
void DecodeRow(RowType type, const uint8_t* src, int64_t dim, float* dst);

// The index of the first of `dim` values that is not finite, or would not be
// once stored as `type` (float16 overflows past 65504, bfloat16 near
// FLT_MAX); -1 if all are fine. int8 rows encode every finite row finitely.
int64_t FirstUnencodable(RowType type, const float* src, int64_t dim);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_ROW_CODEC_H_
