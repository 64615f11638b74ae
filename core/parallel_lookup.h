#ifndef EMBEDSERVE_CORE_PARALLEL_LOOKUP_H_
#define EMBEDSERVE_CORE_PARALLEL_LOOKUP_H_

#include <cstdint>
#include <memory>

#include "absl/functional/function_ref.h"

namespace embedserve {

namespace internal {
class WorkerPool;
}  // namespace internal

// Splits large lookups across a pool of threads. Made once (at start-up) and
// handed to tables through TableOptions / TableRegistry; tables without one
// run every lookup on the caller's thread. Results are identical either way:
// each piece gathers or pools its own rows or bags.
//
// Thread-safety: Run may be called concurrently (pieces of several lookups
// interleave on the pool).
class LookupParallelism {
 public:
  // `threads` (>= 1) pool threads; a lookup of at least `min_ids` ids is
  // split into threads + 1 pieces, run on the pool and the caller.
  LookupParallelism(int threads, int64_t min_ids);
  ~LookupParallelism();
  LookupParallelism(const LookupParallelism&) = delete;
  LookupParallelism& operator=(const LookupParallelism&) = delete;

  // Runs piece(begin, end) -> kAllValid or the absolute position of its
  // first bad id, over [0, n): in contiguous pieces on the pool when
  // work >= min_ids and n >= 2, else as one piece on this thread. Returns the
  // smallest bad position over all pieces, or kAllValid.
  int64_t Run(int64_t n, int64_t work, absl::FunctionRef<int64_t(int64_t, int64_t)> piece);

  int threads() const;
  int64_t min_ids() const { return min_ids_; }

 private:
  const std::unique_ptr<internal::WorkerPool> pool_;
  const int64_t min_ids_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_PARALLEL_LOOKUP_H_
