#ifndef EMBEDSERVE_SERVER_GRPC_STATUS_H_
#define EMBEDSERVE_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace embedserve {

// absl::Status -> grpc::Status with the same canonical code and message.
// The only place the two meet (codes are static_assert-ed equal).
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, for the client library.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_GRPC_STATUS_H_
