#include "core/internal/row_seqlock.h"

#include <thread>

namespace embedserve::internal {

void RowSeqlock::BeginWrite(int64_t slot) {
  std::atomic<uint32_t>& seq = Stripe(slot);
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  // The odd count is visible before any store to the row.
  std::atomic_thread_fence(std::memory_order_release);
}

void RowSeqlock::EndWrite(int64_t slot) {
  std::atomic<uint32_t>& seq = Stripe(slot);
  seq.store(seq.load(std::memory_order_relaxed) + 1, std::memory_order_release);
}

void RowSeqlock::Yield() { std::this_thread::yield(); }

}  // namespace embedserve::internal
