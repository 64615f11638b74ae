#ifndef EMBEDSERVE_CLIENT_INTERNAL_NPY_H_
#define EMBEDSERVE_CLIENT_INTERNAL_NPY_H_

// Writing float32 matrices (and int64 vectors) as NumPy .npy files (format
// version 1.0), for `embedctl export`. numpy.load and the server's npy loader read them.

#include <cstdint>
#include <fstream>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace embedserve::internal {

// The header of a .npy file holding a C-order little-endian float32 matrix
// of `rows` x `cols`: magic, version 1.0, the header length (little-endian
// uint16) and the dict, padded with spaces and ended by '\n' so that the
// data starts on a 64-byte boundary (as numpy writes it).
// REQUIRES: rows >= 0, cols >= 0.
std::string NpyFloat32Header(int64_t rows, int64_t cols);
// The same for a little-endian int64 vector of `n` values (a dynamic
// table's ids, beside its rows). REQUIRES: n >= 0.
std::string NpyInt64VectorHeader(int64_t n);

// A .npy file written beside its destination, as `path` + ".part", and
// renamed over `path` only by Commit: a write that fails or is abandoned
// leaves an existing file at `path` as it was, and removes the .part.
//
// Not thread-safe.
class NpyFileWriter {
 public:
  // Opens `path`.part for writing. Unavailable ("cannot write <path>.part")
  // if it cannot be created.
  static absl::StatusOr<std::unique_ptr<NpyFileWriter>> Create(const std::string& path);
  // Removes the .part unless Commit succeeded.
  ~NpyFileWriter();
  NpyFileWriter(const NpyFileWriter&) = delete;
  NpyFileWriter& operator=(const NpyFileWriter&) = delete;

  // Writes NpyFloat32Header(rows, cols). Unavailable if the write fails.
  // REQUIRES: called once, before Append.
  absl::Status WriteHeader(int64_t rows, int64_t cols);
  // Writes NpyInt64VectorHeader(n) instead (same REQUIRES).
  absl::Status WriteInt64VectorHeader(int64_t n);
  // Appends rows as little-endian float32 bytes (int64 after
  // WriteInt64VectorHeader). Unavailable if the write fails. The caller
  // writes rows * cols (n) values in all; nothing checks it.
  absl::Status Append(absl::string_view float32_bytes);
  // Flushes, closes and renames the .part over the destination.
  // Unavailable ("cannot write ..." or "cannot rename ...") if that fails;
  // the .part is then removed.
  absl::Status Commit();

  const std::string& part_path() const { return part_path_; }

 private:
  NpyFileWriter(std::string path, std::string part_path);
  absl::Status WriteFailed() const;

  const std::string path_;
  const std::string part_path_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_NPY_H_
