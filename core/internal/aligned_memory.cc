#include "core/internal/aligned_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>

namespace embedserve::internal {
namespace {

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

int64_t AlignedAllocationBytes(int64_t bytes) {
  bytes = RoundUp(std::max<int64_t>(bytes, 64), 64);
  return bytes >= kHugePageBytes ? RoundUp(bytes, kHugePageBytes) : bytes;
}

void* AllocateAligned(int64_t bytes) {
  bytes = AlignedAllocationBytes(bytes);
  const bool huge = bytes >= kHugePageBytes;
  void* p = std::aligned_alloc(huge ? kHugePageBytes : 64, static_cast<size_t>(bytes));
  if (p != nullptr && huge) ::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);
  return p;
}

}  // namespace embedserve::internal
