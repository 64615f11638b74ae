#include "server/results_writer.h"

#include <google/protobuf/io/coded_stream.h>

#include <cstring>
#include <string>
#include <utility>

namespace embedserve {
namespace {

// Protobuf wire format: field 1 / field 2 with wire type 2 (length-delimited).
constexpr char kResultsTag = (1 << 3) | 2;
constexpr char kValuesTag = (2 << 3) | 2;

void AppendVarint(uint64_t v, std::string* out) {
  uint8_t bytes[10];
  const uint8_t* end = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(v, bytes);
  out->append(reinterpret_cast<const char*>(bytes), end - bytes);
}

}  // namespace

std::string ResultsWriter::Header(absl::Span<const int64_t> shape, v1::ValueType dtype,
                                  size_t value_bytes) {
  v1::LookupResult fields;  // all but values
  fields.mutable_shape()->Assign(shape.begin(), shape.end());
  fields.set_dtype(dtype);
  const std::string body = fields.SerializeAsString();
  const size_t result_bytes = body.size() + 1 +
                              google::protobuf::io::CodedOutputStream::VarintSize64(value_bytes) +
                              value_bytes;
  std::string header;
  header.push_back(kResultsTag);
  AppendVarint(result_bytes, &header);
  header += body;
  header.push_back(kValuesTag);
  AppendVarint(value_bytes, &header);
  return header;
}

void ResultsWriter::Add(absl::Span<const int64_t> shape, v1::ValueType dtype, size_t value_bytes) {
  Result r;
  r.header = Header(shape, dtype, value_bytes);
  r.values_offset = total_bytes_ + r.header.size();
  total_bytes_ = r.values_offset + value_bytes;
  results_.push_back(std::move(r));
}

void ResultsWriter::Allocate() {
  // grpc_slice_malloc: refcounted, uninitialised; ours alone until Release().
  slice_ = grpc::Slice(total_bytes_);
  base_ = reinterpret_cast<char*>(const_cast<uint8_t*>(slice_.begin()));
  for (const Result& r : results_) {
    std::memcpy(base_ + r.values_offset - r.header.size(), r.header.data(), r.header.size());
  }
}

grpc::ByteBuffer ResultsWriter::Release() {
  grpc::ByteBuffer buffer(&slice_, 1);
  slice_ = grpc::Slice();
  base_ = nullptr;
  results_.clear();
  total_bytes_ = 0;
  return buffer;
}

}  // namespace embedserve
