#include "storage/internal/npy_reader.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/float16.h"
#include "base/npy_format.h"
#include "base/status_macros.h"

namespace embedserve::internal {

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view header, absl::string_view path,
                                         int64_t offset) {
  const NpyDict dict = SplitNpyDict(header);
  if (dict.fortran_order != "False") {
    return FormatErrorAt(path, offset, "Fortran-order arrays are not supported; save with C order");
  }
  NpyHeader out;
  const absl::string_view descr = dict.descr;
  if (descr == "'<f4'" || descr == "'=f4'") {
    out.item_bytes = 4;
  } else if (descr == "'<f2'" || descr == "'=f2'") {
    out.item_bytes = 2;
  } else if (descr == "'<f8'" || descr == "'=f8'") {
    out.item_bytes = 8;
  } else {
    const std::string dtype = DescribeNpyDtype(descr);
    return FormatErrorAt(path, offset,
                         absl::StrCat("dtype ", dtype.empty() ? "(unrecognised)" : dtype,
                                      " is not float32, float16 or float64 (little-endian)"));
  }
  absl::StatusOr<std::vector<int64_t>> dims = ParseNpyShape(dict.shape);
  if (!dims.ok()) return FormatErrorAt(path, offset, dims.status().message());
  if (dims->size() != 2) {
    return FormatErrorAt(path, offset,
                         absl::StrCat("the shape has ", dims->size(), " dimensions, not 2"));
  }
  out.rows = (*dims)[0];
  out.dim = (*dims)[1];
  return out;
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadNpy(SafeFile& in) {
  unsigned char preamble[12];
  if (in.size() < 10) return FormatErrorAt(in.path(), 0, "not a .npy file (too short)");
  RETURN_IF_ERROR(in.Read(preamble, 8, "the .npy preamble"));
  if (std::memcmp(preamble, "\x93NUMPY", 6) != 0) {
    return FormatErrorAt(in.path(), 0, "not a .npy file (no \\x93NUMPY magic)");
  }
  const absl::StatusOr<int> length_bytes = NpyHeaderLengthBytes(preamble[6]);
  if (!length_bytes.ok()) return FormatErrorAt(in.path(), 6, length_bytes.status().message());
  RETURN_IF_ERROR(in.Read(preamble + 8, *length_bytes, "the .npy header length"));
  int64_t header_len = 0;
  for (int i = 0; i < *length_bytes; ++i) header_len |= int64_t{preamble[8 + i]} << (8 * i);
  const int64_t header_start = in.offset();
  if (header_len > kMaxNpyHeaderBytes) {
    return FormatErrorAt(in.path(), header_start - 4,
                         absl::StrCat("the header length is over ", kMaxNpyHeaderBytes, " bytes"));
  }
  std::string header(header_len, '\0');
  RETURN_IF_ERROR(in.Read(header.data(), header_len, "the .npy header"));
  ASSIGN_OR_RETURN(const NpyHeader h, ParseNpyHeader(header, in.path(), header_start));
  const int64_t item = h.item_bytes;
  ASSIGN_OR_RETURN(const int64_t bytes,
                   CheckedMatrixBytes(in.path(), in.offset(), "shape[0] (rows)", h.rows,
                                      "shape[1] (dim)", h.dim, item, in.remaining()));
  std::vector<float> values(h.rows * h.dim);
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
          uint16_t half;
          std::memcpy(&half, scratch.data() + j * 2, 2);
          values[i + j] = HalfToFloat(half);
        } else {
          double d;
          std::memcpy(&d, scratch.data() + j * 8, 8);
          values[i + j] = static_cast<float>(d);
        }
      }
    }
  }
  return std::make_unique<PretrainedMatrix>(h.rows, h.dim, std::move(values),
                                            std::vector<std::string>());
}

}  // namespace embedserve::internal
