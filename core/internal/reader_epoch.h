#ifndef EMBEDSERVE_CORE_INTERNAL_READER_EPOCH_H_
#define EMBEDSERVE_CORE_INTERNAL_READER_EPOCH_H_

#include <atomic>
#include <cstdint>

namespace embedserve::internal {

// Deferred freeing for memory that lock-free readers may still be reading
// (the dynamic id index's old bucket arrays after a rehash): two-parity
// epoch-based reclamation with striped reader counts.
//
// Readers bracket each access with Enter / Exit (three uncontended atomic
// operations on a cache line of their own stripe; no lock, never waits for
// the writer). The writer, after unpublishing memory M (e.g. swapping an
// atomic pointer away from it, with a seq_cst store), calls Retire():
// every reader that could still see M entered before Retire's epoch flip,
// and is counted in the parity Retire returns. Once Drained(parity) is true
// those readers have all left, and M may be freed.
//
// Proof sketch (all four operations below are seq_cst): a reader that
// counted itself in parity p = e & 1 re-read the epoch as e afterwards, so
// its count precedes the writer's flip e -> e + 1, which precedes the
// writer's Drained read of the count; a reader that saw e + 1 or later reads
// the pointer after the flip, hence after the swap, and never sees M.
// The writer must not flip twice before the older parity drained (else new
// readers would keep it busy): Retire REQUIRES Drained(1 - current parity),
// which WaitDrained gives.
//
// Thread-safety: Enter/Exit from any thread; Retire/Drained/WaitDrained from
// the one writer.
class ReaderEpoch {
 public:
  static constexpr int kStripes = 64;

  // A reader's ticket: which count it incremented.
  struct Ticket {
    int stripe;
    int parity;
  };

  ReaderEpoch() = default;
  ReaderEpoch(const ReaderEpoch&) = delete;
  ReaderEpoch& operator=(const ReaderEpoch&) = delete;

  Ticket Enter() const {
    Stripe& s = stripes_[ThisThreadStripe()];
    for (;;) {
      const uint64_t e = epoch_.load(std::memory_order_seq_cst);
      const int p = static_cast<int>(e & 1);
      s.readers[p].fetch_add(1, std::memory_order_seq_cst);
      if (epoch_.load(std::memory_order_seq_cst) == e) return Ticket{ThisThreadStripe(), p};
      s.readers[p].fetch_sub(1, std::memory_order_release);
    }
  }
  void Exit(Ticket t) const {
    stripes_[t.stripe].readers[t.parity].fetch_sub(1, std::memory_order_release);
  }

  // Writer: flips the epoch; returns the parity whose readers may still
  // hold what was unpublished before the call.
  // REQUIRES: Drained(1 - current parity) (see the class comment).
  int Retire();
  // True when no reader counted in `parity` is inside.
  bool Drained(int parity) const;
  // Spins (yielding) until Drained(parity).
  void WaitDrained(int parity) const;

 private:
  struct alignas(64) Stripe {
    std::atomic<uint64_t> readers[2] = {0, 0};
  };
  static int ThisThreadStripe();

  std::atomic<uint64_t> epoch_{0};
  mutable Stripe stripes_[kStripes];
};

// RAII reader section.
class ReaderEpochGuard {
 public:
  explicit ReaderEpochGuard(const ReaderEpoch& epoch) : epoch_(epoch), ticket_(epoch.Enter()) {}
  ~ReaderEpochGuard() { epoch_.Exit(ticket_); }
  ReaderEpochGuard(const ReaderEpochGuard&) = delete;
  ReaderEpochGuard& operator=(const ReaderEpochGuard&) = delete;

 private:
  const ReaderEpoch& epoch_;
  const ReaderEpoch::Ticket ticket_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_READER_EPOCH_H_
