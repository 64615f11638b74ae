#ifndef EMBEDSERVE_STORAGE_INTERNAL_LOG_SEGMENT_H_
#define EMBEDSERVE_STORAGE_INTERNAL_LOG_SEGMENT_H_

// The files of the update log (storage/update_log.h): segment names, the
// system calls it makes (each error names the path and strerror), and the
// scan of one segment that both opening and reading the log use.
// Thread-compatible functions on files the caller owns.

#include <sys/types.h>
#include <unistd.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "core/update_log.h"

namespace embedserve::internal {

// "log-<first position, 20 digits>.seg", and back (false for other names).
std::string SegmentFileName(LogPosition first);
bool ParseSegmentFileName(absl::string_view name, LogPosition* first);

// `op` of `path` failed with errno `err`: ResourceExhausted for ENOSPC and
// EDQUOT, NotFound for ENOENT, Internal otherwise; "<op> <path>: <strerror>".
absl::Status FileError(absl::string_view op, absl::string_view path, int err);

// The segment files of `dir`, sorted by first position; leftover
// "*.seg.tmp" files are removed when `remove_temporaries`.
absl::StatusOr<std::vector<LogPosition>> ListSegments(const std::string& dir,
                                                      bool remove_temporaries);

// fsync of a directory, so that entries created or removed in it persist.
absl::Status SyncDir(const std::string& dir);

// pwrite(2) signature; the log's writes go through one (tests inject errors).
using PwriteFn = std::function<ssize_t(int fd, const void* buf, size_t n, off_t offset)>;

// Writes all of `data` at `offset`, looping on short writes and EINTR.
// A write that returns 0 is an error (EIO) rather than a spin.
absl::Status WriteFully(const PwriteFn& pwrite_fn, int fd, int64_t offset, absl::string_view data,
                        absl::string_view path);

// Creates segment `first` in `dir` with its header: written to a temporary
// name and renamed. With `sync` (fdatasync(2), or what stands in for it):
// the file synced with it before the rename and the directory fsynced
// after, so that a segment file never exists with a torn header, even
// after a power loss. Without (null): neither; the caller syncs both later,
// and until then a power loss may leave the segment missing, empty or with
// a zeroed header, which FileUpdateLog::Open takes as an empty last
// segment. Returns a descriptor open for reading and writing (the caller
// closes it). AlreadyExists if the segment does.
absl::StatusOr<int> CreateSegment(const std::string& dir, LogPosition first,
                                  const std::function<int(int fd)>& sync = ::fdatasync);

// Whether `header` (what a segment file holds of its first
// kSegmentHeaderBytes, maybe fewer) is what a power loss leaves of a header
// written without a sync: nothing, or zeros.
bool HeaderNeverReachedDisk(absl::string_view header);

// fdatasyncs `from`, then hard-links it as `to`, or copies it there (and
// syncs the copy) where the filesystem refuses the link (another device,
// no hard links). The caller syncs `to`'s directory.
absl::Status SyncLinkOrCopy(const std::string& from, const std::string& to);

// What ScanSegment found.
struct SegmentScan {
  LogPosition first = 0;     // from the header
  LogPosition next = 0;      // the position after the last good record
  int64_t good_bytes = 0;    // header and good frames: where a torn tail starts
  std::string torn;          // why the rest is a torn tail (empty: none)
};

struct ScanOptions {
  // The file's name in messages.
  std::string path;
  // Read [0, end) of the file.
  int64_t end = 0;
  // The first position the header must carry (0: any).
  LogPosition expect_first = 0;
  // Whether a bad last frame may be a torn tail (the last segment).
  bool last_segment = false;
  // Visit records with positions in (after, through] (visit may be null).
  LogPosition after = 0;
  LogPosition through = ~LogPosition{0};
  const std::function<absl::Status(LogPosition, const UpdateRecord&)>* visit = nullptr;
};

// Reads segment `fd` frame by frame through a buffer (never the whole file
// unless one record is), checking the header, every frame's CRC and length
// and that positions run on from the header's. Stops after `through`.
//
// The torn-tail rule: in the last segment, a frame is a torn tail (scan
// stops before it, OK, SegmentScan::torn says why) when its header is
// incomplete (fewer than 8 bytes left), its length runs past the end and no
// good frame of the next position lies after its header (else the length
// itself was damaged), its frame ends exactly at the end of the file and
// fails its CRC, or every byte from its start to the end of the file is
// zero (a file extended but never written, as a power loss can leave).
// A frame that fails its CRC with bytes after it is never torn: a crash
// tears only the last write. Every other bad frame, any bad
// frame of an earlier segment, a frame whose CRC matches but whose payload
// does not decode or carries the wrong position, and a bad header are
// DataLoss "update log segment <path>: ... at byte offset <o> (position
// <p>[, table '<t>' by its unchecked header])". Errors from `visit` are
// returned as they are.
absl::StatusOr<SegmentScan> ScanSegment(int fd, const ScanOptions& options);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_LOG_SEGMENT_H_
