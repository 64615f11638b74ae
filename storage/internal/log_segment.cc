#include "storage/internal/log_segment.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <string.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "storage/internal/log_record_codec.h"

namespace embedserve::internal {
namespace {

constexpr absl::string_view kPrefix = "log-", kSuffix = ".seg", kTmpSuffix = ".seg.tmp";
constexpr int64_t kChunkBytes = int64_t{1} << 20;

// File bytes [start_, start_ + len_) in 8-aligned memory, start_ a multiple
// of 8: a frame at a multiple of 8 in the file lies aligned here too.
// A file of at least kMapBytes (a restart reads whole segments) is mapped
// instead, read-only, once: the page cache's pages themselves, so that its
// bytes are not copied before the CRC check reads them (a pread copy cost
// ~0.3 s per GiB of log). Only if the file still holds `end` bytes then: a
// file that shrank is read (and reported) as before. Nothing truncates a
// segment below a record that was read (Open cuts a torn tail before any
// Read; CopyTo links closed segments only). The mapping is reference
// counted (pin()): records read from it carry it (UpdateRecord::pin), so
// that replay's workers read pushes in place after the scan moved on.
class ReadBuffer {
 public:
  ReadBuffer(int fd, const std::string& path, int64_t end) : fd_(fd), path_(path), end_(end) {}
  ReadBuffer(const ReadBuffer&) = delete;
  ReadBuffer& operator=(const ReadBuffer&) = delete;

  // Makes [at, at + n) available. REQUIRES: at + n <= end.
  absl::Status Ensure(int64_t at, int64_t n) {
    if (at >= start_ && at + n <= start_ + len_) return absl::OkStatus();
    if (!tried_map_) {
      tried_map_ = true;
      struct stat st;
      if (end_ >= kMapBytes && ::fstat(fd_, &st) == 0 && st.st_size >= end_) {
        void* m = ::mmap(nullptr, static_cast<size_t>(end_), PROT_READ, MAP_SHARED | MAP_POPULATE,
                         fd_, 0);
        if (m != MAP_FAILED) {
          const size_t bytes = static_cast<size_t>(end_);
          map_ = std::shared_ptr<const void>(m, [bytes](const void* p) {
            ::munmap(const_cast<void*>(p), bytes);
          });
          base_ = static_cast<const char*>(m);
          start_ = 0;
          len_ = end_;
          return absl::OkStatus();
        }
      }
    }
    const int64_t start = at & ~int64_t{7};
    const int64_t want = std::max(at + n - start, std::min(kChunkBytes, end_ - start));
    if (want > cap_) {
      buf_.reset(new uint64_t[(want + 7) / 8]);
      cap_ = (want + 7) / 8 * 8;
    }
    char* dst = reinterpret_cast<char*>(buf_.get());
    for (int64_t got = 0; got < want;) {
      const ssize_t r = ::pread(fd_, dst + got, want - got, start + got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) return FileError("read", path_, errno);
      if (r == 0) {
        return absl::DataLossError(absl::StrCat("update log segment ", path_, " ends at byte ",
                                                start + got, ", before ", start + want,
                                                " (it shrank while being read)"));
      }
      got += r;
    }
    base_ = dst;
    start_ = start;
    len_ = want;
    return absl::OkStatus();
  }
  const char* At(int64_t at) const { return base_ + (at - start_); }
  // The mapping, once the file is mapped (then every At stays valid while
  // a copy is held, after this buffer is gone); null while bytes are read
  // into the reused buffer.
  const std::shared_ptr<const void>& pin() const { return map_; }

 private:
  static constexpr int64_t kMapBytes = int64_t{4} << 20;
  const int fd_;
  const std::string& path_;
  const int64_t end_;
  bool tried_map_ = false;
  std::shared_ptr<const void> map_;  // the whole file [0, end_) once mapped
  const char* base_ = nullptr;   // file byte start_
  std::unique_ptr<uint64_t[]> buf_;
  int64_t cap_ = 0, start_ = 0, len_ = 0;
};

// The offset of the first good frame (CRC) of record `position` at a
// multiple of 8 in [from, end), or -1.
absl::StatusOr<int64_t> FindFrame(ReadBuffer* buf, int64_t from, int64_t end,
                                  LogPosition position) {
  for (int64_t at = (from + 7) & ~int64_t{7}; at + 16 <= end; at += 8) {
    RETURN_IF_ERROR(buf->Ensure(at, 16));
    if (std::memcmp(buf->At(at) + 8, &position, 8) != 0) continue;  // cheap filter
    const FrameHeader h = DecodeFrameHeader(buf->At(at));
    if (h.payload_bytes > end - at - 8) continue;
    RETURN_IF_ERROR(buf->Ensure(at, 8 + h.payload_bytes));
    if (PayloadCrcMatches(h, absl::string_view(buf->At(at) + 8, h.payload_bytes))) return at;
  }
  return -1;
}

}  // namespace

std::string SegmentFileName(LogPosition first) {
  return absl::StrFormat("%s%020u%s", kPrefix, first, kSuffix);
}

bool ParseSegmentFileName(absl::string_view name, LogPosition* first) {
  if (name.size() != kPrefix.size() + 20 + kSuffix.size() || !absl::StartsWith(name, kPrefix) ||
      !absl::EndsWith(name, kSuffix)) {
    return false;
  }
  const absl::string_view digits = name.substr(kPrefix.size(), 20);
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return false;
  }
  return absl::SimpleAtoi(digits, first);
}

