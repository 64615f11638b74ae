#include "core/internal/row_seqlock.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

std::vector<int64_t> TornAfter(const RowSeqlock& lock, const std::vector<int64_t>& slots,
                               const std::vector<uint32_t>& before) {
  std::vector<int64_t> torn;
  lock.Torn(slots, before, &torn);
  return torn;
}

TEST(RowSeqlockTest, UntouchedRowsAreNotTorn) {
  RowSeqlock lock;
  const std::vector<int64_t> slots = {0, 5, 7, 1 << 20};
  std::vector<uint32_t> before(slots.size());
  lock.Snapshot(slots, absl::MakeSpan(before));
  EXPECT_THAT(TornAfter(lock, slots, before), IsEmpty());
}

TEST(RowSeqlockTest, AWriteDuringTheReadReportsItsPositions) {
  RowSeqlock lock;
  const std::vector<int64_t> slots = {3, 4, 3, 9};
  std::vector<uint32_t> before(slots.size());
  lock.Snapshot(slots, absl::MakeSpan(before));
  lock.BeginWrite(3);
  lock.EndWrite(3);
  EXPECT_THAT(TornAfter(lock, slots, before), ElementsAre(0, 2));
}

TEST(RowSeqlockTest, AWriteInProgressAtTheSnapshotIsReported) {
  RowSeqlock lock;
  const std::vector<int64_t> slots = {8};
  std::vector<uint32_t> before(1);
  lock.BeginWrite(8);
  lock.Snapshot(slots, absl::MakeSpan(before));
  // Still being written when the read ends: the counter did not move, but
  // it was odd.
  EXPECT_THAT(TornAfter(lock, slots, before), ElementsAre(0));
  lock.EndWrite(8);
}

TEST(RowSeqlockTest, SlotsOfOneStripeShareACounter) {
  RowSeqlock lock;
  const std::vector<int64_t> slots = {1, 1 + RowSeqlock::kStripes, 2};
  std::vector<uint32_t> before(slots.size());
  lock.Snapshot(slots, absl::MakeSpan(before));
  lock.BeginWrite(1 + 2 * RowSeqlock::kStripes);
  lock.EndWrite(1 + 2 * RowSeqlock::kStripes);
  EXPECT_THAT(TornAfter(lock, slots, before), ElementsAre(0, 1));
}

// A writer keeps two words equal, writing them one after the other; readers
// must never accept a pair it left half-written.
TEST(RowSeqlockTest, ReadersNeverAcceptAHalfWrittenRow) {
  RowSeqlock lock;
  constexpr int kSlots = 64;
  std::vector<std::atomic<int64_t>> a(kSlots), b(kSlots);
  std::atomic<bool> stop{false};
  std::atomic<int64_t> accepted{0}, accepted_torn{0}, stable_torn{0}, reported{0};
  std::thread writer([&] {
    for (int64_t v = 1; !stop.load(std::memory_order_relaxed); ++v) {
      const int64_t s = v % kSlots;
      lock.BeginWrite(s);
      a[s].store(v, std::memory_order_relaxed);
      std::this_thread::yield();  // widen the window
      b[s].store(v, std::memory_order_relaxed);
      lock.EndWrite(s);
    }
  });
  std::thread reader([&] {
    std::vector<int64_t> slots(kSlots);
    for (int s = 0; s < kSlots; ++s) slots[s] = s;
    std::vector<uint32_t> before(kSlots);
    std::vector<int64_t> ra(kSlots), rb(kSlots), torn;
    while (!stop.load(std::memory_order_relaxed)) {
      lock.Snapshot(slots, absl::MakeSpan(before));
      for (int s = 0; s < kSlots; ++s) {
        ra[s] = a[s].load(std::memory_order_relaxed);
        rb[s] = b[s].load(std::memory_order_relaxed);
      }
      torn.clear();
      lock.Torn(slots, before, &torn);
      reported += static_cast<int64_t>(torn.size());
      size_t t = 0;
      for (int s = 0; s < kSlots; ++s) {
        if (t < torn.size() && torn[t] == s) {
          ++t;
          int64_t x = 0, y = 0;
          lock.ReadStable(s, [&] {
            x = a[s].load(std::memory_order_relaxed);
            y = b[s].load(std::memory_order_relaxed);
          });
          if (x != y) ++stable_torn;
          continue;
        }
        ++accepted;
        if (ra[s] != rb[s]) ++accepted_torn;
      }
    }
  });
  // Until the reader has seen enough, both accepted and reported rows (a
  // loaded machine may starve it for a while); bounded.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while ((accepted.load() < 200000 || reported.load() < 100) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  writer.join();
  reader.join();
  EXPECT_GE(accepted.load(), 200000);
  EXPECT_GE(reported.load(), 100);  // the writer did overlap the reader
  EXPECT_EQ(accepted_torn.load(), 0);
  EXPECT_EQ(stable_torn.load(), 0);
}

}  // namespace
}  // namespace embedserve::internal
