#ifndef EMBEDSERVE_CLIENT_INTERNAL_NPY_H_
#define EMBEDSERVE_CLIENT_INTERNAL_NPY_H_

// Writing float32 matrices (and int64 vectors) as NumPy .npy files (format
// version 1.0), for `embedctl export`, and reading them back a chunk at a
// time, for `embedctl import-rows`. numpy.load and the server's npy loader
// read what this writes; the reader takes what numpy.save writes.

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

// A .npy file (versions 1-3) read a chunk of rows at a time: a C-order
// little-endian float32 matrix (rows x cols) or an int64 vector (rows x 1).
//
// Not thread-safe.
class NpyFileReader {
 public:
  enum class Kind { kFloat32Matrix, kInt64Vector };
  // Opens `path` and checks its header. InvalidArgument naming the path and
  // what is wrong: it cannot be opened, it is not a .npy file, its version,
  // a header over kMaxNpyHeaderBytes, Fortran order, a dtype other than
  // '<f4' ('<i8' for kInt64Vector; the message describes the dtype), a
  // shape that is not 2-D (1-D), a negative or overflowing shape, or a file
  // shorter than its shape says.
  static absl::StatusOr<std::unique_ptr<NpyFileReader>> Open(const std::string& path, Kind kind);
  NpyFileReader(const NpyFileReader&) = delete;
  NpyFileReader& operator=(const NpyFileReader&) = delete;

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }  // 1 for a vector
  // Reads the next `n` rows (n * cols values, 4 or 8 bytes each) into
  // `out`. DataLoss naming the path if the file ends or a read fails.
  // REQUIRES: n >= 0 and no more than the rows not read yet.
  absl::Status Read(int64_t n, void* out);

 private:
  NpyFileReader(std::string path, int64_t item_bytes) : path_(std::move(path)), item_bytes_(item_bytes) {}
  absl::Status Bad(absl::string_view what) const;

  const std::string path_;
  const int64_t item_bytes_;
  std::ifstream in_;
  int64_t rows_ = 0, cols_ = 1;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_NPY_H_