absl::Status FileError(absl::string_view op, absl::string_view path, int err) {
  const std::string msg = absl::StrCat(op, " ", path, ": ", ::strerror(err));
  if (err == ENOSPC || err == EDQUOT) return absl::ResourceExhaustedError(msg);
  if (err == ENOENT) return absl::NotFoundError(msg);
  return absl::InternalError(msg);
}

absl::StatusOr<std::vector<LogPosition>> ListSegments(const std::string& dir,
                                                      bool remove_temporaries) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return FileError("opendir", dir, errno);
  std::vector<LogPosition> firsts;
  std::vector<std::string> temporaries;
  while (const dirent* e = ::readdir(d)) {
    const absl::string_view name = e->d_name;
    LogPosition first = 0;
    if (ParseSegmentFileName(name, &first)) firsts.push_back(first);
    if (absl::StartsWith(name, kPrefix) && absl::EndsWith(name, kTmpSuffix)) {
      temporaries.emplace_back(name);
    }
  }
  ::closedir(d);
  if (remove_temporaries) {
    for (const std::string& t : temporaries) {
      const std::string path = absl::StrCat(dir, "/", t);
      if (::unlink(path.c_str()) != 0) return FileError("unlink", path, errno);
    }
  }
  std::sort(firsts.begin(), firsts.end());
  return firsts;
}

