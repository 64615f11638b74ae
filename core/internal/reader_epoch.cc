#include "core/internal/reader_epoch.h"

#include <thread>

namespace embedserve::internal {

int ReaderEpoch::ThisThreadStripe() {
  static std::atomic<int> next{0};
  thread_local const int stripe = next.fetch_add(1, std::memory_order_relaxed) % kStripes;
  return stripe;
}

int ReaderEpoch::Retire() {
  const uint64_t e = epoch_.load(std::memory_order_relaxed);
  epoch_.store(e + 1, std::memory_order_seq_cst);
  return static_cast<int>(e & 1);
}

bool ReaderEpoch::Drained(int parity) const {
  for (const Stripe& s : stripes_) {
    if (s.readers[parity].load(std::memory_order_seq_cst) != 0) return false;
  }
  return true;
}

void ReaderEpoch::WaitDrained(int parity) const {
  while (!Drained(parity)) std::this_thread::yield();
}

}  // namespace embedserve::internal
