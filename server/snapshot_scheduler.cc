#include "server/snapshot_scheduler.h"

#include <sys/resource.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "server/internal/log.h"

namespace embedserve {

SnapshotScheduler::SnapshotScheduler(TableRegistry& registry, UpdateLog& log,
                                     const SnapshotPolicy& policy)
    : registry_(registry), log_(log), policy_(policy), thread_([this] { Run(); }) {}

SnapshotScheduler::~SnapshotScheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void SnapshotScheduler::Run() {
  // Snapshots compete with nothing that answers requests.
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), 10);
  absl::Time last = absl::Now();
  absl::Time retry_at = absl::InfinitePast();
  LogPosition last_position = log_.last_position();
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&stop_), policy_.poll)) return;
    }
    const UpdateLogStats stats = log_.Stats();
    const bool by_size = policy_.log_bytes > 0 && stats.bytes >= policy_.log_bytes;
    const bool by_time = policy_.interval > absl::ZeroDuration() &&
                         absl::Now() - last >= policy_.interval &&
                         stats.last_position != last_position;
    if ((!by_size && !by_time) || absl::Now() < retry_at) continue;
    const absl::Time start = absl::Now();
    absl::StatusOr<int> written = registry_.SnapshotTables();
    last = absl::Now();
    last_position = stats.last_position;
    if (!written.ok()) {
      // E.g. a full disk: try again later, not at every poll.
      retry_at = last + policy_.retry_after_failure;
      internal::LogError(absl::StrCat("snapshot failed (next try in ",
                                      absl::FormatDuration(policy_.retry_after_failure),
                                      "): ", written.status().message()));
      continue;
    }
    const UpdateLogStats after = log_.Stats();
    internal::LogInfo(absl::StrCat("snapshot of ", *written, " tables (", by_size ? "log size" : "interval",
                                   ") in ", absl::FormatDuration(last - start), "; update log ",
                                   stats.bytes, " -> ", after.bytes, " bytes"));
  }
}

}  // namespace embedserve
