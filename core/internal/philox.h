#ifndef EMBEDSERVE_CORE_INTERNAL_PHILOX_H_
#define EMBEDSERVE_CORE_INTERNAL_PHILOX_H_

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2,
// 3", SC 2011; Random123's philox4x32 with 10 rounds, the generator of
// cuRAND's Philox4_32_10 and of torch's CUDA RNG): a bijection of a 128-bit
// counter under a 64-bit key. A counter-based generator needs no state: the
// value at a counter is computed directly, so any row of a table can be
// recomputed alone and rows can be filled in any order on any thread.
//
// One round, with (hi, lo) the 64-bit product of two 32-bit words:
//   (hi0, lo0) = M0 * c[0]      (hi1, lo1) = M1 * c[2]
//   c = { hi1 ^ c[1] ^ k[0],  lo1,  hi0 ^ c[3] ^ k[1],  lo0 }
// and the key is bumped by (W0, W1) before every round but the first.
// Known answers (Random123 kat_vectors) are pinned in
// tests/core/initializer_test.cc.

#include <array>
#include <cstdint>

namespace embedserve::internal {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
inline constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;  // golden ratio
inline constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;  // sqrt(3) - 1
inline constexpr int kPhiloxRounds = 10;

using PhiloxWords = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// The round keys of `key`: round r uses keys[r] = key + r * (W0, W1).
inline std::array<PhiloxKey, kPhiloxRounds> PhiloxRoundKeys(PhiloxKey key) {
  std::array<PhiloxKey, kPhiloxRounds> keys;
  for (int r = 0; r < kPhiloxRounds; ++r) {
    keys[r] = key;
    key[0] += kPhiloxW0;
    key[1] += kPhiloxW1;
  }
  return keys;
}

// Philox4x32-10 of `ctr` under `key` (the scalar reference).
inline PhiloxWords Philox4x32(PhiloxWords c, PhiloxKey key) {
  for (int r = 0; r < kPhiloxRounds; ++r) {
    const uint64_t p0 = uint64_t{kPhiloxM0} * c[0];
    const uint64_t p1 = uint64_t{kPhiloxM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ key[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ key[1], static_cast<uint32_t>(p0)};
    key[0] += kPhiloxW0;
    key[1] += kPhiloxW1;
  }
  return c;
}

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_PHILOX_H_
