#include "client/internal/npy.h"

#include <cstdio>
#include <limits>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/npy_format.h"

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

absl::Status NpyFileReader::Bad(absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(path_, ": ", what));
}

absl::StatusOr<std::unique_ptr<NpyFileReader>> NpyFileReader::Open(const std::string& path,
                                                                   Kind kind) {
  const bool vector = kind == Kind::kInt64Vector;
  std::unique_ptr<NpyFileReader> r(new NpyFileReader(path, vector ? 8 : 4));
  r->in_.open(path, std::ios::binary);
  if (!r->in_) return r->Bad("cannot open it");
  r->in_.seekg(0, std::ios::end);
  const int64_t size = r->in_.tellg();
  r->in_.seekg(0);
  unsigned char preamble[kNpyMagicBytes + 4] = {};
  if (size < kNpyMagicBytes + 2 ||
      !r->in_.read(reinterpret_cast<char*>(preamble), kNpyMagicBytes) ||
      absl::string_view(reinterpret_cast<char*>(preamble), 6) != "\x93NUMPY") {
    return r->Bad("not a .npy file");
  }
  const absl::StatusOr<int> length_bytes = NpyHeaderLengthBytes(preamble[6]);
  if (!length_bytes.ok()) return r->Bad(length_bytes.status().message());
  if (!r->in_.read(reinterpret_cast<char*>(preamble + kNpyMagicBytes), *length_bytes)) {
    return r->Bad("not a .npy file (too short)");
  }
  int64_t header_len = 0;
  for (int i = 0; i < *length_bytes; ++i) {
    header_len |= int64_t{preamble[kNpyMagicBytes + i]} << (8 * i);
  }
  if (header_len > kMaxNpyHeaderBytes) {
    return r->Bad(absl::StrCat("the header length is over ", kMaxNpyHeaderBytes, " bytes"));
  }
  std::string header(header_len, '\0');
  if (!r->in_.read(header.data(), header_len)) return r->Bad("the header is cut short");
  const NpyDict dict = SplitNpyDict(header);
  if (dict.fortran_order != "False") {
    return r->Bad("Fortran-order arrays are not supported; save with C order");
  }
  const absl::string_view want = vector ? "'<i8'" : "'<f4'";
  if (dict.descr != want && dict.descr != (vector ? "'=i8'" : "'=f4'")) {
    const std::string dtype = DescribeNpyDtype(dict.descr);
    return r->Bad(absl::StrCat("dtype ", dtype.empty() ? "(unrecognised)" : dtype, " is not ",
                               vector ? "int64" : "float32", " (little-endian)"));
  }
  const absl::StatusOr<std::vector<int64_t>> dims = ParseNpyShape(dict.shape);
  if (!dims.ok()) return r->Bad(dims.status().message());
  const size_t want_dims = vector ? 1 : 2;
  if (dims->size() != want_dims) {
    return r->Bad(absl::StrCat("the shape has ", dims->size(), " dimensions, not ", want_dims));
  }
  r->rows_ = (*dims)[0];
  r->cols_ = vector ? 1 : (*dims)[1];
  const int64_t data = size - r->in_.tellg();
  if (r->rows_ < 0 || r->cols_ < 0) return r->Bad("the shape is negative");
  if (r->cols_ > 0 &&
      r->rows_ > std::numeric_limits<int64_t>::max() / r->cols_ / r->item_bytes_) {
    return r->Bad("the shape is too large");
  }
  if (r->rows_ * r->cols_ * r->item_bytes_ > data) {
    return r->Bad(absl::StrCat("the shape says ", r->rows_ * r->cols_ * r->item_bytes_,
                               " bytes of values but the file holds ", data));
  }
  return r;
}

absl::Status NpyFileReader::Read(int64_t n, void* out) {
  if (!in_.read(static_cast<char*>(out), n * cols_ * item_bytes_)) {
    return absl::DataLossError(absl::StrCat("cannot read ", path_));
  }
  return absl::OkStatus();
}

}  // namespace embedserve::internal
