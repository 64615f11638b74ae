#include "storage/internal/safe_file.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/table_spec.h"

namespace embedserve::internal {
namespace {

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// Opens `path` (relative) beneath the directory `root`: the kernel resolves
// it and refuses any step out of root and any symbolic link. Returns the
// descriptor, -1 with errno set for ordinary open errors, or
// PermissionDenied for a path that is not confined.
absl::StatusOr<int> OpenBeneath(const std::string& root, const std::string& path) {
  if (path.empty() || path[0] == '/') {
    return absl::PermissionDeniedError(absl::StrCat(
        "'", path, "' is not a path relative to the load directory (absolute paths are refused)"));
  }
  const int dir = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("the load directory ", root, " cannot be opened: ", std::strerror(errno)));
  }
  struct open_how how;
  std::memset(&how, 0, sizeof(how));
  how.flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
  const int fd = static_cast<int>(::syscall(SYS_openat2, dir, path.c_str(), &how, sizeof(how)));
  const int err = errno;
  ::close(dir);
  if (fd < 0 && (err == EXDEV || err == ELOOP)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "'", path, "' leaves the load directory or goes through a symbolic link; refused"));
  }
  if (fd < 0 && err == ENOSYS) {
    return absl::FailedPreconditionError("this kernel has no openat2 (Linux >= 5.6 is needed)");
  }
  errno = err;
  return fd;
}

}  // namespace

absl::Status FormatErrorAt(absl::string_view path, int64_t offset, absl::string_view what,
                           int64_t line) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " (byte offset ", offset,
                                                 line > 0 ? absl::StrCat(", line ", line) : "",
                                                 ")"));
}

absl::StatusOr<int64_t> CheckedMatrixBytes(absl::string_view path, int64_t offset,
                                           absl::string_view rows_field, int64_t rows,
                                           absl::string_view dim_field, int64_t dim,
                                           int64_t item_bytes, int64_t available) {
  if (rows <= 0 || rows > kMaxNumEmbeddings) {
    return FormatErrorAt(path, offset,
                         absl::StrCat(rows_field, " must be in [1, ", kMaxNumEmbeddings, "]"));
  }
  if (dim <= 0 || dim > kMaxEmbeddingDim) {
    return FormatErrorAt(path, offset,
                         absl::StrCat(dim_field, " must be in [1, ", kMaxEmbeddingDim, "]"));
  }
  int64_t values, bytes;
  if (__builtin_mul_overflow(rows, dim, &values) ||
      __builtin_mul_overflow(values, item_bytes, &bytes)) {
    return FormatErrorAt(path, offset, absl::StrCat(rows_field, " x ", dim_field, " overflows"));
  }
  if (bytes > available) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: ", rows, " x ", dim,
                                            " values need ", bytes, " bytes from byte offset ",
                                            offset, ", the file holds ", available));
  }
  return bytes;
}
absl::StatusOr<std::unique_ptr<SafeFile>> SafeFile::Open(absl::string_view path,
                                                         const LoadOptions& options) {
  if (path.find('\0') != absl::string_view::npos) {
    // open() would stop at the NUL: a different file than the one named.
    return absl::InvalidArgumentError("the path contains a NUL byte");
  }
  auto r = std::unique_ptr<SafeFile>(new SafeFile(path, options));
  // O_NONBLOCK: opening a FIFO with no writer would otherwise block forever.
  if (options.root.empty()) {
    r->fd_ = ::open(r->path_.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  } else {
    ASSIGN_OR_RETURN(r->fd_, OpenBeneath(options.root, r->path_));
  }
  if (r->fd_ < 0) {
    const int err = errno;
    const std::string what = absl::StrCat("cannot open ", r->path_, ": ", std::strerror(err));
    switch (err) {
      case ENOENT:
      case ENOTDIR:
        return absl::NotFoundError(what);
      case EACCES:
      case EPERM:
        return absl::PermissionDeniedError(what);
      case EMFILE:
      case ENFILE:
      case ENOMEM:
        return absl::ResourceExhaustedError(what);
      case ENXIO:  // a socket, or a device with no driver
        return absl::InvalidArgumentError(absl::StrCat(what, " (not a regular file)"));
      default:
        return absl::InvalidArgumentError(what);
    }
  }
  if (::fstat(r->fd_, &r->st_) != 0) {
    return absl::DataLossError(absl::StrCat("cannot stat ", r->path_, ": ", std::strerror(errno)));
  }
  if (!S_ISREG(r->st_.st_mode)) {
    return absl::InvalidArgumentError(
        absl::StrCat(r->path_, " is ", FileKind(r->st_.st_mode), ", not a regular file"));
  }
  r->size_ = r->st_.st_size;
  if (options.max_file_bytes > 0 && r->size_ > options.max_file_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(
        r->path_, " has ", r->size_, " bytes, more than the limit of ", options.max_file_bytes));
  }
  return r;
}

