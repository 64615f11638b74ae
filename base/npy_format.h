#ifndef EMBEDSERVE_BASE_NPY_FORMAT_H_
#define EMBEDSERVE_BASE_NPY_FORMAT_H_

// The parts of NumPy's .npy format (versions 1, 2 and 3) that both the
// server's loader (storage/internal/npy_reader) and embedctl's reader
// (client/internal/npy) parse: the preamble and the header dict. Each caller
// decides which dtypes and shapes it takes and how it names the file in its
// messages. Thread-safe: functions of their arguments only.

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedserve {

// Longest .npy header accepted (numpy writes ~128 bytes for a 2-D array and
// itself refuses headers over 10000 bytes by default).
inline constexpr int64_t kMaxNpyHeaderBytes = 64 << 10;

// Bytes before the header length: magic "\x93NUMPY" and the version.
inline constexpr int64_t kNpyMagicBytes = 8;

// The width of the header-length field for the version byte `major` that
// follows the magic: 2 (version 1) or 4 (versions 2 and 3). InvalidArgument
// ("unsupported .npy version N") otherwise.
absl::StatusOr<int> NpyHeaderLengthBytes(int major);

// The raw fields of a header dict, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// (keys in any order): descr with its quotes, fortran_order as written,
// shape with its parentheses; "" for a field that is absent. Views into
// `header`.
struct NpyDict {
  absl::string_view descr, fortran_order, shape;
};
NpyDict SplitNpyDict(absl::string_view header);

// The dimensions of a shape field ("(3, 4)", "(5,)", "()"). InvalidArgument
// "no shape in the header" for "", or "shape field I is not an integer".
// Values are not range-checked.
absl::StatusOr<std::vector<int64_t>> ParseNpyShape(absl::string_view shape);

// "int32 (little-endian)" for a descr such as '<i4' (with its quotes), or ""
// when it is not one: messages describe a dtype, they never quote a header.
std::string DescribeNpyDtype(absl::string_view descr);

}  // namespace embedserve

#endif  // EMBEDSERVE_BASE_NPY_FORMAT_H_
