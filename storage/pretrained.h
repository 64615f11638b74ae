#ifndef EMBEDSERVE_STORAGE_PRETRAINED_H_
#define EMBEDSERVE_STORAGE_PRETRAINED_H_

// Pretrained embedding files, for nn.Embedding.from_pretrained-style loads.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace embedserve {

enum class PretrainedFormat {
  kNpy,             // NumPy .npy, 2-D, C order, float32 / float16 / float64 (little-endian)
  kWord2VecText,    // "N D" header line, then N lines "word v1 .. vD"
  kWord2VecBinary,  // "N D\n" header, then N x (word, space, D float32 LE[, "\n"])
  kGloveText,       // lines "word v1 .. vD", D from the first line
  kRaw,             // little-endian float32, row-major, dim given
};

// A loaded matrix: rows x dim float32 values, row-major, in a buffer it owns
// (whatever the file's dtype). Immutable once loaded; thread-compatible.
class PretrainedMatrix {
 public:
  // REQUIRES: values.size() == rows * dim; words empty or words.size() == rows.
  PretrainedMatrix(int64_t rows, int64_t dim, std::vector<float> values,
                   std::vector<std::string> words)
      : rows_(rows), dim_(dim), values_(std::move(values)), words_(std::move(words)) {}

  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  absl::Span<const float> values() const { return values_; }
  // One word per row for word2vec and GloVe files; empty otherwise.
  const std::vector<std::string>& words() const { return words_; }

 private:
  int64_t rows_, dim_;
  std::vector<float> values_;
  std::vector<std::string> words_;
};

struct LoadOptions {
  // Row width of a kRaw file, in (0, kMaxEmbeddingDim]; ignored otherwise.
  int64_t raw_dim = 0;
  // A file larger than this many bytes is refused before anything is read
  // (ResourceExhausted). 0 = no limit.
  int64_t max_file_bytes = 0;
  // Polled between chunks (about 1 MiB each) of the read; once it returns
  // true the load stops with Cancelled. Empty = never cancelled. Called on
  // the loading thread.
  std::function<bool()> cancelled;
  // Confinement: when set, `path` must be relative and is resolved beneath
  // this directory by the kernel (openat2 RESOLVE_BENEATH), with no symbolic
  // link followed anywhere on the way (RESOLVE_NO_SYMLINKS): an absolute
  // path, a ".." that climbs out, a symlink or a symlinked folder is
  // PermissionDenied and nothing is read. The resolved descriptor is the one
  // checked and read.
  std::string root;
};

// Loads `path`: opens it once (without blocking: a FIFO is refused, not
// waited on), checks that the descriptor is a regular file and reads through
// that descriptor only, in bounded chunks, into buffers the matrix owns (the
// file is never mapped, so a file truncated during the load cannot fault the
// process). Every size derived from a header is checked for overflow and
// against the file's size before anything is allocated, so a small file
// never causes a large allocation. Thread-safe (loads share nothing).
//
// Errors (the message names the file, and where it went wrong the byte
// offset and, for text, the line; it never quotes the file's contents):
//   NotFound          no such file (or a path component is missing).
//   PermissionDenied  the file cannot be opened for reading.
//   InvalidArgument   not a regular file (FIFO, device, directory, socket);
//                     not this format; wrong dtype or shape; a bad number; a
//                     row count above kMaxNumEmbeddings or a dim above
//                     kMaxEmbeddingDim (core/table_spec.h), naming the field;
//                     a raw_dim out of range; a word2vec binary header line
//                     over 256 bytes or a word over 64 KiB; a path with a
//                     NUL byte.
//   DataLoss          the file is shorter than its header promises
//                     ("truncated"), or it changed (size or mtime) or shrank
//                     while it was being read ("changed while it was being
//                     read"), or the OS reported a read error.
//   ResourceExhausted the file is larger than options.max_file_bytes, or the
//                     process is out of file descriptors.
//   Cancelled         options.cancelled returned true.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 const LoadOptions& options);

// As above with only LoadOptions::raw_dim set.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(absl::string_view path,
                                                                 PretrainedFormat format,
                                                                 int64_t raw_dim = 0);

}  // namespace embedserve

#endif  // EMBEDSERVE_STORAGE_PRETRAINED_H_
