#ifndef EMBEDSERVE_BASE_FLOAT16_H_
#define EMBEDSERVE_BASE_FLOAT16_H_

// Scalar conversions between float32 and the 16-bit float formats, shared by
// the engine (row codec, float16 answers) and the clients (decoding them).
//   FloatToHalf:     IEEE binary16, round to nearest even; past 65504 -> +-inf;
//                    NaN stays NaN (quiet)
//   FloatToBFloat16: the top 16 bits, round to nearest even; NaN stays NaN
// The reverse conversions are exact.

#include <cstdint>

namespace embedserve {

float HalfToFloat(uint16_t h);
uint16_t FloatToHalf(float f);
float BFloat16ToFloat(uint16_t b);
uint16_t FloatToBFloat16(float f);

}  // namespace embedserve

#endif  // EMBEDSERVE_BASE_FLOAT16_H_
