#ifndef EMBEDSERVE_CORE_INTERNAL_WORKER_POOL_H_
#define EMBEDSERVE_CORE_INTERNAL_WORKER_POOL_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace embedserve::internal {

// A fixed set of threads that run the chunks of ParallelFor. Thread-safe;
// several ParallelFor calls may run at once (their chunks interleave).
class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();

  // Runs fn(begin, end) over [0, n) in about `chunks` contiguous pieces, on
  // the pool's threads and the calling one, and returns when all are done.
  void ParallelFor(int64_t n, int chunks, const std::function<void(int64_t, int64_t)>& fn);

  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  void Work();

  absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_WORKER_POOL_H_
