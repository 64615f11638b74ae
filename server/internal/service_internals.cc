#include "server/internal/service_internals.h"

#include <utility>

#include "core/answer_budget.h"

namespace embedserve::internal {
namespace {

absl::Status ResponseTooLarge(const RequestLimits& limits) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the answer would take more than ", limits.max_response_bytes,
                   " bytes (the response limit, --max_response_bytes)"));
}

}  // namespace

grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& msg) {
  std::string bytes;
  msg.SerializeToString(&bytes);
  grpc::Slice slice(std::move(bytes));
  return grpc::ByteBuffer(&slice, 1);
}

absl::Status SerializeResponse(const google::protobuf::Message& msg, const RequestLimits& limits,
                               grpc::ByteBuffer* out) {
  const size_t size = msg.ByteSizeLong();
  if (size > static_cast<size_t>(limits.max_response_bytes)) return ResponseTooLarge(limits);
  *out = ToByteBuffer(msg);
  return absl::OkStatus();
}

absl::Status CheckTotalIds(int64_t total, const RequestLimits& limits) {
  if (total > limits.max_ids_per_request) {
    return absl::ResourceExhaustedError(
        absl::StrCat("request has ", total, " ids; the limit is ", limits.max_ids_per_request));
  }
  return absl::OkStatus();
}

absl::Status AddResponseBytes(int64_t rows, int64_t width, const RequestLimits& limits,
                              int64_t* total, int64_t value_bytes) {
  if (!AddAnswerBytes(rows, width, value_bytes, limits.max_response_bytes, total)) {
    return ResponseTooLarge(limits);
  }
  return absl::OkStatus();
}

}  // namespace embedserve::internal
