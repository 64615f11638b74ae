#ifndef EMBEDSERVE_SERVER_INTERNAL_SERVICE_INTERNALS_H_
#define EMBEDSERVE_SERVER_INTERNAL_SERVICE_INTERNALS_H_

// What the unary handlers (embedding_service.cc) and the streaming calls
// (streaming_calls.cc) share: parsing raw request bytes, serializing answers
// and the per-request limit checks. Pure functions, thread-safe.

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/proto_buffer_reader.h>

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/message.h"
#include "server/embedding_service.h"

namespace embedserve::internal {

// Parses a raw method's request bytes; InvalidArgument naming the message
// type (and the byte count) if they do not parse.
template <typename Message>
absl::Status ParseRequest(const grpc::ByteBuffer& bytes, Message* msg) {
  grpc::ByteBuffer shared(bytes);  // shares the slices
  grpc::ProtoBufferReader reader(&shared);
  if (!msg->ParseFromZeroCopyStream(&reader)) {
    return absl::InvalidArgumentError(absl::StrCat("the request is not a valid ",
                                                   Message::descriptor()->full_name(), " (",
                                                   bytes.Length(), " bytes)"));
  }
  return absl::OkStatus();
}

// `msg` serialized into a single-slice buffer (no size limit: callers that
// answer with it check the limit first, or send bounded messages).
grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& msg);

// Serializes an answer; ResourceExhausted past limits.max_response_bytes.
absl::Status SerializeResponse(const google::protobuf::Message& msg, const RequestLimits& limits,
                               grpc::ByteBuffer* out);

// ResourceExhausted if a request has more than limits.max_ids_per_request ids.
absl::Status CheckTotalIds(int64_t total, const RequestLimits& limits);

// Adds rows * width values of `value_bytes` each to *total (core's
// AddAnswerBytes); ResourceExhausted past the response limit.
absl::Status AddResponseBytes(int64_t rows, int64_t width, const RequestLimits& limits,
                              int64_t* total, int64_t value_bytes = sizeof(float));

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_SERVER_INTERNAL_SERVICE_INTERNALS_H_
