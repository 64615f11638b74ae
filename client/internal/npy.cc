#include "client/internal/npy.h"

#include <cstdio>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace embedserve::internal {

namespace {

// The header of a C-order array of `descr` values and `shape` (as Python
// writes a tuple).
std::string NpyHeader(absl::string_view descr, absl::string_view shape) {
  std::string dict =
      absl::StrFormat("{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
  // magic (6) + version (2) + length (2) + dict + '\n', padded to 64.
  const size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  const auto len = static_cast<uint16_t>(dict.size());
  std::string header("\x93NUMPY\x01\x00", 8);
  header.push_back(static_cast<char>(len & 0xff));
  header.push_back(static_cast<char>(len >> 8));
  return header + dict;
}

}  // namespace

std::string NpyFloat32Header(int64_t rows, int64_t cols) {
  return NpyHeader("<f4", absl::StrFormat("(%d, %d)", rows, cols));
}

std::string NpyInt64VectorHeader(int64_t n) {
  return NpyHeader("<i8", absl::StrFormat("(%d,)", n));
}

NpyFileWriter::NpyFileWriter(std::string path, std::string part_path)
    : path_(std::move(path)), part_path_(std::move(part_path)) {}

absl::StatusOr<std::unique_ptr<NpyFileWriter>> NpyFileWriter::Create(const std::string& path) {
  std::unique_ptr<NpyFileWriter> writer(new NpyFileWriter(path, path + ".part"));
  writer->out_.open(writer->part_path_, std::ios::binary | std::ios::trunc);
  if (!writer->out_) {
    writer->committed_ = true;  // nothing was created, nothing to remove
    return writer->WriteFailed();
  }
  return writer;
}

NpyFileWriter::~NpyFileWriter() {
  if (committed_) return;
  out_.close();
  std::remove(part_path_.c_str());
}

absl::Status NpyFileWriter::WriteFailed() const {
  return absl::UnavailableError(absl::StrCat("cannot write ", part_path_));
}

absl::Status NpyFileWriter::WriteHeader(int64_t rows, int64_t cols) {
  return Append(NpyFloat32Header(rows, cols));
}

absl::Status NpyFileWriter::WriteInt64VectorHeader(int64_t n) {
  return Append(NpyInt64VectorHeader(n));
}

absl::Status NpyFileWriter::Append(absl::string_view bytes) {
  out_.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return out_ ? absl::OkStatus() : WriteFailed();
}

absl::Status NpyFileWriter::Commit() {
  if (!out_.flush()) return WriteFailed();
  out_.close();
  if (!out_) return WriteFailed();
  if (std::rename(part_path_.c_str(), path_.c_str()) != 0) {
    return absl::UnavailableError(absl::StrCat("cannot rename ", part_path_, " to ", path_));
  }
  committed_ = true;
  return absl::OkStatus();
}

}  // namespace embedserve::internal
