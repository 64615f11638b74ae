#ifndef EMBEDSERVE_CORE_INTERNAL_GATHER_KERNELS_H_
#define EMBEDSERVE_CORE_INTERNAL_GATHER_KERNELS_H_

// Per-ISA kernel entry points; contracts are GatherFn / PooledFn in
// core/gather.h. Only gather_avx2.cc and gather_avx512.cc are compiled with
// ISA flags; callers must check the CPU first (core/gather.cc does).

#include <cstdint>

#include "core/gather.h"
#include "core/internal/prefetch.h"

namespace embedserve::internal {

// The kernels' prefetch block (InPrefetchedBlocks, prefetch.h): a gather
// prefetches the next this-many rows in a loop of their own, then copies
// this many. Random rows come from DRAM (~100 ns); at ~5-10 ns per 256-byte
// row this keeps enough misses in flight to cover the latency. (Pooling
// still prefetches this many ids ahead, one at a time.)
inline constexpr int64_t kPrefetchDistance = 16;
// Cache lines of one row that are prefetched at most (large rows stream).
inline constexpr int64_t kMaxPrefetchLines = 8;

inline void PrefetchRow(const RowView& t, int64_t id) {
  if (static_cast<uint64_t>(id) >= static_cast<uint64_t>(t.num_rows)) return;
  const char* p = reinterpret_cast<const char*>(t.Row(id));
  const int64_t bytes = t.dim * static_cast<int64_t>(sizeof(float));
  for (int64_t off = 0, line = 0; off < bytes && line < kMaxPrefetchLines; off += 64, ++line) {
    PrefetchNta(p + off);
  }
}

inline bool IdInRange(const RowView& t, int64_t id) {
  return static_cast<uint64_t>(id) < static_cast<uint64_t>(t.num_rows);
}

int64_t CompactGatherScalar(const CompactRowView& t, const int64_t* ids, int64_t n, float* out);
int64_t CompactPooledScalar(const CompactRowView& t, const BagArgs& a, float* out);
int64_t CompactGatherAvx2(const CompactRowView& t, const int64_t* ids, int64_t n, float* out);
int64_t CompactPooledAvx2(const CompactRowView& t, const BagArgs& a, float* out);
int64_t CompactGatherAvx512(const CompactRowView& t, const int64_t* ids, int64_t n, float* out);
int64_t CompactPooledAvx512(const CompactRowView& t, const BagArgs& a, float* out);
int64_t GatherScalar(const RowView& t, const int64_t* ids, int64_t n, float* out);
int64_t PooledScalar(const RowView& t, const BagArgs& a, float* out);
int64_t GatherAvx2(const RowView& t, const int64_t* ids, int64_t n, float* out);
int64_t PooledAvx2(const RowView& t, const BagArgs& a, float* out);
int64_t GatherAvx512(const RowView& t, const int64_t* ids, int64_t n, float* out);
int64_t PooledAvx512(const RowView& t, const BagArgs& a, float* out);
void ToHalfScalar(const float* in, int64_t n, uint16_t* out);
void ToHalfAvx2(const float* in, int64_t n, uint16_t* out);
void ToHalfAvx512(const float* in, int64_t n, uint16_t* out);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_GATHER_KERNELS_H_
