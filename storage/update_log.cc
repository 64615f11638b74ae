#include "storage/update_log.h"

#include <algorithm>

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/internal/log_record_codec.h"
#include "storage/internal/log_segment.h"

namespace embedserve {

using internal::FileError;

struct FileUpdateLog::File {
  File(int fd, std::string path) : fd(fd), path(std::move(path)) {}
  ~File() { ::close(fd); }
  const int fd;
  const std::string path;
};

FileUpdateLog::FileUpdateLog(const UpdateLogOptions& options) : options_(options) {}

FileUpdateLog::~FileUpdateLog() {
  {
    absl::MutexLock lock(&syncer_mu_);
    stop_syncer_ = true;
  }
  if (syncer_.joinable()) syncer_.join();
}

void FileUpdateLog::SyncClosedSegments() {
  for (;;) {
    std::shared_ptr<File> file;
    bool sync_dir = false;
    {
      absl::MutexLock lock(&syncer_mu_);
      syncer_mu_.Await(absl::Condition(
          +[](FileUpdateLog* log) ABSL_EXCLUSIVE_LOCKS_REQUIRED(log->syncer_mu_) {
            return log->stop_syncer_ || !log->closed_.empty() || log->dir_unsynced_;
          },
          this));
      if (!closed_.empty()) {
        file = std::move(closed_.front());
        closed_.pop_front();
      } else if (dir_unsynced_) {  // after the files whose names it holds
        sync_dir = true;
        dir_unsynced_ = false;
      } else {
        return;  // stopping, and nothing left to sync
      }
    }
    absl::Status s;
    if (file != nullptr && Sync(file->fd) != 0) s = FileError("fdatasync", file->path, errno);
    if (sync_dir) s = internal::SyncDir(options_.dir);
    if (!s.ok()) {
      // The records may not reach the disk: nothing more is acknowledged.
      std::fprintf(stderr, "update log: %s\n", std::string(s.message()).c_str());
      absl::MutexLock lock(&mu_);
      FailClosed(s);
    }
  }
}

std::string FileUpdateLog::PathOf(LogPosition first) const {
  return absl::StrCat(options_.dir, "/", internal::SegmentFileName(first));
}

absl::StatusOr<std::unique_ptr<FileUpdateLog>> FileUpdateLog::Open(
    const UpdateLogOptions& options) {
  if (options.dir.empty() || options.segment_bytes <= 0 || options.min_free_bytes < 0 ||
      options.free_space_check_bytes < 0) {
    return absl::InvalidArgumentError(
        "update log options: dir must be set, segment_bytes > 0, the free-space figures >= 0");
  }
  std::error_code ec;
  if (!std::filesystem::is_directory(options.dir, ec)) {
    if (options.read_only) {
      return absl::NotFoundError(absl::StrCat("update log directory ", options.dir, " not found"));
    }
    std::filesystem::create_directories(options.dir, ec);
    if (ec) return FileError("mkdir", options.dir, ec.value());
    const std::string parent = std::filesystem::path(options.dir).parent_path().string();
    RETURN_IF_ERROR(internal::SyncDir(parent.empty() ? "." : parent));
  }
  std::unique_ptr<FileUpdateLog> log(new FileUpdateLog(options));
  RETURN_IF_ERROR(log->Recover());
  return log;
}

absl::Status FileUpdateLog::Recover() {
  absl::MutexLock lock(&mu_);
  ASSIGN_OR_RETURN(std::vector<LogPosition> firsts,
                   internal::ListSegments(options_.dir, !options_.read_only));
  if (firsts.empty()) {
    if (options_.read_only) return absl::OkStatus();  // an empty log
    firsts.push_back(1);
    ASSIGN_OR_RETURN(const int fd, internal::CreateSegment(options_.dir, 1));
    ::close(fd);
  }
  LogPosition next = 0;  // 0: the first segment may start anywhere
  for (size_t i = 0; i < firsts.size(); ++i) {
    const bool last = i + 1 == firsts.size();
    const std::string path = PathOf(firsts[i]);
    const int fd = ::open(path.c_str(), (last && !options_.read_only ? O_RDWR : O_RDONLY) | O_CLOEXEC);
    if (fd < 0) return FileError("open", path, errno);
    auto file = std::make_shared<File>(fd, path);
    struct stat st;
    if (::fstat(fd, &st) != 0) return FileError("fstat", path, errno);
    if (last && !options_.read_only &&
        st.st_size <= static_cast<off_t>(internal::kSegmentHeaderBytes)) {
      // An async rotation's segment whose header a power loss kept from the
      // disk (Rotate): empty, as a torn tail is cut off. Its header again.
      std::string head(static_cast<size_t>(st.st_size), '\0');
      if (!head.empty() && ::pread(fd, head.data(), head.size(), 0) != st.st_size) {
        return FileError("read", path, errno);
      }
      if (internal::HeaderNeverReachedDisk(head)) {
        std::fprintf(stderr, "update log: %s: its header never reached the disk; written again\n",
                     path.c_str());
        RETURN_IF_ERROR(internal::WriteFully(::pwrite, fd, 0,
                                             internal::EncodeSegmentHeader(firsts[i]), path));
        if (::fdatasync(fd) != 0) return FileError("fdatasync", path, errno);
        st.st_size = static_cast<off_t>(internal::kSegmentHeaderBytes);
      }
    }
    internal::ScanOptions scan_options;
    scan_options.path = path;
    // A closed segment's frames are checked when they are read (a restart
    // reads them all right after): here its header only, so that the log is
    // not read twice. The last segment is scanned whole: its end may be torn.
    scan_options.end = last ? st.st_size
                            : std::min<int64_t>(st.st_size, internal::kSegmentHeaderBytes);
    scan_options.expect_first = firsts[i];
    scan_options.last_segment = last;
    ASSIGN_OR_RETURN(internal::SegmentScan scan, internal::ScanSegment(fd, scan_options));
    if (!last) {
      scan.good_bytes = st.st_size;
      scan.next = firsts[i + 1];
    }
    if (!scan.torn.empty()) {
      std::fprintf(stderr, "update log: %s: cut off a torn tail (%s) after position %llu\n",
                   path.c_str(), scan.torn.c_str(),
                   static_cast<unsigned long long>(scan.next - 1));
      if (!options_.read_only && ::ftruncate(fd, scan.good_bytes) != 0) {
        return FileError("ftruncate", path, errno);
      }
    }
    // What an earlier (maybe async) run wrote is made durable before a sync
    // log's group commits, which sync the active segment only, count on it.
    if (options_.sync && !options_.read_only && ::fdatasync(fd) != 0) {
      return FileError("fdatasync", path, errno);
    }
    segments_.push_back(Segment{firsts[i], scan.good_bytes});
    next = scan.next;
    if (last) {
      active_bytes_ = scan.good_bytes;
      if (!options_.read_only) active_ = std::move(file);
    }
  }
  last_position_ = next - 1;
  if (!options_.read_only) {
    appended_since_statvfs_ = options_.free_space_check_bytes;  // ask at the first append
  }
  return absl::OkStatus();
}

absl::Status FileUpdateLog::FailedClosed() const {
  return absl::FailedPreconditionError(absl::StrCat(
      "update log ", options_.dir, " failed closed after an earlier error: ", failed_.message()));
}

void FileUpdateLog::FailClosed(const absl::Status& error) {
  if (failed_.ok()) failed_ = error;
  has_failed_.store(true);
}

int FileUpdateLog::Sync(int fd) {
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return options_.sync_for_test ? options_.sync_for_test(fd) : ::fdatasync(fd);
}

absl::Status FileUpdateLog::CheckFreeSpace(int64_t bytes) {
  const int64_t need = options_.min_free_bytes + bytes;
  if (appended_since_statvfs_ >= options_.free_space_check_bytes ||
      free_bytes_ - appended_since_statvfs_ < need) {
    struct statvfs vfs;
    if (::statvfs(options_.dir.c_str(), &vfs) != 0) {
      return FileError("statvfs", options_.dir, errno);
    }
    free_bytes_ = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
    appended_since_statvfs_ = 0;
  }
  if (free_bytes_ < need) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "update log ", options_.dir, ": the filesystem has ", free_bytes_,
        " bytes free; a record of ", bytes, " bytes would leave less than the ",
        options_.min_free_bytes, " bytes the log keeps free (min_free_bytes)"));
  }
  return absl::OkStatus();
}

