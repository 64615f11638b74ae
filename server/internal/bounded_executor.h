#ifndef EMBEDSERVE_SERVER_INTERNAL_BOUNDED_EXECUTOR_H_
#define EMBEDSERVE_SERVER_INTERNAL_BOUNDED_EXECUTOR_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace embedserve::internal {

// A fixed set of worker threads with a bounded queue: the lane that work
// which must not run on gRPC's threads is moved to (loads, creates,
// checkpoints: minutes of disk and CPU; pushes: so that lookups come first).
//
// Priority: workers run at `nice` (Linux: per thread). Under CFS a nice-10
// thread weighs about a tenth of a nice-0 one, so while lookups (on gRPC's
// nice-0 threads) want the CPU they get most of it, and the lane gets the
// whole machine when they do not. Nothing is starved: a niced thread still
// runs, only with a smaller share.
//
// A task is called exactly once: with `stopping` false when a worker runs it,
// or true when the executor shuts down before it ran (it must then only
// answer its caller). Thread-safe.
class BoundedExecutor {
 public:
  using Task = std::function<void(bool stopping)>;

  struct Options {
    std::string name = "lane";  // thread names: <name>-<i> (15 chars max)
    int threads = 1;            // >= 1
    int max_queue = 16;         // tasks waiting, not counting running ones (>= 1)
    int nice = 0;               // added to the workers' inherited nice value (max 19)
  };

  explicit BoundedExecutor(const Options& options);
  // Shuts down.
  ~BoundedExecutor();

  BoundedExecutor(const BoundedExecutor&) = delete;
  BoundedExecutor& operator=(const BoundedExecutor&) = delete;

  // Queues `task`. False (and `task` is dropped uncalled) when the queue is
  // full or the executor is shutting down: the caller answers its client
  // (RESOURCE_EXHAUSTED / UNAVAILABLE, see stopping()).
  bool TrySubmit(Task task) ABSL_LOCKS_EXCLUDED(mu_);

  // True once Shutdown began; long tasks poll it to give up early.
  bool stopping() const ABSL_LOCKS_EXCLUDED(mu_);
  int queued() const ABSL_LOCKS_EXCLUDED(mu_);
  int max_queue() const { return options_.max_queue; }

  // Refuses new tasks, calls every queued task with stopping = true, waits
  // for running tasks to return and joins the workers. Idempotent.
  void Shutdown() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work(int index);

  const Options options_;
  mutable absl::Mutex mu_;
  std::deque<Task> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_SERVER_INTERNAL_BOUNDED_EXECUTOR_H_
