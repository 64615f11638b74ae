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

namespace {

// Three streams at once: the crc32 instruction takes 3 cycles but issues
// every cycle, so a single chain runs at a third of its throughput (a
// restart checks every byte of the log: ~0.2 s per GiB on one chain).
// A run of 3 * kStreamBytes is split into thirds, each CRC'd from a zero
// register, and joined: the register is linear, so
//   R(s, A|B) = R(s, A) * x^(8|B|) mod P  xor  R(0, B).
constexpr size_t kStreamBytes = 8 << 10;
constexpr uint32_t kPoly = 0x82f63b78;  // reflected

// a * b mod P, reflected (bit 31 is x^0).
uint32_t MultModP(uint32_t a, uint32_t b) {
  uint32_t m = uint32_t{1} << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}

// x^(8 * bytes) mod P.
uint32_t ShiftFor(size_t bytes) {
  uint32_t result = uint32_t{1} << 31;  // x^0
  uint32_t square = uint32_t{1} << 30;  // x^1, squared below to x^(2^k)
  for (uint64_t bits = uint64_t{bytes} * 8; bits != 0; bits >>= 1) {
    if (bits & 1) result = MultModP(square, result);
    square = MultModP(square, square);
  }
  return result;
}

}  // namespace

uint32_t Crc32cExtendSse42(uint32_t crc, const char* data, size_t n) {
  uint64_t c = ~crc;
  if (n >= 3 * kStreamBytes) {
    static const uint32_t kShift1 = ShiftFor(kStreamBytes), kShift2 = ShiftFor(2 * kStreamBytes);
    for (; n >= 3 * kStreamBytes; n -= 3 * kStreamBytes, data += 3 * kStreamBytes) {
      uint64_t c1 = 0, c2 = 0;
      for (size_t i = 0; i < kStreamBytes; i += 8) {
        uint64_t v0, v1, v2;
        std::memcpy(&v0, data + i, 8);
        std::memcpy(&v1, data + kStreamBytes + i, 8);
        std::memcpy(&v2, data + 2 * kStreamBytes + i, 8);
        c = _mm_crc32_u64(c, v0);
        c1 = _mm_crc32_u64(c1, v1);
        c2 = _mm_crc32_u64(c2, v2);
      }
      c = MultModP(kShift2, static_cast<uint32_t>(c)) ^
          MultModP(kShift1, static_cast<uint32_t>(c1)) ^ static_cast<uint32_t>(c2);
    }
  }
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
