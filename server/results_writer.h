#ifndef EMBEDSERVE_SERVER_RESULTS_WRITER_H_
#define EMBEDSERVE_SERVER_RESULTS_WRITER_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "embedserve/v1/embedserve.pb.h"

namespace embedserve {

// Builds the wire bytes of a LookupResponse or PooledResponse (both are
// `repeated LookupResult results = 1`) in ONE gRPC slice, and lets the gather
// kernels write each result's `values` straight into it: no zero-fill, no
// protobuf copy on serialisation, and gRPC sends the slice as it is.
//
// Use: Add() every result (shape, dtype, size of its values), then
// Allocate(), then fill values(i) for each i, then Release(). The bytes
// parse as the protobuf message (fields in the order shape, dtype, values:
// any order is valid protobuf).
//
// Every values(i) is aligned to kValuesAlignment in memory, so that the code
// that writes floats (and float16s) there through typed pointers (the
// initializer's fill, renorm, the scalar tails of the kernels) is defined
// C++: before each entry's values, a few bytes (2 to 6) of
// LookupResult's reserved field 15 (zeros) move them to an aligned offset,
// and the answer itself starts at an aligned address in its slice. A
// parser keeps the field as an unknown one; readers ignore it.
//
// Not thread-safe; one per answer.
class ResultsWriter {
 public:
  // Declares result i = number of Add() calls so far.
  void Add(absl::Span<const int64_t> shape, v1::ValueType dtype, size_t value_bytes);

  // Allocates the answer; writes every header. Call once, after the last Add().
  void Allocate();

  static constexpr size_t kValuesAlignment = 4;

  // Result i's values: value_bytes writable bytes, not initialised, aligned
  // to kValuesAlignment.
  char* values(int i) const { return base_ + results_[i].values_offset; }

  // The answer, for the raw callback method's response; leaves the writer empty.
  grpc::ByteBuffer Release();

  // The wire bytes of one `results` entry up to its values: the outer tag
  // and length, shape and dtype, the padding field if needed, the values
  // tag and length, such that the values start at a multiple of
  // kValuesAlignment for an entry that starts `at` bytes into the answer.
  // Followed by value_bytes of values it is a complete entry.
  static std::string Header(absl::Span<const int64_t> shape, v1::ValueType dtype,
                            size_t value_bytes, size_t at = 0);

 private:
  struct Result {
    std::string header;  // outer tag and length, the fields but values, values tag and length
    size_t values_offset = 0;
  };
  std::vector<Result> results_;
  size_t total_bytes_ = 0;
  grpc::Slice slice_;  // the allocation: skip_ bytes, then the answer
  size_t skip_ = 0;
  char* base_ = nullptr;  // the answer's first byte
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_RESULTS_WRITER_H_
