#include "storage/pretrained.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/row_codec.h"
#include "core/status_macros.h"
#include "core/table_spec.h"

namespace embedserve {
namespace {

// The values are copied straight from the file into float buffers.
static_assert(std::endian::native == std::endian::little,
              "the loaders assume a little-endian host");

// One pread() (and one cancellation poll) reads at most this much.
constexpr int64_t kChunkBytes = int64_t{1} << 20;
// Longest .npy header accepted (numpy writes ~128 bytes for a 2-D array and
// itself refuses headers over 10000 bytes by default).
constexpr int64_t kMaxNpyHeaderBytes = 64 << 10;
// Longest word2vec binary header line ("rows dim": two int64s and a space).
constexpr int64_t kMaxWord2VecHeaderBytes = 256;
// Longest word in a word2vec binary file (the reference tool's limit is 50).
constexpr int64_t kMaxWordBytes = 64 << 10;

const char* FileKind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

// A parse error at a byte offset (and, for text, a line).
absl::Status At(absl::string_view path, int64_t offset, absl::string_view what, int64_t line = 0) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what, " (byte offset ", offset,
                                                 line > 0 ? absl::StrCat(", line ", line) : "",
                                                 ")"));
}

// The one place where a header's sizes become a byte count: rows x dim x
// item_bytes, with `rows` in (0, kMaxNumEmbeddings] and `dim` in
// (0, kMaxEmbeddingDim] (InvalidArgument naming the field otherwise), computed
// without overflow, and at most `available` (the bytes the file still holds
// after `offset`; DataLoss "truncated" otherwise). Callers allocate only
// after this returned OK, so an allocation never exceeds the file's size
// (times the float/item ratio).
absl::StatusOr<int64_t> CheckedMatrixBytes(absl::string_view path, int64_t offset,
                                           absl::string_view rows_field, int64_t rows,
                                           absl::string_view dim_field, int64_t dim,
                                           int64_t item_bytes, int64_t available) {
  if (rows <= 0 || rows > kMaxNumEmbeddings) {
    return At(path, offset, absl::StrCat(rows_field, " must be in [1, ", kMaxNumEmbeddings, "]"));
  }
  if (dim <= 0 || dim > kMaxEmbeddingDim) {
    return At(path, offset, absl::StrCat(dim_field, " must be in [1, ", kMaxEmbeddingDim, "]"));
  }
  int64_t values, bytes;
  if (__builtin_mul_overflow(rows, dim, &values) ||
      __builtin_mul_overflow(values, item_bytes, &bytes)) {
    return At(path, offset, absl::StrCat(rows_field, " x ", dim_field, " overflows"));
  }
  if (bytes > available) {
    return absl::DataLossError(absl::StrCat(path, ": truncated: ", rows, " x ", dim,
                                            " values need ", bytes, " bytes from byte offset ",
                                            offset, ", the file holds ", available));
  }
  return bytes;
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

// A regular file read through one descriptor, sequentially, in bounded
// chunks. Everything read lands either in a small window buffer (headers and
// text) or straight in the caller's buffer (Read). The file's size is taken
// once at Open; a read that comes back short of it, or a size or mtime that
// differs at Finish, means the file changed under us.
class FileReader {
 public:
  static absl::StatusOr<std::unique_ptr<FileReader>> Open(absl::string_view path,
                                                          const LoadOptions& options) {
    if (path.find('\0') != absl::string_view::npos) {
      // open() would stop at the NUL: a different file than the one named.
      return absl::InvalidArgumentError("the path contains a NUL byte");
    }
    auto r = std::unique_ptr<FileReader>(new FileReader(path, options));
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
      return absl::DataLossError(
          absl::StrCat("cannot stat ", r->path_, ": ", std::strerror(errno)));
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

  ~FileReader() {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& path() const { return path_; }
  int64_t size() const { return size_; }
  // File offset of the next byte a call consumes.
  int64_t offset() const { return window_end_ - static_cast<int64_t>(window_.size() - head_); }
  int64_t remaining() const { return size_ - offset(); }

  // Consumes the next `n` bytes into dst: what the window holds is copied,
  // the rest is read straight into dst. DataLoss "truncated" (naming `what`)
  // if the file ends first.
  absl::Status Read(void* dst, int64_t n, absl::string_view what) {
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

  // The next byte without consuming it, or -1 at the end of the file.
  absl::StatusOr<int> Peek() {
    if (head_ == window_.size()) {
      if (window_end_ == size_) return -1;
      RETURN_IF_ERROR(Fill());
    }
    return static_cast<unsigned char>(window_[head_]);
  }
  void Skip() { ++head_; }  // REQUIRES: Peek() returned a byte.

  // Consumes bytes up to the next `delim` (or the end of the file) and the
  // delimiter itself. Returns the bytes before the delimiter (valid until the
  // next call) and sets *found. InvalidArgument "longer than max_len" naming
  // `what` once more than max_len bytes come without the delimiter.
  absl::StatusOr<absl::string_view> Until(char delim, int64_t max_len, absl::string_view what,
                                          bool* found) {
    size_t scanned = head_;
    while (true) {
      // (memchr must not see the null data() of an empty window.)
      const void* hit = scanned == window_.size() ? nullptr
                                                  : std::memchr(window_.data() + scanned, delim,
                                                                window_.size() - scanned);
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
    return At(path_, offset(), absl::StrCat(what, " is longer than ", max_len, " bytes"));
  }

  // DataLoss if the file's size or mtime differ from when it was opened.
  absl::Status Finish() {
    struct stat now;
    if (::fstat(fd_, &now) != 0 || now.st_size != st_.st_size ||
        now.st_mtim.tv_sec != st_.st_mtim.tv_sec || now.st_mtim.tv_nsec != st_.st_mtim.tv_nsec) {
      return Changed(offset());
    }
    return absl::OkStatus();
  }

 private:
  FileReader(absl::string_view path, const LoadOptions& options) : path_(path), options_(options) {}

  absl::Status Changed(int64_t at) const {
    return absl::DataLossError(
        absl::StrCat(path_, " changed while it was being read (byte offset ", at, ")"));
  }

  // Reads exactly n bytes at file offset `at` (< size_) in chunks, polling
  // for cancellation before each.
  absl::Status PreadFully(char* dst, int64_t n, int64_t at) {
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

  // Appends the next chunk of the file to the window, first dropping the
  // consumed bytes. REQUIRES: window_end_ < size_.
  absl::Status Fill() {
    window_.erase(window_.begin(), window_.begin() + head_);
    head_ = 0;
    const int64_t n = std::min(kChunkBytes, size_ - window_end_);
    const size_t old = window_.size();
    window_.resize(old + n);
    RETURN_IF_ERROR(PreadFully(window_.data() + old, n, window_end_));
    window_end_ += n;
    return absl::OkStatus();
  }

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

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadRaw(FileReader& in, int64_t raw_dim) {
  if (raw_dim <= 0 || raw_dim > kMaxEmbeddingDim) {
    return absl::InvalidArgumentError(
        absl::StrCat(in.path(), ": raw_dim must be in [1, ", kMaxEmbeddingDim, "] for a raw file"));
  }
  const int64_t row_bytes = raw_dim * static_cast<int64_t>(sizeof(float));
  if (in.size() == 0 || in.size() % row_bytes != 0) {
    return absl::DataLossError(
        absl::StrCat(in.path(), ": ", in.size(), " bytes is not a whole number of ", raw_dim,
                     "-float rows (byte offset ", in.size() - in.size() % row_bytes, ")"));
  }
  const int64_t rows = in.size() / row_bytes;
  ASSIGN_OR_RETURN(const int64_t bytes, CheckedMatrixBytes(in.path(), 0, "rows", rows, "raw_dim",
                                                           raw_dim, sizeof(float), in.size()));
  std::vector<float> values(bytes / sizeof(float));
  RETURN_IF_ERROR(in.Read(values.data(), bytes, "the values"));
  return std::make_unique<PretrainedMatrix>(rows, raw_dim, std::move(values),
                                            std::vector<std::string>());
}

// The value of `key` in a .npy header (a Python dict literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }), or "" if
// absent. A shape is returned with its parentheses.
absl::string_view NpyField(absl::string_view header, absl::string_view key) {
  const size_t at = header.find(absl::StrCat("'", key, "'"));
  if (at == absl::string_view::npos) return "";
  const size_t colon = header.find(':', at + key.size() + 2);
  if (colon == absl::string_view::npos) return "";
  if (key == "shape") {
    const size_t open = header.find('(', colon);
    if (open == absl::string_view::npos) return "";
    const size_t close = header.find(')', open);
    if (close == absl::string_view::npos) return "";
    return header.substr(open, close - open + 1);
  }
  const size_t end = std::min(header.find_first_of(",}", colon), header.size());
  return absl::StripAsciiWhitespace(header.substr(colon + 1, end - colon - 1));
}

// "int32 (little-endian)" for a numpy type string such as '<i4', or "" when
// it is not one (a message describes the dtype, it never quotes the header).
std::string DescribeDtype(absl::string_view descr) {
  if (descr.size() < 5 || descr.size() > 6 || descr.front() != '\'' || descr.back() != '\'') {
    return "";
  }
  const char order = descr[1], kind = descr[2];
  int bytes;
  if (!absl::SimpleAtoi(descr.substr(3, descr.size() - 4), &bytes) || bytes <= 0 || bytes > 16) {
    return "";
  }
  const char* name;
  switch (kind) {
    case 'b':
      name = "bool";
      break;
    case 'i':
      name = "int";
      break;
    case 'u':
      name = "uint";
      break;
    case 'f':
      name = "float";
      break;
    case 'c':
      name = "complex";
      break;
    default:
      return "";
  }
  const char* endian;
  switch (order) {
    case '<':
      endian = " (little-endian)";
      break;
    case '>':
      endian = " (big-endian)";
      break;
    case '=':
      endian = " (native)";
      break;
    case '|':
      endian = "";
      break;
    default:
      return "";
  }
  return absl::StrCat(name, bytes * 8, endian);
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadNpy(FileReader& in) {
  unsigned char preamble[12];
  if (in.size() < 10) return At(in.path(), 0, "not a .npy file (too short)");
  RETURN_IF_ERROR(in.Read(preamble, 8, "the .npy preamble"));
  if (std::memcmp(preamble, "\x93NUMPY", 6) != 0) {
    return At(in.path(), 0, "not a .npy file (no \\x93NUMPY magic)");
  }
  const int major = preamble[6];
  int64_t header_len = 0;
  if (major == 1) {
    RETURN_IF_ERROR(in.Read(preamble + 8, 2, "the .npy header length"));
    header_len = preamble[8] | (preamble[9] << 8);
  } else if (major == 2 || major == 3) {
    RETURN_IF_ERROR(in.Read(preamble + 8, 4, "the .npy header length"));
    for (int i = 0; i < 4; ++i) header_len |= int64_t{preamble[8 + i]} << (8 * i);
  } else {
    return At(in.path(), 6, absl::StrCat("unsupported .npy version ", major));
  }
  const int64_t header_start = in.offset();
  if (header_len > kMaxNpyHeaderBytes) {
    return At(in.path(), header_start - 4,
              absl::StrCat("the header length is over ", kMaxNpyHeaderBytes, " bytes"));
  }
  std::string header(header_len, '\0');
  RETURN_IF_ERROR(in.Read(header.data(), header_len, "the .npy header"));
  const absl::string_view descr = NpyField(header, "descr"),
                          fortran = NpyField(header, "fortran_order"),
                          shape = NpyField(header, "shape");
  if (fortran != "False") {
    return At(in.path(), header_start, "Fortran-order arrays are not supported; save with C order");
  }
  int64_t item;
  if (descr == "'<f4'" || descr == "'=f4'") {
    item = 4;
  } else if (descr == "'<f2'" || descr == "'=f2'") {
    item = 2;
  } else if (descr == "'<f8'" || descr == "'=f8'") {
    item = 8;
  } else {
    const std::string dtype = DescribeDtype(descr);
    return At(in.path(), header_start,
              absl::StrCat("dtype ", dtype.empty() ? "(unrecognised)" : dtype,
                           " is not float32, float16 or float64 (little-endian)"));
  }
  std::vector<int64_t> dims;
  if (shape.size() < 2) return At(in.path(), header_start, "no shape in the header");
  for (absl::string_view part :
       absl::StrSplit(shape.substr(1, shape.size() - 2), ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d)) {
      return At(in.path(), header_start,
                absl::StrCat("shape field ", dims.size(), " is not an integer"));
    }
    dims.push_back(d);
  }
  if (dims.size() != 2) {
    return At(in.path(), header_start,
              absl::StrCat("the shape has ", dims.size(), " dimensions, not 2"));
  }
  const int64_t offset = in.offset();
  ASSIGN_OR_RETURN(const int64_t bytes,
                   CheckedMatrixBytes(in.path(), offset, "shape[0] (rows)", dims[0],
                                      "shape[1] (dim)", dims[1], item, in.remaining()));
  std::vector<float> values(dims[0] * dims[1]);
  if (item == 4) {
    RETURN_IF_ERROR(in.Read(values.data(), bytes, "the values"));
  } else {
    // Converted a chunk at a time: the scratch stays small whatever the file.
    std::vector<char> scratch(std::min(bytes, kChunkBytes));
    const int64_t per_chunk = static_cast<int64_t>(scratch.size()) / item;
    for (int64_t i = 0; i < static_cast<int64_t>(values.size()); i += per_chunk) {
      const int64_t n = std::min<int64_t>(per_chunk, values.size() - i);
      RETURN_IF_ERROR(in.Read(scratch.data(), n * item, "the values"));
      for (int64_t j = 0; j < n; ++j) {
        if (item == 2) {
          uint16_t h;
          std::memcpy(&h, scratch.data() + j * 2, 2);
          values[i + j] = HalfToFloat(h);
        } else {
          double d;
          std::memcpy(&d, scratch.data() + j * 8, 8);
          values[i + j] = static_cast<float>(d);
        }
      }
    }
  }
  return std::make_unique<PretrainedMatrix>(dims[0], dims[1], std::move(values),
                                            std::vector<std::string>());
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadText(FileReader& in, bool has_header) {
  int64_t line_no = 0, expect_rows = -1, dim = 0;
  std::vector<float> values;
  std::vector<std::string> words;
  std::vector<absl::string_view> parts;
  while (in.remaining() > 0) {
    const int64_t line_start = in.offset();
    bool found;
    ASSIGN_OR_RETURN(absl::string_view line, in.Until('\n', in.size(), "a line", &found));
    ++line_no;
    line = absl::StripTrailingAsciiWhitespace(line);
    if (line.empty()) continue;
    parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (has_header && expect_rows < 0) {
      if (parts.size() != 2 || !absl::SimpleAtoi(parts[0], &expect_rows) ||
          !absl::SimpleAtoi(parts[1], &dim)) {
        return At(in.path(), line_start, "expected a word2vec header 'rows dim'", line_no);
      }
      // Each value takes at least two bytes ("0 "): a header the rest of
      // the file cannot hold is refused before anything is reserved.
      RETURN_IF_ERROR(CheckedMatrixBytes(in.path(), line_start, "rows in the header", expect_rows,
                                         "dim in the header", dim, 2, in.remaining())
                          .status());
      values.reserve(expect_rows * dim);
      continue;
    }
    if (dim == 0) {
      dim = static_cast<int64_t>(parts.size()) - 1;
      if (dim > kMaxEmbeddingDim) {
        return At(in.path(), line_start,
                  absl::StrCat("a line has more than ", kMaxEmbeddingDim, " numbers"), line_no);
      }
    }
    if (static_cast<int64_t>(parts.size()) != dim + 1 || dim <= 0) {
      return At(
          in.path(), line_start,
          absl::StrCat("expected a word and ", dim, " numbers, got ", parts.size(), " fields"),
          line_no);
    }
    if (has_header && static_cast<int64_t>(words.size()) == expect_rows) {
      return absl::DataLossError(absl::StrCat(in.path(), ": the header promises ", expect_rows,
                                              " rows, the file has more (byte offset ", line_start,
                                              ", line ", line_no, ")"));
    }
    words.emplace_back(parts[0]);
    for (int64_t d = 0; d < dim; ++d) {
      float v;
      if (!absl::SimpleAtof(parts[d + 1], &v)) {
        return At(in.path(), line_start + (parts[d + 1].data() - line.data()),
                  absl::StrCat("field ", d + 2, " is not a number"), line_no);
      }
      values.push_back(v);
    }
  }
  const int64_t rows = static_cast<int64_t>(words.size());
  if (has_header && rows != expect_rows) {
    return absl::DataLossError(absl::StrCat(in.path(), ": the header promises ", expect_rows,
                                            " rows, the file has ", rows, " (byte offset ",
                                            in.size(), ")"));
  }
  if (rows == 0) return At(in.path(), 0, "no vectors");
  return std::make_unique<PretrainedMatrix>(rows, dim, std::move(values), std::move(words));
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadWord2VecBinary(FileReader& in) {
  bool found;
  ASSIGN_OR_RETURN(absl::string_view header,
                   in.Until('\n', kMaxWord2VecHeaderBytes, "the header line", &found));
  std::vector<absl::string_view> parts = absl::StrSplit(header, ' ', absl::SkipEmpty());
  int64_t rows, dim;
  if (!found || parts.size() != 2 || !absl::SimpleAtoi(parts[0], &rows) ||
      !absl::SimpleAtoi(parts[1], &dim)) {
    return At(in.path(), 0, "expected a word2vec header 'rows dim'");
  }
  ASSIGN_OR_RETURN(const int64_t bytes,
                   CheckedMatrixBytes(in.path(), 0, "rows in the header", rows, "dim in the header",
                                      dim, sizeof(float), in.remaining()));
  std::vector<float> values(bytes / sizeof(float));
  std::vector<std::string> words;
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  for (int64_t r = 0; r < rows; ++r) {
    while (true) {
      ASSIGN_OR_RETURN(const int c, in.Peek());
      if (c != '\n' && c != ' ') break;
      in.Skip();
    }
    const int64_t word_start = in.offset();
    ASSIGN_OR_RETURN(absl::string_view word, in.Until(' ', kMaxWordBytes, "a word", &found));
    if (!found) {
      return absl::DataLossError(absl::StrCat(in.path(), ": truncated in row ", r, " (byte offset ",
                                              word_start, "): ", rows, " rows promised"));
    }
    words.emplace_back(word);
    const absl::Status s = in.Read(values.data() + r * dim, row_bytes, "a row");
    if (absl::IsDataLoss(s) && in.remaining() < row_bytes) {
      return absl::DataLossError(absl::StrCat(in.path(), ": truncated in row ", r, " (byte offset ",
                                              word_start, "): ", rows, " rows promised"));
    }
    RETURN_IF_ERROR(s);
  }
  return std::make_unique<PretrainedMatrix>(rows, dim, std::move(values), std::move(words));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 const LoadOptions& options) {
  ASSIGN_OR_RETURN(std::unique_ptr<FileReader> in, FileReader::Open(path, options));
  absl::StatusOr<std::unique_ptr<PretrainedMatrix>> m;
  switch (format) {
    case PretrainedFormat::kRaw:
      m = LoadRaw(*in, options.raw_dim);
      break;
    case PretrainedFormat::kNpy:
      m = LoadNpy(*in);
      break;
    case PretrainedFormat::kWord2VecText:
    case PretrainedFormat::kGloveText:
      m = LoadText(*in, format == PretrainedFormat::kWord2VecText);
      break;
    case PretrainedFormat::kWord2VecBinary:
      m = LoadWord2VecBinary(*in);
      break;
    default:
      return absl::InvalidArgumentError("unknown format");
  }
  // A file rewritten during the load may have parsed into garbage or
  // failed to parse: either way the true cause is the change.
  const absl::Status changed = in->Finish();
  if (!changed.ok() && !absl::IsCancelled(m.status())) return changed;
  return m;
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 int64_t raw_dim) {
  LoadOptions options;
  options.raw_dim = raw_dim;
  return LoadPretrained(path, format, options);
}

}  // namespace embedserve
