#ifndef EMBEDSERVE_TESTS_TESTING_EXACT_COUNTS_H_
#define EMBEDSERVE_TESTS_TESTING_EXACT_COUNTS_H_

// The exact counts an admission sketch estimates (core/internal/
// admission_sketch.h), as a plain map: +1 per add, saturating at 255, all
// halved every `window` adds. The reference of the sketch's and the dynamic
// storage's tests.

#include <algorithm>
#include <cstdint>
#include <map>

namespace embedserve::internal {

class ExactCounts {
 public:
  explicit ExactCounts(int64_t window) : window_(window) {}
  int Add(int64_t id) {
    const int c = std::min(counts_[id] + 1, 255);
    counts_[id] = c;
    if (++adds_ == window_) {
      for (auto& [k, v] : counts_) v /= 2;
      adds_ = 0;
    }
    return c;
  }

 private:
  int64_t window_;
  int64_t adds_ = 0;
  std::map<int64_t, int> counts_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_TESTS_TESTING_EXACT_COUNTS_H_
