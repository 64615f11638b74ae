#include "server/internal/sharded_counters.h"

#include <algorithm>
#include <thread>

namespace embedserve::internal {

std::atomic<size_t> ShardedCounters::next_shard_{0};

ShardedCounters::ShardedCounters(size_t cells, size_t shards) : cells_(cells) {
  lines_per_shard_ = std::max<size_t>(1, (cells + kPerLine - 1) / kPerLine);
  if (shards == 0) shards = std::clamp<size_t>(2 * std::thread::hardware_concurrency(), 4, 64);
  size_t pow2 = 1;
  while (pow2 < shards) pow2 <<= 1;
  shard_mask_ = pow2 - 1;
  const size_t lines = pow2 * lines_per_shard_;
  lines_ = std::make_unique<Line[]>(lines);  // aligned new (alignas(64))
  for (size_t i = 0; i < lines; ++i) {
    for (auto& c : lines_[i].cell) c.store(0, std::memory_order_relaxed);
  }
}

uint64_t ShardedCounters::Sum(size_t cell) const {
  uint64_t sum = 0;
  const size_t line = cell / kPerLine, slot = cell % kPerLine;
  for (size_t s = 0; s <= shard_mask_; ++s) {
    sum += lines_[s * lines_per_shard_ + line].cell[slot].load(std::memory_order_relaxed);
  }
  return sum;
}

}  // namespace embedserve::internal
