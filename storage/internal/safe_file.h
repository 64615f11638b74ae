#ifndef EMBEDSERVE_STORAGE_INTERNAL_SAFE_FILE_H_
#define EMBEDSERVE_STORAGE_INTERNAL_SAFE_FILE_H_

// The one way the pretrained-file readers (storage/internal/*_reader.h) touch
// a file, which they must treat as hostile: opened once (beneath a root when
// one is given), checked to be a regular file, read through that descriptor
// only with pread() in bounded chunks (never mapped, so a file truncated
// during a load cannot fault the process), with cancellation polled between
// chunks; and the one place where a header's sizes become a byte count
// (CheckedMatrixBytes), so that nothing is allocated before it is known to
// fit in the file.

#include <sys/stat.h>

#include <bit>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "storage/pretrained.h"

namespace embedserve::internal {

// The readers copy values straight from the file into float buffers.
static_assert(std::endian::native == std::endian::little,
              "the pretrained-file readers assume a little-endian host");

// One pread() (and one cancellation poll) reads at most this much; also the
// most a reader's conversion scratch buffer holds.
inline constexpr int64_t kChunkBytes = int64_t{1} << 20;

// InvalidArgument "<path>: <what> (byte offset <offset>[, line <line>])": a
// file that is not in the expected format. `line` (1-based) is given for text
// formats, 0 = none. `what` must never quote the file's contents.
absl::Status FormatErrorAt(absl::string_view path, int64_t offset, absl::string_view what,
                           int64_t line = 0);

// The one place where a header's sizes become a byte count: rows x dim x
// item_bytes, with `rows` in (0, kMaxNumEmbeddings] and `dim` in
// (0, kMaxEmbeddingDim] (core/table_spec.h; InvalidArgument naming
// `rows_field` or `dim_field` otherwise, or both if the product overflows
// int64), and at most `available` (the bytes the file still holds after
// `offset`; DataLoss "truncated" otherwise). Callers allocate only after this
// returned OK, so an allocation never exceeds the file's size (times the
// float/item ratio). REQUIRES: item_bytes > 0.
absl::StatusOr<int64_t> CheckedMatrixBytes(absl::string_view path, int64_t offset,
                                           absl::string_view rows_field, int64_t rows,
                                           absl::string_view dim_field, int64_t dim,
                                           int64_t item_bytes, int64_t available);

// A regular file read through one descriptor, sequentially, in chunks of at
// most kChunkBytes. Everything read lands either in a small window buffer
// (headers and text, see Until) or straight in the caller's buffer (Read).
// The file's size is taken once at Open; a read that comes back short of it
// is DataLoss "changed while it was being read", and so is a size or mtime
// that differs at Finish. Before each pread() options.cancelled (if set) is
// polled; once it returns true the call fails with Cancelled.
// Thread-compatible: one load uses one SafeFile.
class SafeFile {
 public:
  // Opens `path` (without blocking: a FIFO is refused, not waited on) and
  // checks the descriptor with fstat. With options.root set, `path` must be
  // relative and is resolved by the kernel beneath root (openat2
  // RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS).
  // Errors:
  //   InvalidArgument   `path` holds a NUL byte (open() would stop at it: a
  //                     different file than the one named); not a regular
  //                     file (FIFO, device, directory, socket); other open
  //                     errors.
  //   NotFound          no such file, or a path component is missing.
  //   PermissionDenied  the file cannot be opened for reading; with a root,
  //                     an absolute or empty path, a step out of root or a
  //                     symbolic link anywhere on the way.
  //   FailedPrecondition root cannot be opened, or the kernel has no openat2.
  //   ResourceExhausted out of descriptors or memory, or the file is larger
  //                     than options.max_file_bytes (when > 0).
  //   DataLoss          fstat failed.
  // `options` must outlive the SafeFile (its `cancelled` is polled).
  static absl::StatusOr<std::unique_ptr<SafeFile>> Open(absl::string_view path,
                                                        const LoadOptions& options);

  ~SafeFile();
  SafeFile(const SafeFile&) = delete;
  SafeFile& operator=(const SafeFile&) = delete;

  // The path as given to Open (messages name it).
  const std::string& path() const { return path_; }
  // The file's size at Open.
  int64_t size() const { return size_; }
  // File offset of the next byte a call consumes.
  int64_t offset() const { return window_end_ - static_cast<int64_t>(window_.size() - head_); }
  // Bytes from offset() to size().
  int64_t remaining() const { return size_ - offset(); }

  // Consumes the next `n` bytes into dst: what the window holds is copied,
  // the rest is read straight into dst. DataLoss "truncated in <what>" if
  // fewer than n bytes remain (nothing is read then); DataLoss or Cancelled
  // from the reads. REQUIRES: n >= 0; dst holds n bytes.
  absl::Status Read(void* dst, int64_t n, absl::string_view what);

  // The next byte without consuming it, or -1 at the end of the file.
  absl::StatusOr<int> Peek();
  // Consumes the byte Peek returned. REQUIRES: Peek() returned a byte.
  void Skip() { ++head_; }

  // Consumes bytes up to the next `delim` (or the end of the file) and the
  // delimiter itself. Returns the bytes before the delimiter (valid until the
  // next call) and sets *found (false: the file ended first). InvalidArgument
  // "<what> is longer than <max_len> bytes" once more than max_len bytes come
  // without the delimiter, so the window never grows past about
  // max_len + kChunkBytes.
  absl::StatusOr<absl::string_view> Until(char delim, int64_t max_len, absl::string_view what,
                                          bool* found);

  // DataLoss if the file's size or mtime differ from when it was opened.
  absl::Status Finish();

 private:
  SafeFile(absl::string_view path, const LoadOptions& options);

  absl::Status Changed(int64_t at) const;
  // Reads exactly n bytes at file offset `at` (< size_) in chunks, polling
  // for cancellation before each.
  absl::Status PreadFully(char* dst, int64_t n, int64_t at);
  // Appends the next chunk of the file to the window, first dropping the
  // consumed bytes. REQUIRES: window_end_ < size_.
  absl::Status Fill();

  const std::string path_;
  const LoadOptions& options_;
  int fd_ = -1;
  struct stat st_ = {};
  int64_t size_ = 0;
  // window_[head_, end) are read but not consumed bytes, ending at file
  // offset window_end_.
  std::vector<char> window_;
  size_t head_ = 0;
  int64_t window_end_ = 0;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_SAFE_FILE_H_
