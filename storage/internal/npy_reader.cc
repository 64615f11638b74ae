#include "storage/internal/npy_reader.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/float16.h"
#include "base/status_macros.h"

namespace embedserve::internal {
namespace {

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

}  // namespace

absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view header, absl::string_view path,
                                         int64_t offset) {
  const absl::string_view descr = NpyField(header, "descr"),
                          fortran = NpyField(header, "fortran_order"),
                          shape = NpyField(header, "shape");
  if (fortran != "False") {
    return FormatErrorAt(path, offset, "Fortran-order arrays are not supported; save with C order");
  }
  NpyHeader out;
  if (descr == "'<f4'" || descr == "'=f4'") {
    out.item_bytes = 4;
  } else if (descr == "'<f2'" || descr == "'=f2'") {
    out.item_bytes = 2;
  } else if (descr == "'<f8'" || descr == "'=f8'") {
    out.item_bytes = 8;
  } else {
    const std::string dtype = DescribeDtype(descr);
    return FormatErrorAt(path, offset,
                         absl::StrCat("dtype ", dtype.empty() ? "(unrecognised)" : dtype,
                                      " is not float32, float16 or float64 (little-endian)"));
  }
  std::vector<int64_t> dims;
  if (shape.size() < 2) return FormatErrorAt(path, offset, "no shape in the header");
  for (absl::string_view part :
       absl::StrSplit(shape.substr(1, shape.size() - 2), ',', absl::SkipWhitespace())) {
    int64_t d;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(part), &d)) {
      return FormatErrorAt(path, offset,
                           absl::StrCat("shape field ", dims.size(), " is not an integer"));
    }
    dims.push_back(d);
  }
  if (dims.size() != 2) {
    return FormatErrorAt(path, offset,
                         absl::StrCat("the shape has ", dims.size(), " dimensions, not 2"));
  }
  out.rows = dims[0];
  out.dim = dims[1];
  return out;
}

absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadNpy(SafeFile& in) {
  unsigned char preamble[12];
  if (in.size() < 10) return FormatErrorAt(in.path(), 0, "not a .npy file (too short)");
  RETURN_IF_ERROR(in.Read(preamble, 8, "the .npy preamble"));
  if (std::memcmp(preamble, "\x93NUMPY", 6) != 0) {
    return FormatErrorAt(in.path(), 0, "not a .npy file (no \\x93NUMPY magic)");
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
    return FormatErrorAt(in.path(), 6, absl::StrCat("unsupported .npy version ", major));
  }
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
