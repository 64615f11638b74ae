#ifndef EMBEDSERVE_STORAGE_INTERNAL_NPY_READER_H_
#define EMBEDSERVE_STORAGE_INTERNAL_NPY_READER_H_

// NumPy .npy files (format versions 1, 2 and 3): a 2-D, C-order array of
// float32, float16 or float64, little-endian (or native, which is the same
// here), loaded as float32. Thread-safe: calls share nothing.

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/npy_format.h"
#include "storage/internal/safe_file.h"
#include "storage/pretrained.h"

namespace embedserve::internal {

// Longest .npy header accepted: base/npy_format.h.
using ::embedserve::kMaxNpyHeaderBytes;

// What an accepted .npy header says about the array.
struct NpyHeader {
  int64_t item_bytes;  // 2, 4 or 8: float16, float32 or float64
  int64_t rows, dim;   // shape[0], shape[1]; not range-checked here
};

// Parses the header dict, a Python literal such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// (the keys in any order). `path` and `offset` (the header's byte offset in
// the file) are for messages only. InvalidArgument, in this order of checks,
// when fortran_order is not False, the dtype is not '<f2', '<f4', '<f8' (or
// '=' for '<'; the message describes a recognised dtype such as "int32
// (little-endian)", never quotes the header), the shape is missing, a shape
// field is not an integer, or the shape is not 2-D.
absl::StatusOr<NpyHeader> ParseNpyHeader(absl::string_view header, absl::string_view path,
                                         int64_t offset);

// Reads a whole .npy file from `in` (positioned at its start). Errors as
// LoadPretrained's (storage/pretrained.h): InvalidArgument for a bad magic,
// an unsupported version, a header over kMaxNpyHeaderBytes or one that
// ParseNpyHeader refuses, or a shape out of range (CheckedMatrixBytes);
// DataLoss when the file holds less than the header promises; DataLoss or
// Cancelled from `in`. Words are empty.
absl::StatusOr<std::unique_ptr<PretrainedMatrix>> LoadNpy(SafeFile& in);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_STORAGE_INTERNAL_NPY_READER_H_
