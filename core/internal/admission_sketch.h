#ifndef EMBEDSERVE_CORE_INTERNAL_ADMISSION_SKETCH_H_
#define EMBEDSERVE_CORE_INTERNAL_ADMISSION_SKETCH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace embedserve::internal {

// How often each id was pushed, in bounded memory: a count-min sketch of
// kDepth rows of `width` 8-bit counters, with conservative update (a push
// raises only the counters at the id's current minimum), saturating at 255,
// and aging: after every `window` Adds every counter is halved (TinyLFU's
// reset), so that ids pushed long ago stop holding counters up.
//
// Guarantee (the rule the tests check against an exact model): Add(id)
// returns at least the id's exact count, where the exact count is +1 for
// each Add of the id and floor(count / 2) at each aging, capped at 255. It
// is more (a "false admission" for a caller that admits at count >= k)
// only when other ids share all kDepth of its counters; the figure falls
// with width (see the benchmark's false-admission rate).
//
// Deterministic: the counters are a function of the seed and the sequence
// of Adds only. Not thread-safe (the table's writer owns it).
class AdmissionSketch {
 public:
  static constexpr int kDepth = 4;

  // `width`: counters per row (rounded up to a power of two, at least 64);
  // `window`: Adds between agings (0: 16 * width).
  AdmissionSketch(uint64_t seed, int64_t width, int64_t window);

  // Counts one push of `id`; returns its estimated count, this push included
  // (before any aging that this Add triggers).
  int Add(int64_t id);
  // The estimate without counting.
  int Estimate(int64_t id) const;

  // The counters and the aging position, as bytes (for snapshots: a
  // sketch loaded from them counts on exactly as this one would), and back.
  // Load returns false, changing nothing, for bytes of another width.
  std::string Save() const;
  bool Load(std::string_view saved);

  int64_t bytes() const { return static_cast<int64_t>(counters_.size()); }
  int64_t width() const { return mask_ + 1; }
  int64_t window() const { return window_; }
  int64_t agings() const { return agings_; }

 private:
  void Positions(int64_t id, uint64_t pos[kDepth]) const;

  const uint64_t seed_;
  int64_t mask_;
  int64_t window_;
  int64_t adds_ = 0;  // since the last aging
  int64_t agings_ = 0;
  std::vector<uint8_t> counters_;  // kDepth rows of mask_ + 1
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_ADMISSION_SKETCH_H_
