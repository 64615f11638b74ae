#ifndef EMBEDSERVE_CORE_INTERNAL_ROW_SEQLOCK_H_
#define EMBEDSERVE_CORE_INTERNAL_ROW_SEQLOCK_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/types/span.h"

namespace embedserve::internal {

// Seqlocks over row slots, striped: slot s uses counter s mod kStripes (a
// 64 KiB array that stays in cache), so rows that share a stripe share a
// counter. A stripe's counter is odd while one of its rows is written.
//
// Writers call BeginWrite / EndWrite around each change of a row; they must
// be serialised by the caller (one writer at a time per table). Readers take
// no lock and never block writers:
//
//   Snapshot(slots, before);    // note the counters
//   ... read the rows (e.g. run a SIMD kernel) ...
//   Torn(slots, before, &torn); // positions whose row may be half-read
//   for each torn position: ReadStable(slot, read) re-reads it consistently
//
// A row whose stripe was odd at Snapshot, or moved before Torn, is reported
// (possibly spuriously: another row of the stripe was written); a row not
// reported was not written while it was read.
//
// Thread-safety: every method may be called concurrently, within the
// one-writer rule above.
class RowSeqlock {
 public:
  static constexpr uint64_t kStripes = uint64_t{1} << 14;

  RowSeqlock() : stripes_(new std::atomic<uint32_t>[kStripes]()) {}

  // Writer side. REQUIRES: the caller's writer exclusion held; each
  // BeginWrite(slot) followed by EndWrite(slot) before the next write.
  void BeginWrite(int64_t slot);
  void EndWrite(int64_t slot);

  // Reader side. REQUIRES: before.size() == slots.size().
  // (The loops index raw pointers: absl::Span's operator[] is bounds-checked
  // in this Abseil build, a compare and branch per id on the hot path; and
  // the array's address sits in a local, which an acquire load would
  // otherwise make the compiler reload from the object on every id.)
  void Snapshot(absl::Span<const int64_t> slots, absl::Span<uint32_t> before) const {
    const std::atomic<uint32_t>* const stripes = stripes_.get();
    const int64_t* const s = slots.data();
    uint32_t* const b = before.data();
    for (size_t i = 0; i < slots.size(); ++i) {
      b[i] = stripes[static_cast<uint64_t>(s[i]) & (kStripes - 1)].load(std::memory_order_acquire);
    }
  }
  // Snapshot of one slot: what Snapshot writes for it (for a caller that
  // notes each slot as it learns it, e.g. inside an index probe loop).
  uint32_t SnapshotOne(int64_t slot) const { return Stripe(slot).load(std::memory_order_acquire); }
  // Appends to `torn` the positions i whose stripe was being written at
  // Snapshot or has moved since. Call after the reads.
  void Torn(absl::Span<const int64_t> slots, absl::Span<const uint32_t> before,
            std::vector<int64_t>* torn) const {
    // The reads above are ordered before the counters read below.
    std::atomic_thread_fence(std::memory_order_acquire);
    const std::atomic<uint32_t>* const stripes = stripes_.get();
    const int64_t* const s = slots.data();
    const uint32_t* const b = before.data();
    for (size_t i = 0; i < slots.size(); ++i) {
      const uint32_t now =
          stripes[static_cast<uint64_t>(s[i]) & (kStripes - 1)].load(std::memory_order_relaxed);
      if ((b[i] & 1) || now != b[i]) torn->push_back(static_cast<int64_t>(i));
    }
  }
  // Calls read() until it ran while `slot` was not written (yielding while
  // a writer holds the stripe). read() must only copy (it may see a
  // half-written row and is then run again).
  template <typename Read>
  void ReadStable(int64_t slot, Read read) const {
    const std::atomic<uint32_t>& seq = Stripe(slot);
    for (;;) {
      const uint32_t before = seq.load(std::memory_order_acquire);
      if (before & 1) {
        Yield();
        continue;
      }
      read();
      std::atomic_thread_fence(std::memory_order_acquire);
      if (seq.load(std::memory_order_relaxed) == before) return;
    }
  }

 private:
  std::atomic<uint32_t>& Stripe(int64_t slot) const {
    return stripes_[static_cast<uint64_t>(slot) & (kStripes - 1)];
  }
  static void Yield();

  const std::unique_ptr<std::atomic<uint32_t>[]> stripes_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_ROW_SEQLOCK_H_