absl::Status FileUpdateLog::Rotate(bool sync_old) {
  if (sync_old && Sync(active_->fd) != 0) {
    const absl::Status s = FileError("fdatasync", active_->path, errno);
    FailClosed(s);
    return s;
  }
  const LogPosition first = last_position_ + 1;
  std::function<int(int)> sync;  // none: the syncer's (below)
  if (sync_old) sync = [this](int fd) { return Sync(fd); };
  ASSIGN_OR_RETURN(const int fd, internal::CreateSegment(options_.dir, first, sync));
  auto created = std::make_shared<File>(fd, PathOf(first));
  if (!sync_old) {
    absl::MutexLock lock(&syncer_mu_);
    closed_.push_back(active_);
    closed_.push_back(created);  // its header (records appended by then too)
    dir_unsynced_ = true;        // its name
    if (!syncer_.joinable()) syncer_ = std::thread([this] { SyncClosedSegments(); });
  }
  segments_.back().bytes = active_bytes_;
  segments_.push_back(Segment{first, static_cast<int64_t>(internal::kSegmentHeaderBytes)});
  active_ = std::move(created);
  active_bytes_ = internal::kSegmentHeaderBytes;
  return absl::OkStatus();
}

absl::StatusOr<LogPosition> FileUpdateLog::Append(const UpdateRecord& record) {
  absl::MutexLock lock(&mu_);
  if (options_.read_only) {
    return absl::FailedPreconditionError(
        absl::StrCat("update log ", options_.dir, " is read-only"));
  }
  if (!failed_.ok()) return FailedClosed();
  const LogPosition position = last_position_ + 1;
  RETURN_IF_ERROR(internal::EncodeFrame(position, record, &frame_));
  if (active_bytes_ >= options_.segment_bytes && segments_.back().first <= last_position_) {
    RETURN_IF_ERROR(Rotate(/*sync_old=*/options_.sync));
  }
  RETURN_IF_ERROR(CheckFreeSpace(static_cast<int64_t>(frame_.size())));
  const internal::PwriteFn pwrite_fn =
      options_.write_for_test ? internal::PwriteFn(options_.write_for_test) : internal::PwriteFn(::pwrite);
  absl::Status s = internal::WriteFully(pwrite_fn, active_->fd, active_bytes_, frame_, active_->path);
  if (!s.ok()) {
    // Take the partial frame back (Open would cut it off anyway). A full
    // disk whose partial frame is gone leaves the log as it was: the change
    // is refused and later ones may succeed once there is room. Any other
    // failure, or a frame that cannot be taken back, fails closed: nothing
    // is acknowledged after a gap.
    const bool taken_back = ::ftruncate(active_->fd, active_bytes_) == 0;
    if (!taken_back) {
      std::fprintf(stderr, "update log: %s: ftruncate after a failed write: %s\n",
                   active_->path.c_str(), ::strerror(errno));
    }
    if (!taken_back || !absl::IsResourceExhausted(s)) FailClosed(s);
    return s;
  }
  active_bytes_ += static_cast<int64_t>(frame_.size());
  if (frame_.capacity() > (16 << 20)) std::string().swap(frame_);  // after a huge record
  appended_since_statvfs_ += static_cast<int64_t>(frame_.size());
  last_position_ = position;
  ++appends_;
  return position;
}

