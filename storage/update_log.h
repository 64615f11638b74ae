#ifndef EMBEDSERVE_STORAGE_UPDATE_LOG_H_
#define EMBEDSERVE_STORAGE_UPDATE_LOG_H_

// core's UpdateLog port (core/update_log.h) as segment files of CRC-framed
// records in one directory (storage/FORMAT.md, "The update log"):
//
//   <dir>/log-<first position, 20 digits>.seg
//
// Records are appended to the last segment (the active one) with one
// pwrite each under the log's mutex; when the active segment has passed
// segment_bytes the next append first starts a new one. In a sync log
// WaitDurable is group commit: one caller (the leader) fdatasyncs the
// active segment up to the newest record while the others wait for it;
// appends go on meanwhile. Open checks every record of the last segment and
// cuts off a torn tail (ScanSegment's rule, storage/internal/log_segment.h);
// any other damage there fails Open with DataLoss. Of the closed segments
// Open checks the headers only: their records are checked as Read reads
// them (a restart reads them all at once), and damage, or a segment that
// does not end where the next one starts, fails that Read with DataLoss.
// So the log is read once at a restart, not twice.
//
// Thread-safe. Crash-safe: a process or machine crash at any point of
// Append, a rotation, DropThrough or CopyTo leaves a directory that opens
// (a sync log keeps every record WaitDurable returned for; an async log
// every record Append returned for, unless the machine crashed).

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/update_log.h"

namespace embedserve {

struct UpdateLogOptions {
  std::string dir;
  // WaitDurable fdatasyncs (group commit); otherwise records reach the
  // operating system only (Append) and WaitDurable returns at once.
  bool sync = false;
  // An append starts a new segment once the active one holds this many
  // bytes (a record is never split, so segments may be larger).
  int64_t segment_bytes = 64 << 20;
  // Read, Stats and last_position only (Append, DropThrough and CopyTo are
  // FailedPrecondition). Open neither creates `dir` nor cuts off a torn
  // tail (it reads up to it).
  bool read_only = false;
  // Append refuses (ResourceExhausted) a record that would leave less than
  // this many bytes free on the filesystem. Free space is asked of the
  // filesystem (statvfs) after every free_space_check_bytes appended, and
  // on every append once the estimate comes near the limit.
  int64_t min_free_bytes = 64 << 20;
  int64_t free_space_check_bytes = 16 << 20;
  // Tests only: replaces pwrite(2) for record writes, and fdatasync(2) for
  // the group commit's syncs (to inject errors).
  std::function<ssize_t(int fd, const void* buf, size_t n, off_t offset)> write_for_test;
  std::function<int(int fd)> sync_for_test;
};

class FileUpdateLog final : public UpdateLog {
 public:
  // Opens (creating, unless read_only) the log in options.dir and checks
  // every record. Errors: NotFound (read_only and no dir); DataLoss for a
  // damaged record or segment that is not a torn tail, naming the segment
  // file, the byte offset, the position and, if its header still decodes,
  // the table; InvalidArgument for options out of range; syscall errors
  // naming the path.
  static absl::StatusOr<std::unique_ptr<FileUpdateLog>> Open(const UpdateLogOptions& options);

  ~FileUpdateLog() override;

  // UpdateLog. Also: Append is FailedPrecondition in a read-only log;
  // WaitDurable is InvalidArgument for a position not yet appended; Read
  // reads the records up to last_position() at its start (appends go on
  // meanwhile) through open descriptors, so a concurrent DropThrough does
  // not disturb it; CopyTo's `dir` must not exist (AlreadyExists).
  absl::StatusOr<LogPosition> Append(const UpdateRecord& record) override;
  absl::Status WaitDurable(LogPosition position) override;
  absl::Status DropThrough(LogPosition position) override;
  absl::Status Read(LogPosition after,
                    const std::function<absl::Status(LogPosition, const UpdateRecord&)>& visit)
      override;
  absl::StatusOr<LogPosition> CopyTo(absl::string_view dir) override;
  LogPosition last_position() const override;
  // `syncs` counts the fdatasyncs of segments: group commits, the sync of
  // a segment closed by rotation or CopyTo, and of the header of a segment
  // that rotation starts.
  UpdateLogStats Stats() const override;

 private:
  struct File;  // an open segment descriptor, closed when the last user lets go
  struct Segment {
    LogPosition first = 0;
    int64_t bytes = 0;  // the active segment's: see active_bytes_
  };

  explicit FileUpdateLog(const UpdateLogOptions& options);
  absl::Status Recover();
  std::string PathOf(LogPosition first) const;
  absl::Status FailedClosed() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FailClosed(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckFreeSpace(int64_t bytes) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Closes the active segment and starts segment last_position_ + 1. With
  // `sync_old` (a sync log) the old segment is fdatasynced first and the
  // new one created durably (internal::CreateSegment); else nothing waits
  // for the disk here: the background syncer syncs the old segment, then
  // the new one's header and the directory, off the append path (a sync
  // there waited 0.1-0.3 s while a snapshot's files were written, on this
  // project's VM). REQUIRES: the active segment has records.
  absl::Status Rotate(bool sync_old) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int Sync(int fd);
  // The background syncer (async logs): closed segments reach the disk
  // without an append waiting for them, so that after a power loss (not only
  // a process crash) an older segment has lost no tail that a newer one
  // kept; only the active segment's tail can be torn. Started at the first
  // rotation, stopped (after syncing what is queued) by the destructor.
  void SyncClosedSegments();

  absl::Mutex syncer_mu_ ABSL_ACQUIRED_AFTER(mu_);
  std::deque<std::shared_ptr<File>> closed_ ABSL_GUARDED_BY(syncer_mu_);
  // A segment was created (renamed into the directory) without a sync of
  // the directory: the syncer syncs it once closed_ is empty.
  bool dir_unsynced_ ABSL_GUARDED_BY(syncer_mu_) = false;
  bool stop_syncer_ ABSL_GUARDED_BY(syncer_mu_) = false;
  std::thread syncer_;  // started under mu_

  const UpdateLogOptions options_;

  // Serialises DropThrough and CopyTo (which unlink and link segments
  // outside mu_). Taken before mu_.
  absl::Mutex admin_mu_ ABSL_ACQUIRED_BEFORE(mu_);

  mutable absl::Mutex mu_;
  std::vector<Segment> segments_ ABSL_GUARDED_BY(mu_);  // by first; back() active
  std::shared_ptr<File> active_ ABSL_GUARDED_BY(mu_);   // null in a read-only log
  int64_t active_bytes_ ABSL_GUARDED_BY(mu_) = 0;       // its valid end
  LogPosition last_position_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t appends_ ABSL_GUARDED_BY(mu_) = 0;
  std::string frame_ ABSL_GUARDED_BY(mu_);  // reused encode buffer
  int64_t free_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // at the last statvfs
  int64_t appended_since_statvfs_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status failed_ ABSL_GUARDED_BY(mu_);  // the first failed write or sync
  std::atomic<bool> has_failed_{false};       // failed_ is set (lock-free check)

  // Group commit. Never held with mu_ (the leader takes them in turn).
  absl::Mutex sync_mu_;
  absl::CondVar sync_done_;
  LogPosition durable_ ABSL_GUARDED_BY(sync_mu_) = 0;
  bool syncing_ ABSL_GUARDED_BY(sync_mu_) = false;
  std::atomic<int64_t> syncs_{0};
};

}  // namespace embedserve

#endif  // EMBEDSERVE_STORAGE_UPDATE_LOG_H_
