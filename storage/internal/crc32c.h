#ifndef EMBEDSERVE_STORAGE_INTERNAL_CRC32C_H_
#define EMBEDSERVE_STORAGE_INTERNAL_CRC32C_H_

// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, initial and final
// XOR 0xFFFFFFFF) as iSCSI (RFC 3720) and leveldb/RocksDB use it:
// Crc32c("123456789") == 0xE3069283. The update log frames its records with
// it (storage/FORMAT.md, "The update log").
//
// Two levels, the same function: a portable slicing-by-8 loop (always built:
// the fallback and the tests' oracle) and the SSE4.2 crc32 instruction
// (crc32c_sse42.cc, the only file compiled with -msse4.2), chosen once from
// the CPU on first use. Pure functions, thread-safe.

#include <cstddef>
#include <cstdint>

#include "absl/strings/string_view.h"

namespace embedserve::internal {

// The CRC of the bytes whose CRC is `crc` followed by data[0, n):
// Crc32cExtend(Crc32c(a), b, n) == Crc32c(a + b). Dispatched.
uint32_t Crc32cExtend(uint32_t crc, const char* data, size_t n);

inline uint32_t Crc32c(absl::string_view data) { return Crc32cExtend(0, data.data(), data.size()); }

// The levels, for tests and benchmarks.
uint32_t Crc32cExtendPortable(uint32_t crc, const char* data, size_t n);
// Whether this CPU has SSE4.2 (and this build the SSE4.2 level).
bool Crc32cHasSse42();
// REQUIRES: Crc32cHasSse42().
uint32_t Crc32cExtendSse42(uint32_t crc, const char* data, size_t n);

// A CRC stored next to the data it covers is masked (as leveldb does), so
// that the CRC of a string holding embedded CRCs is not degenerate.
inline uint32_t MaskCrc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}
inline uint32_t UnmaskCrc32c(uint32_t masked) {
  const uint32_t rot = masked - 0xa282ead8u;
  return (rot >> 17) | (rot << 15);
}

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_CRC32C_H_
