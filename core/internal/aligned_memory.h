#ifndef EMBEDSERVE_CORE_INTERNAL_ALIGNED_MEMORY_H_
#define EMBEDSERVE_CORE_INTERNAL_ALIGNED_MEMORY_H_

// Cache-line aligned memory, on transparent huge pages from one huge page
// up: the allocation the dynamic tables' row chunks and the id index share,
// and the sizes dense tables' shards (ShardedBuffer) are allocated in.

#include <cstdint>

namespace embedserve::internal {

inline constexpr int64_t kHugePageBytes = int64_t{2} << 20;

// What AllocateAligned(bytes) allocates: at least 64 bytes, a multiple of
// 64 (aligned_alloc's contract: a multiple of the alignment), and from
// kHugePageBytes up a multiple of kHugePageBytes.
int64_t AlignedAllocationBytes(int64_t bytes);

// AlignedAllocationBytes(bytes) uninitialised bytes, 64-byte aligned, and
// from kHugePageBytes up huge-page aligned and advised as huge pages (best
// effort); nullptr without memory. Free with std::free.
void* AllocateAligned(int64_t bytes);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_ALIGNED_MEMORY_H_
