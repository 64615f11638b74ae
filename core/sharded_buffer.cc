#include "core/internal/sharded_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "core/internal/aligned_memory.h"

namespace embedserve::internal {

void ShardedBuffer::FreeDeleter::operator()(float* p) const {
  if (mapped > 0) {
    ::munmap(p, static_cast<size_t>(mapped));
  } else {
    std::free(p);
  }
}

absl::StatusOr<ShardedBuffer> ShardedBuffer::Allocate(int64_t rows, int64_t stride, int shard_shift,
                                                      absl::string_view what) {
  ShardedBuffer b;
  b.shift_ = shard_shift;
  b.mask_ = (int64_t{1} << shard_shift) - 1;
  b.stride_ = stride;
  const int64_t per_shard = int64_t{1} << shard_shift;
  for (int64_t first = 0; first < rows; first += per_shard) {
    const int64_t n = std::min(per_shard, rows - first);
    const int64_t bytes = AlignedAllocationBytes(n * stride * static_cast<int64_t>(sizeof(float)));
    const bool huge = bytes >= kHugePageBytes;
    void* p = nullptr;
    if (huge) {
      // Fresh anonymous pages are zero already: no memset (it cost a pass
      // over every new table), and the first touch is the fill's. Mapped
      // with 2 MiB of slack so that the shard starts on a huge page.
      const size_t mapped = static_cast<size_t>(bytes + kHugePageBytes);
      void* m = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (m != MAP_FAILED) {
        const uintptr_t start = reinterpret_cast<uintptr_t>(m);
        const uintptr_t aligned = (start + kHugePageBytes - 1) & ~uintptr_t{kHugePageBytes - 1};
        if (aligned > start) ::munmap(m, aligned - start);
        const uintptr_t end = start + mapped, used = aligned + static_cast<uintptr_t>(bytes);
        if (end > used) ::munmap(reinterpret_cast<void*>(used), end - used);
        p = reinterpret_cast<void*>(aligned);
        ::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);  // best effort
      }
    } else {
      p = AllocateAligned(bytes);
      if (p != nullptr) std::memset(p, 0, static_cast<size_t>(bytes));
    }
    if (p == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes for a shard of ", what));
    }
    b.shards_.emplace_back(static_cast<float*>(p), FreeDeleter{huge ? bytes : 0});
    b.ptrs_.push_back(static_cast<const float*>(p));
    b.bytes_ += bytes;
  }
  return b;
}

}  // namespace embedserve::internal
