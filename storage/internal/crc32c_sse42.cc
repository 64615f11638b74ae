// The SSE4.2 level of crc32c.h: the only file compiled with -msse4.2, called
// only after Crc32cHasSse42() said yes.
#include <cstring>

#include "storage/internal/crc32c.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace embedserve::internal {

#if defined(__x86_64__)

bool Crc32cHasSse42() { return __builtin_cpu_supports("sse4.2"); }

uint32_t Crc32cExtendSse42(uint32_t crc, const char* data, size_t n) {
  uint64_t c = ~crc;
  for (; n >= 8; n -= 8, data += 8) {
    uint64_t v;
    std::memcpy(&v, data, 8);
    c = _mm_crc32_u64(c, v);
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  for (; n > 0; --n, ++data) c32 = _mm_crc32_u8(c32, static_cast<unsigned char>(*data));
  return ~c32;
}

#else  // no SSE4.2 level on this architecture

bool Crc32cHasSse42() { return false; }
uint32_t Crc32cExtendSse42(uint32_t crc, const char* data, size_t n) {
  return Crc32cExtendPortable(crc, data, n);
}

#endif

}  // namespace embedserve::internal
