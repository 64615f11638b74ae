#ifndef EMBEDSERVE_PROTO_GRPC_STATUS_H_
#define EMBEDSERVE_PROTO_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace embedserve {

// absl::Status <-> grpc::Status with the same canonical code and message. The
// wire layer holds it because both the server and the client cross it.
// Codes are static_assert-ed equal in the .cc.
grpc::Status ToGrpcStatus(const absl::Status& status);

// grpc::Status -> absl::Status, for the client library.
absl::Status FromGrpcStatus(const grpc::Status& status);

}  // namespace embedserve

#endif  // EMBEDSERVE_PROTO_GRPC_STATUS_H_