absl::Status SyncDir(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return FileError("open", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  return rc == 0 ? absl::OkStatus() : FileError("fsync", dir, err);
}

absl::Status WriteFully(const PwriteFn& pwrite_fn, int fd, int64_t offset, absl::string_view data,
                        absl::string_view path) {
  for (size_t done = 0; done < data.size();) {
    const ssize_t w = pwrite_fn(fd, data.data() + done, data.size() - done, offset + done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return FileError("write", path, w < 0 ? errno : EIO);
    done += w;
  }
  return absl::OkStatus();
}

bool HeaderNeverReachedDisk(absl::string_view header) {
  return header.size() <= kSegmentHeaderBytes &&
         std::all_of(header.begin(), header.end(), [](char c) { return c == 0; });
}

absl::StatusOr<int> CreateSegment(const std::string& dir, LogPosition first,
                                  const std::function<int(int fd)>& sync) {
  const std::string path = absl::StrCat(dir, "/", SegmentFileName(first));
  const std::string tmp = absl::StrCat(path, ".tmp");
  if (::access(path.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(absl::StrCat("update log segment ", path, " exists"));
  }
  const int fd = ::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return FileError("create", tmp, errno);
  const std::string header = EncodeSegmentHeader(first);
  absl::Status s = WriteFully(::pwrite, fd, 0, header, tmp);
  if (s.ok() && sync && sync(fd) != 0) s = FileError("fdatasync", tmp, errno);
  if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = FileError("rename", tmp, errno);
  if (s.ok() && sync) s = SyncDir(dir);
  if (!s.ok()) {
    ::close(fd);
    ::unlink(tmp.c_str());
    return s;
  }
  return fd;
}

absl::Status SyncLinkOrCopy(const std::string& from, const std::string& to) {
  const int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return FileError("open", from, errno);
  absl::Status s;
  if (::fdatasync(in) != 0) s = FileError("fdatasync", from, errno);
  if (s.ok() && ::link(from.c_str(), to.c_str()) != 0) {
    if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EOPNOTSUPP) {
      s = FileError("link", to, errno);
    } else {
      const int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
      if (out < 0) s = FileError("create", to, errno);
      std::vector<char> chunk(kChunkBytes);
      for (int64_t at = 0; s.ok();) {
        const ssize_t r = ::pread(in, chunk.data(), chunk.size(), at);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) s = FileError("read", from, errno);
        if (r <= 0) break;
        s = WriteFully(::pwrite, out, at, absl::string_view(chunk.data(), r), to);
        at += r;
      }
      if (s.ok() && ::fdatasync(out) != 0) s = FileError("fdatasync", to, errno);
      if (out >= 0) ::close(out);
    }
  }
  ::close(in);
  return s;
}

absl::StatusOr<SegmentScan> ScanSegment(int fd, const ScanOptions& o) {
  ReadBuffer buf(fd, o.path, o.end);
  const std::string where = absl::StrCat("update log segment ", o.path);
  if (o.end < static_cast<int64_t>(kSegmentHeaderBytes)) {
    return absl::DataLossError(absl::StrCat(where, " is ", o.end, " bytes, shorter than its ",
                                            kSegmentHeaderBytes, "-byte header"));
  }
  RETURN_IF_ERROR(buf.Ensure(0, kSegmentHeaderBytes));
  absl::StatusOr<LogPosition> first =
      DecodeSegmentHeader(absl::string_view(buf.At(0), kSegmentHeaderBytes));
  if (!first.ok()) return absl::DataLossError(absl::StrCat(where, ": ", first.status().message()));
  if (o.expect_first != 0 && *first != o.expect_first) {
    return absl::DataLossError(absl::StrCat(where, " starts at position ", *first, ", expected ",
                                            o.expect_first, " (records are missing or repeated)"));
  }
  SegmentScan scan;
  scan.first = scan.next = *first;
  int64_t at = kSegmentHeaderBytes;
  DecodedRecord rec;
  while (at < o.end && scan.next - 1 < o.through) {
    const int64_t left = o.end - at;
    std::string bad;
    bool incomplete = false;
    absl::string_view payload;
    if (left < static_cast<int64_t>(kFrameHeaderBytes)) {
      bad = absl::StrCat("frame header incomplete (", left, " bytes)");
      incomplete = true;
    } else {
      RETURN_IF_ERROR(buf.Ensure(at, kFrameHeaderBytes));
      const FrameHeader h = DecodeFrameHeader(buf.At(at));
      const int64_t room = left - static_cast<int64_t>(kFrameHeaderBytes);
      if (h.payload_bytes > room) {
        bad = absl::StrCat("frame length ", h.payload_bytes, " runs past the end of the file (",
                           room, " bytes left)");
        incomplete = true;
        RETURN_IF_ERROR(buf.Ensure(at, left));
        payload = absl::string_view(buf.At(at) + kFrameHeaderBytes, room);
      } else {
        RETURN_IF_ERROR(buf.Ensure(at, kFrameHeaderBytes + h.payload_bytes));
        payload = absl::string_view(buf.At(at) + kFrameHeaderBytes, h.payload_bytes);
        if (!PayloadCrcMatches(h, payload)) {
          bad = "checksum mismatch";
          incomplete = h.payload_bytes == room;  // nothing after it
        }
      }
    }
    if (bad.empty()) {
      absl::Status s = DecodePayload(payload, &rec);
      if (s.ok() && rec.position != scan.next) {
        s = absl::DataLossError(absl::StrCat("record carries position ", rec.position));
      }
      if (!s.ok()) {
        const std::optional<PayloadHead> head = PeekPayloadHead(payload);
        return absl::DataLossError(absl::StrCat(where, ": ", s.message(), " at byte offset ", at,
                                                " (position ", scan.next,
                                                head ? absl::StrCat(", table '", head->table, "'")
                                                     : "",
                                                ")"));
      }
      if (o.visit != nullptr && scan.next > o.after) {
        rec.record.pin = buf.pin();  // the payload lies in the mapping, if any
        RETURN_IF_ERROR((*o.visit)(scan.next, rec.record));
      }
      at += kFrameHeaderBytes + payload.size();
      scan.good_bytes = at;
      ++scan.next;
      continue;
    }
    // (Before the buffer is reused below, which leaves `payload` dangling.)
    const std::optional<PayloadHead> head = PeekPayloadHead(payload);
    bool zeros = o.last_segment;  // every byte from `at` to the end is zero
    for (int64_t z = at; z < o.end && zeros; z += kChunkBytes) {
      const int64_t n = std::min(kChunkBytes, o.end - z);
      RETURN_IF_ERROR(buf.Ensure(z, n));
      const char* p = buf.At(z);
      zeros = std::all_of(p, p + n, [](char c) { return c == 0; });
    }
    // A length that runs past the end looks like a torn write, unless a
    // good frame of the next position follows (then the length was damaged).
    int64_t follows = -1;
    if (o.last_segment && incomplete && !zeros) {
      ASSIGN_OR_RETURN(follows, FindFrame(&buf, at + 8, o.end, scan.next + 1));
    }
    if (o.last_segment && (incomplete || zeros) && follows < 0) {
      scan.good_bytes = at;
      scan.torn = absl::StrCat(bad, zeros ? ", zeros to the end" : "", " at byte offset ", at,
                               " of ", o.end);
      return scan;
    }
    return absl::DataLossError(absl::StrCat(
        where, ": ", bad, " at byte offset ", at, " (position ", scan.next,
        head ? absl::StrCat(", table '", head->table, "' by its unchecked header") : "",
        follows >= 0 ? absl::StrCat("; record ", scan.next + 1, " follows at byte offset ", follows)
                     : "",
        o.last_segment ? "; so it is not a torn tail" : "", ")"));
  }
  scan.good_bytes = at;
  return scan;
}

}  // namespace embedserve::internal
