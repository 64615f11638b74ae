#include "server/results_writer.h"

#include <google/protobuf/io/coded_stream.h>
#include <grpc/slice.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <utility>

namespace embedserve {
namespace {

// Protobuf wire format: field 1 / field 2 with wire type 2 (length-delimited).
constexpr char kResultsTag = (1 << 3) | 2;
constexpr char kValuesTag = (2 << 3) | 2;
// LookupResult's reserved field 15 (bytes): zeros before `values` that move
// it to an aligned offset. Two bytes at least (tag and length).
constexpr char kPaddingTag = (15 << 3) | 2;

void AppendVarint(uint64_t v, std::string* out) {
  uint8_t bytes[10];
  const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(v, bytes);
  out->append(reinterpret_cast<const char*>(bytes), end - bytes);
}

// The entry's header with `padding` bytes of field 15 (-1: none).
std::string HeaderWith(const std::string& body, int padding, size_t value_bytes) {
  std::string pad;
  if (padding >= 0) {
    pad.push_back(kPaddingTag);
    AppendVarint(static_cast<uint64_t>(padding), &pad);
    pad.append(static_cast<size_t>(padding), '\0');
  }
  const size_t result_bytes = body.size() + pad.size() + 1 +
                              google::protobuf::io::CodedOutputStream::VarintSize64(value_bytes) +
                              value_bytes;
  std::string header;
  header.push_back(kResultsTag);
  AppendVarint(result_bytes, &header);
  header += body;
  header += pad;
  header.push_back(kValuesTag);
  AppendVarint(value_bytes, &header);
  return header;
}

}  // namespace

std::string ResultsWriter::Header(absl::Span<const int64_t> shape, v1::ValueType dtype,
                                  size_t value_bytes, size_t at) {
  v1::LookupResult fields;  // all but values
  fields.mutable_shape()->Assign(shape.begin(), shape.end());
  fields.set_dtype(dtype);
  const std::string body = fields.SerializeAsString();
  // No padding, then 0, 1, 2, ... bytes of it (2, 3, 4, ... bytes with its
  // tag and length): the first header after which the values are aligned.
  // Padding can also lengthen the entry's length varint by a byte, so the
  // candidates run past kValuesAlignment; one of the first few fits.
  for (int padding = -1;; ++padding) {
    std::string header = HeaderWith(body, padding, value_bytes);
    if ((at + header.size()) % kValuesAlignment == 0) return header;
  }
}

void ResultsWriter::Add(absl::Span<const int64_t> shape, v1::ValueType dtype, size_t value_bytes) {
  Result r;
  r.header = Header(shape, dtype, value_bytes, total_bytes_);
  r.values_offset = total_bytes_ + r.header.size();
  total_bytes_ = r.values_offset + value_bytes;
  results_.push_back(std::move(r));
}

void ResultsWriter::Allocate() {
  // Refcounted and uninitialised (never inlined: the bytes stay where the
  // kernels write them), ours alone until Release(); kValuesAlignment - 1
  // bytes more, so that the answer can start at an aligned address.
  slice_ = grpc::Slice(grpc_slice_malloc_large(total_bytes_ + kValuesAlignment - 1),
                       grpc::Slice::STEAL_REF);
  char* const begin = reinterpret_cast<char*>(const_cast<uint8_t*>(slice_.begin()));
  skip_ = (kValuesAlignment - reinterpret_cast<uintptr_t>(begin) % kValuesAlignment) %
          kValuesAlignment;
  base_ = begin + skip_;
  for (const Result& r : results_) {
    std::memcpy(base_ + r.values_offset - r.header.size(), r.header.data(), r.header.size());
  }
}

grpc::ByteBuffer ResultsWriter::Release() {
  // The answer's bytes: a view of the allocation (or a copy, when small).
  grpc::Slice answer = slice_.sub(skip_, skip_ + total_bytes_);
  grpc::ByteBuffer buffer(&answer, 1);
  slice_ = grpc::Slice();
  base_ = nullptr;
  results_.clear();
  total_bytes_ = 0;
  return buffer;
}

}  // namespace embedserve