absl::Status FileUpdateLog::WaitDurable(LogPosition position) {
  if (!options_.sync || options_.read_only) {
    if (!has_failed_.load()) return absl::OkStatus();
    absl::MutexLock lock(&mu_);
    return FailedClosed();
  }
  bool leader = false;
  {
    absl::MutexLock lock(&sync_mu_);
    while (durable_ < position && !has_failed_.load() && !leader) {
      if (!syncing_) {
        syncing_ = leader = true;
      } else {
        sync_done_.Wait(&sync_mu_);
      }
    }
    if (durable_ >= position) return absl::OkStatus();
  }
  // The leader (or a caller after a failure): take the active segment and
  // the newest position under mu_, and sync without holding it, so appends
  // go on. Older segments were synced when they were closed (or opened).
  std::shared_ptr<File> file;
  LogPosition target = 0;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    target = last_position_;
    file = active_;
    if (!failed_.ok()) {
      status = FailedClosed();
    } else if (position > last_position_) {
      status = absl::InvalidArgumentError(absl::StrCat(
          "update log position ", position, " was not appended (the last is ", last_position_, ")"));
    }
  }
  if (!leader) return status;
  if (status.ok() && Sync(file->fd) != 0) {
    status = FileError("fdatasync", file->path, errno);
    absl::MutexLock lock(&mu_);
    FailClosed(status);
  }
  absl::MutexLock lock(&sync_mu_);
  syncing_ = false;
  if (status.ok() && target > durable_) durable_ = target;
  sync_done_.SignalAll();
  return status;
}