SafeFile::SafeFile(absl::string_view path, const LoadOptions& options)
    : path_(path), options_(options) {}

SafeFile::~SafeFile() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status SafeFile::Read(void* dst, int64_t n, absl::string_view what) {
  if (n > remaining()) {
    return absl::DataLossError(absl::StrCat(path_, ": truncated in ", what, " (byte offset ",
                                            offset(), "): ", n, " bytes needed, ", remaining(),
                                            " left"));
  }
  char* out = static_cast<char*>(dst);
  const int64_t from_window = std::min<int64_t>(n, window_.size() - head_);
  if (from_window > 0) std::memcpy(out, window_.data() + head_, from_window);
  head_ += from_window;
  if (n > from_window) {
    RETURN_IF_ERROR(PreadFully(out + from_window, n - from_window, window_end_));
    window_end_ += n - from_window;
  }
  return absl::OkStatus();
}

absl::StatusOr<int> SafeFile::Peek() {
  if (head_ == window_.size()) {
    if (window_end_ == size_) return -1;
    RETURN_IF_ERROR(Fill());
  }
  return static_cast<unsigned char>(window_[head_]);
}

absl::StatusOr<absl::string_view> SafeFile::Until(char delim, int64_t max_len,
                                                  absl::string_view what, bool* found) {
  size_t scanned = head_;
  while (true) {
    // (memchr must not see the null data() of an empty window.)
    const void* hit = scanned == window_.size()
                          ? nullptr
                          : std::memchr(window_.data() + scanned, delim, window_.size() - scanned);
    if (hit != nullptr) {
      const size_t at = static_cast<const char*>(hit) - window_.data();
      if (static_cast<int64_t>(at - head_) > max_len) break;
      absl::string_view token(window_.data() + head_, at - head_);
      head_ = at + 1;
      *found = true;
      return token;
    }
    scanned = window_.size();
    if (static_cast<int64_t>(scanned - head_) > max_len) break;
    if (window_end_ == size_) {  // last token, no delimiter
      absl::string_view token(window_.data() + head_, window_.size() - head_);
      head_ = window_.size();
      *found = false;
      return token;
    }
    const size_t kept = head_;
    RETURN_IF_ERROR(Fill());
    scanned -= kept - head_;  // Fill moved the unread bytes to the front
  }
  return FormatErrorAt(path_, offset(), absl::StrCat(what, " is longer than ", max_len, " bytes"));
}

absl::Status SafeFile::Finish() {
  struct stat now;
  if (::fstat(fd_, &now) != 0 || now.st_size != st_.st_size ||
      now.st_mtim.tv_sec != st_.st_mtim.tv_sec || now.st_mtim.tv_nsec != st_.st_mtim.tv_nsec) {
    return Changed(offset());
  }
  return absl::OkStatus();
}

absl::Status SafeFile::Changed(int64_t at) const {
  return absl::DataLossError(
      absl::StrCat(path_, " changed while it was being read (byte offset ", at, ")"));
}

absl::Status SafeFile::PreadFully(char* dst, int64_t n, int64_t at) {
  while (n > 0) {
    if (options_.cancelled && options_.cancelled()) {
      return absl::CancelledError(
          absl::StrCat("loading ", path_, " was cancelled (byte offset ", at, ")"));
    }
    const ssize_t got = ::pread(fd_, dst, std::min(n, kChunkBytes), at);
    if (got < 0) {
      if (errno == EINTR) continue;
      return absl::DataLossError(
          absl::StrCat("cannot read ", path_, " (byte offset ", at, "): ", std::strerror(errno)));
    }
    if (got == 0) return Changed(at);  // shorter than fstat said at the start
    dst += got;
    at += got;
    n -= got;
  }
  return absl::OkStatus();
}

absl::Status SafeFile::Fill() {
  window_.erase(window_.begin(), window_.begin() + head_);
  head_ = 0;
  const int64_t n = std::min(kChunkBytes, size_ - window_end_);
  const size_t old = window_.size();
  window_.resize(old + n);
  RETURN_IF_ERROR(PreadFully(window_.data() + old, n, window_end_));
  window_end_ += n;
  return absl::OkStatus();
}

}  // namespace embedserve::internal
