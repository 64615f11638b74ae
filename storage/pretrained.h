#ifndef EMBEDSERVE_STORAGE_PRETRAINED_H_
#define EMBEDSERVE_STORAGE_PRETRAINED_H_

// Pretrained embedding files, for nn.Embedding.from_pretrained-style loads.

#include <cstdint>
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

// A loaded matrix. For a float32 .npy the values are a view of the
// memory-mapped file (nothing is read whole); other dtypes and the text
// formats are converted into an owned buffer.
class PretrainedMatrix {
 public:
  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }
  absl::Span<const float> values() const { return values_; }
  // One word per row for word2vec and GloVe files; empty otherwise.
  const std::vector<std::string>& words() const { return words_; }
  ~PretrainedMatrix();

 private:
  friend absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(const std::string&,
                                                                          PretrainedFormat,
                                                                          int64_t);
  int64_t rows_ = 0, dim_ = 0;
  absl::Span<const float> values_;
  std::vector<float> owned_;
  std::vector<std::string> words_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
};

// Loads `path`. `raw_dim` is the row width for kRaw (ignored otherwise).
// NotFound: no such file. InvalidArgument: not this format, wrong dtype or
// shape, a bad number. DataLoss: truncated. Every message names the file and
// the byte offset (and line, for text) where it went wrong.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadPretrained(const std::string& path,
                                                                 PretrainedFormat format,
                                                                 int64_t raw_dim = 0);

}  // namespace embedserve

#endif  // EMBEDSERVE_STORAGE_PRETRAINED_H_
