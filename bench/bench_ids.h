#ifndef EMBEDSERVE_BENCH_BENCH_IDS_H_
#define EMBEDSERVE_BENCH_BENCH_IDS_H_

// The benchmark's ids: id[i] = SplitMix64(seed + i) % num_rows. The same
// function is in bench/torch_bench.py, so both sides gather exactly the same
// rows.

#include <cstdint>
#include <vector>

namespace embedserve::bench {

inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::vector<int64_t> UniformIds(int64_t n, int64_t num_rows, uint64_t seed) {
  std::vector<int64_t> ids(n);
  for (int64_t i = 0; i < n; ++i) {
    ids[i] = static_cast<int64_t>(SplitMix64(seed + static_cast<uint64_t>(i)) %
                                  static_cast<uint64_t>(num_rows));
  }
  return ids;
}

}  // namespace embedserve::bench

#endif  // EMBEDSERVE_BENCH_BENCH_IDS_H_
