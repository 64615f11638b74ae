#ifndef EMBEDSERVE_SERVER_INTERNAL_SHARDED_COUNTERS_H_
#define EMBEDSERVE_SERVER_INTERNAL_SHARDED_COUNTERS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace embedserve::internal {

// A fixed array of monotonic counters ("cells") that many threads add to
// without sharing cache lines: there are several copies (shards) of the
// array, each starting on its own cache line, and a thread always adds to
// the shard it was given the first time it counted (round robin over
// threads). A read sums the cell over all shards.
//
// Cost of Add: one relaxed atomic add to a line that, with at least as many
// shards as busy threads, no other core writes: no cache-line ping-pong
// between the lookup threads, unlike one global atomic. Past that many
// threads, a few share a shard; counts stay exact (the adds are atomic).
//
// Sum is not a snapshot across cells or shards: a cell read while adds go
// on is some value between the one before and the one after them, and never
// goes backwards. Thread-safe.
class ShardedCounters {
 public:
  // `shards` 0 = twice the hardware threads rounded up to a power of two,
  // between 4 and 64.
  explicit ShardedCounters(size_t cells, size_t shards = 0);

  size_t cells() const { return cells_; }
  size_t shards() const { return shard_mask_ + 1; }

  // REQUIRES: cell < cells().
  void Add(size_t cell, uint64_t n) {
    Line& line = lines_[(ThreadShard() & shard_mask_) * lines_per_shard_ + cell / kPerLine];
    line.cell[cell % kPerLine].fetch_add(n, std::memory_order_relaxed);
  }
  uint64_t Sum(size_t cell) const;

 private:
  static constexpr size_t kPerLine = 64 / sizeof(uint64_t);
  struct alignas(64) Line {
    std::atomic<uint64_t> cell[kPerLine];
  };
  static_assert(sizeof(Line) == 64);

  // This thread's shard number (all arrays use the same one), given out
  // round robin on a thread's first call. The thread_local is constant-
  // initialized, so reading it is one load (no TLS init guard).
  static size_t ThreadShard() {
    static thread_local size_t shard = kNoShard;
    if (__builtin_expect(shard == kNoShard, 0)) {
      shard = next_shard_.fetch_add(1, std::memory_order_relaxed) & ~kNoShard;
    }
    return shard;
  }
  static constexpr size_t kNoShard = ~(~size_t{0} >> 1);  // the top bit
  static std::atomic<size_t> next_shard_;

  size_t cells_;
  size_t lines_per_shard_;
  size_t shard_mask_;
  std::unique_ptr<Line[]> lines_;  // shards() * lines_per_shard_, zeroed
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_SERVER_INTERNAL_SHARDED_COUNTERS_H_
