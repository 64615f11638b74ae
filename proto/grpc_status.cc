#include "proto/grpc_status.h"

#include <string>

namespace embedserve {
namespace {

#define EMBEDSERVE_SAME_CODE(absl_code, grpc_code)                 \
  static_assert(static_cast<int>(absl::StatusCode::absl_code) ==   \
                    static_cast<int>(grpc::StatusCode::grpc_code), \
                "absl and gRPC status codes differ for " #grpc_code)

EMBEDSERVE_SAME_CODE(kOk, OK);
EMBEDSERVE_SAME_CODE(kCancelled, CANCELLED);
EMBEDSERVE_SAME_CODE(kUnknown, UNKNOWN);
EMBEDSERVE_SAME_CODE(kInvalidArgument, INVALID_ARGUMENT);
EMBEDSERVE_SAME_CODE(kDeadlineExceeded, DEADLINE_EXCEEDED);
EMBEDSERVE_SAME_CODE(kNotFound, NOT_FOUND);
EMBEDSERVE_SAME_CODE(kAlreadyExists, ALREADY_EXISTS);
EMBEDSERVE_SAME_CODE(kPermissionDenied, PERMISSION_DENIED);
EMBEDSERVE_SAME_CODE(kResourceExhausted, RESOURCE_EXHAUSTED);
EMBEDSERVE_SAME_CODE(kFailedPrecondition, FAILED_PRECONDITION);
EMBEDSERVE_SAME_CODE(kAborted, ABORTED);
EMBEDSERVE_SAME_CODE(kOutOfRange, OUT_OF_RANGE);
EMBEDSERVE_SAME_CODE(kUnimplemented, UNIMPLEMENTED);
EMBEDSERVE_SAME_CODE(kInternal, INTERNAL);
EMBEDSERVE_SAME_CODE(kUnavailable, UNAVAILABLE);
EMBEDSERVE_SAME_CODE(kDataLoss, DATA_LOSS);
EMBEDSERVE_SAME_CODE(kUnauthenticated, UNAUTHENTICATED);

#undef EMBEDSERVE_SAME_CODE

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  if (status.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
}

}  // namespace embedserve
