#include "core/internal/sharded_buffer.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kHugePageBytes = int64_t{2} << 20;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

}  // namespace

absl::StatusOr<ShardedBuffer> ShardedBuffer::Allocate(int64_t rows, int64_t stride, int shard_shift,
                                                      absl::string_view what) {
  ShardedBuffer b;
  b.shift_ = shard_shift;
  b.mask_ = (int64_t{1} << shard_shift) - 1;
  b.stride_ = stride;
  const int64_t per_shard = int64_t{1} << shard_shift;
  for (int64_t first = 0; first < rows; first += per_shard) {
    const int64_t n = std::min(per_shard, rows - first);
    int64_t bytes = RoundUp(n * stride * static_cast<int64_t>(sizeof(float)), 64);
    const bool huge = bytes >= kHugePageBytes;
    if (huge) bytes = RoundUp(bytes, kHugePageBytes);
    void* p = std::aligned_alloc(huge ? kHugePageBytes : 64, static_cast<size_t>(bytes));
    if (p == nullptr) {
      return absl::ResourceExhaustedError(
          absl::StrCat("cannot allocate ", bytes, " bytes for a shard of ", what));
    }
    if (huge) ::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);  // best effort
    std::memset(p, 0, static_cast<size_t>(bytes));
    b.shards_.emplace_back(static_cast<float*>(p));
    b.ptrs_.push_back(static_cast<const float*>(p));
    b.bytes_ += bytes;
  }
  return b;
}

}  // namespace embedserve::internal
