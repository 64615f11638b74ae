#ifndef EMBEDSERVE_SERVER_SNAPSHOT_SCHEDULER_H_
#define EMBEDSERVE_SERVER_SNAPSHOT_SCHEDULER_H_

#include <cstdint>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/table_registry.h"
#include "core/update_log.h"

namespace embedserve {

// When tables are snapshotted (TableRegistry::SnapshotTables) so that the
// update log stays short: once the log holds log_bytes, or interval after
// the last snapshot if anything was logged since. Both 0: never (only
// CreateCheckpoint snapshots).
struct SnapshotPolicy {
  int64_t log_bytes = int64_t{1} << 30;
  absl::Duration interval = absl::Minutes(10);
  absl::Duration poll = absl::Milliseconds(200);  // how often the figures are read
  absl::Duration retry_after_failure = absl::Seconds(10);
};

// A thread that applies SnapshotPolicy; it runs snapshots one at a time at
// low priority, never on a thread that lookups or pushes need, and after a
// failed one (logged) waits retry_after_failure before the next. Stops (after
// the snapshot in progress) when destroyed. Thread-safe.
class SnapshotScheduler {
 public:
  // `registry` and `log` must outlive the scheduler.
  SnapshotScheduler(TableRegistry& registry, UpdateLog& log, const SnapshotPolicy& policy);
  ~SnapshotScheduler();
  SnapshotScheduler(const SnapshotScheduler&) = delete;
  SnapshotScheduler& operator=(const SnapshotScheduler&) = delete;

 private:
  void Run();

  TableRegistry& registry_;
  UpdateLog& log_;
  const SnapshotPolicy policy_;
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_SNAPSHOT_SCHEDULER_H_
