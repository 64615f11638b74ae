#include "server/internal/bounded_executor.h"

#include <pthread.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"

namespace embedserve::internal {

BoundedExecutor::BoundedExecutor(const Options& options) : options_(options) {
  const int threads = std::max(1, options_.threads);
  workers_.reserve(threads);
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this, i] { Work(i); });
}

BoundedExecutor::~BoundedExecutor() { Shutdown(); }

bool BoundedExecutor::TrySubmit(Task task) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || static_cast<int>(queue_.size()) >= std::max(1, options_.max_queue)) {
    return false;
  }
  queue_.push_back(std::move(task));
  return true;
}

bool BoundedExecutor::stopping() const {
  absl::MutexLock lock(&mu_);
  return stopping_;
}

int BoundedExecutor::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

void BoundedExecutor::Work(int index) {
  const std::string name = absl::StrCat(options_.name, "-", index).substr(0, 15);
  pthread_setname_np(pthread_self(), name.c_str());
  if (options_.nice != 0) {
    // Linux applies a nice value to the one thread whose tid is named.
    const pid_t tid = static_cast<pid_t>(::syscall(SYS_gettid));
    errno = 0;
    const int current = ::getpriority(PRIO_PROCESS, static_cast<id_t>(tid));
    ::setpriority(PRIO_PROCESS, static_cast<id_t>(tid), std::min(19, current + options_.nice));
  }
  for (;;) {
    Task task;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](BoundedExecutor* e)
               ABSL_NO_THREAD_SAFETY_ANALYSIS { return e->stopping_ || !e->queue_.empty(); },
          this));
      if (queue_.empty()) return;  // stopping, nothing left
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task(/*stopping=*/false);
  }
}

void BoundedExecutor::Shutdown() {
  std::deque<Task> abandoned;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    abandoned.swap(queue_);
  }
  for (Task& task : abandoned) task(/*stopping=*/true);
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
}

}  // namespace embedserve::internal