absl::Status FileUpdateLog::Read(
    LogPosition after,
    const std::function<absl::Status(LogPosition, const UpdateRecord&)>& visit) {
  struct Part {
    LogPosition first;
    int64_t end;
    std::shared_ptr<File> file;
  };
  std::vector<Part> parts;
  LogPosition through = 0;
  {
    // Descriptors opened under mu_ stay readable when DropThrough unlinks.
    absl::MutexLock lock(&mu_);
    through = last_position_;
    if (segments_.empty() || after >= through) return absl::OkStatus();
    if (after + 1 < segments_.front().first) {
      return absl::FailedPreconditionError(absl::StrCat(
          "update log ", options_.dir, ": records ", after + 1, " to ",
          segments_.front().first - 1, " were dropped (the log starts at position ",
          segments_.front().first, ")"));
    }
    for (size_t i = 0; i < segments_.size(); ++i) {
      const bool last = i + 1 == segments_.size();
      const LogPosition end_position = last ? through : segments_[i + 1].first - 1;
      if (end_position <= after) continue;
      const std::string path = PathOf(segments_[i].first);
      const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) return FileError("open", path, errno);
      parts.push_back(Part{segments_[i].first, last ? active_bytes_ : segments_[i].bytes,
                           std::make_shared<File>(fd, path)});
    }
  }
  for (size_t i = 0; i < parts.size(); ++i) {
    const Part& part = parts[i];
    internal::ScanOptions o;
    o.path = part.file->path;
    o.end = part.end;
    o.expect_first = part.first;
    o.after = after;
    o.through = through;
    o.visit = &visit;
    ASSIGN_OR_RETURN(const internal::SegmentScan scan, internal::ScanSegment(part.file->fd, o));
    // A closed segment must end where the next one starts (Open checked
    // only its header).
    if (i + 1 < parts.size() && scan.next != parts[i + 1].first) {
      return absl::DataLossError(absl::StrCat(
          "update log segment ", part.file->path, " ends before position ", scan.next,
          ", but the next segment ", parts[i + 1].file->path, " starts at position ",
          parts[i + 1].first, " (records are missing)"));
    }
  }
  return absl::OkStatus();
}

absl::Status FileUpdateLog::DropThrough(LogPosition position) {
  if (options_.read_only) {
    return absl::FailedPreconditionError(absl::StrCat("update log ", options_.dir, " is read-only"));
  }
  absl::MutexLock admin(&admin_mu_);
  std::vector<Segment> doomed;
  {
    absl::MutexLock lock(&mu_);
    size_t n = 0;  // segments whose every record is <= position; never the active one
    while (n + 1 < segments_.size() && segments_[n + 1].first - 1 <= position) ++n;
    doomed.assign(segments_.begin(), segments_.begin() + n);
    segments_.erase(segments_.begin(), segments_.begin() + n);
  }
  // Oldest first, so that a crash in between leaves a contiguous suffix.
  for (size_t i = 0; i < doomed.size(); ++i) {
    const std::string path = PathOf(doomed[i].first);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const absl::Status s = FileError("unlink", path, errno);
      absl::MutexLock lock(&mu_);
      segments_.insert(segments_.begin(), doomed.begin() + i, doomed.end());
      return s;
    }
  }
  return doomed.empty() ? absl::OkStatus() : internal::SyncDir(options_.dir);
}

absl::StatusOr<LogPosition> FileUpdateLog::CopyTo(absl::string_view dir) {
  if (options_.read_only) {
    return absl::FailedPreconditionError(absl::StrCat("update log ", options_.dir, " is read-only"));
  }
  absl::MutexLock admin(&admin_mu_);
  const std::string to(dir);
  std::error_code ec;
  if (std::filesystem::exists(to, ec)) {
    return absl::AlreadyExistsError(absl::StrCat("update log copy ", to, " exists"));
  }
  std::vector<Segment> closed;
  LogPosition last = 0;
  {
    absl::MutexLock lock(&mu_);
    if (!failed_.ok()) return FailedClosed();
    if (segments_.back().first <= last_position_) RETURN_IF_ERROR(Rotate(options_.sync));
    closed.assign(segments_.begin(), segments_.end() - 1);
    last = last_position_;
  }
  // Closed segments never change again (DropThrough waits for admin_mu_).
  std::filesystem::create_directories(to, ec);
  if (ec) return FileError("mkdir", to, ec.value());
  for (const Segment& seg : closed) {
    RETURN_IF_ERROR(internal::SyncLinkOrCopy(PathOf(seg.first),
                                             absl::StrCat(to, "/", internal::SegmentFileName(seg.first))));
  }
  // An empty segment carries the next position, so that the copy opened for
  // writing numbers on from there.
  ASSIGN_OR_RETURN(const int fd, internal::CreateSegment(to, last + 1));
  ::close(fd);
  const std::string parent = std::filesystem::path(to).parent_path().string();
  RETURN_IF_ERROR(internal::SyncDir(parent.empty() ? "." : parent));
  return last;
}

LogPosition FileUpdateLog::last_position() const {
  absl::MutexLock lock(&mu_);
  return last_position_;
}

UpdateLogStats FileUpdateLog::Stats() const {
  absl::MutexLock lock(&mu_);
  UpdateLogStats s;
  s.last_position = last_position_;
  if (!segments_.empty() && segments_.front().first <= last_position_) {
    s.first_position = segments_.front().first;
  }
  for (size_t i = 0; i + 1 < segments_.size(); ++i) s.bytes += segments_[i].bytes;
  if (!segments_.empty()) s.bytes += active_bytes_;
  s.segments = static_cast<int64_t>(segments_.size());
  s.syncs = syncs_.load(std::memory_order_relaxed);
  s.appends = appends_;
  return s;
}

}  // namespace embedserve
