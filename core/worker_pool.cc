#include "core/internal/worker_pool.h"

#include <algorithm>

namespace embedserve::internal {

WorkerPool::WorkerPool(int threads) {
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { Work(); });
}

WorkerPool::~WorkerPool() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  for (auto& t : workers_) t.join();
}

void WorkerPool::Work() {
  for (;;) {
    std::function<void()> task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](WorkerPool* p)
               ABSL_EXCLUSIVE_LOCKS_REQUIRED(p->mu_) { return p->stop_ || !p->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
  }
}

void WorkerPool::ParallelFor(int64_t n, int chunks,
                             const std::function<void(int64_t, int64_t)>& fn) {
  chunks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(chunks, n)));
  const int64_t per = (n + chunks - 1) / chunks;
  absl::Mutex done_mu;
  int pending = 0;
  {
    absl::MutexLock lock(&mu_);
    for (int64_t begin = per; begin < n; begin += per) {
      const int64_t end = std::min(n, begin + per);
      ++pending;
      queue_.push_back([&, begin, end] {
        fn(begin, end);
        absl::MutexLock done(&done_mu);
        --pending;
      });
    }
  }
  fn(0, std::min(n, per));  // the caller's share
  absl::MutexLock done(&done_mu);
  done_mu.Await(absl::Condition(
      +[](int* p) { return *p == 0; }, &pending));
}

}  // namespace embedserve::internal
