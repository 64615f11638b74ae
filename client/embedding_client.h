#ifndef EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_
#define EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_

// C++ client for embedserve.v1.EmbeddingService. Every call returns the
// server's status unchanged (code and message) as an absl::Status.
//
// Thread-safe: one client may be shared by many threads (gRPC channels are).

#include <grpcpp/channel.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "embedserve/v1/embedserve.grpc.pb.h"
#include "proto/grpc_status.h"

namespace embedserve {

// A dense float32 tensor, row-major.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};

// One nn.EmbeddingBag query (see PooledQuery in proto/embedserve.proto).
struct BagQuery {
  std::string table;
  std::vector<int64_t> ids;
  std::vector<int64_t> offsets;  // bag starts; or use shape
  std::vector<int64_t> shape;    // [bags, bag_size] instead of offsets
  bool include_last_offset = false;
  v1::PoolingMode mode = v1::SUM;
  std::vector<float> per_sample_weights;
};

class EmbeddingClient {
 public:
  // `timeout` applies to each call.
  explicit EmbeddingClient(std::shared_ptr<grpc::Channel> channel,
                           absl::Duration timeout = absl::Seconds(30));
  // An insecure channel to host:port (embedserve listens on loopback by
  // default; put TLS in front of it for anything else).
  static std::unique_ptr<EmbeddingClient> Connect(const std::string& address,
                                                  absl::Duration timeout = absl::Seconds(30));

  // Waits until the channel is connected; Unavailable after `timeout`.
  absl::Status WaitForReady(absl::Duration timeout);

  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  // Returns the serving status name: "SERVING", "NOT_SERVING", ...
  absl::StatusOr<std::string> CheckHealth(absl::string_view service = "");

  // `initial_values`: empty, or num_embeddings * embedding_dim floats.
  absl::StatusOr<v1::TableInfo> CreateTable(const v1::TableSpec& spec,
                                            absl::Span<const float> initial_values = {});
  absl::Status DropTable(absl::string_view name);
  absl::StatusOr<std::vector<v1::TableInfo>> ListTables();
  absl::StatusOr<v1::TableInfo> DescribeTable(absl::string_view name);

  // F.embedding: shape (ids' shape) + [dim]; `shape` empty means [len(ids)].
  // `output` FLOAT16 asks for float16 values on the wire (half the bytes);
  // the Tensor holds them widened back to float32.
  absl::StatusOr<Tensor> Lookup(absl::string_view table, absl::Span<const int64_t> ids,
                                absl::Span<const int64_t> shape = {},
                                v1::ValueType output = v1::FLOAT32);
  // F.embedding_bag: [bags, dim].
  absl::StatusOr<Tensor> LookupPooled(const BagQuery& query);
  // Returns the table's version after the assignment.
  absl::StatusOr<int64_t> AssignRows(absl::string_view table, absl::Span<const int64_t> ids,
                                     absl::Span<const float> values);

  // One push of sparse gradients (len(ids) * dim floats). Returns the
  // table's version and the rows applied.
  absl::StatusOr<v1::PushResponse> PushGradients(absl::string_view table,
                                                 absl::Span<const int64_t> ids,
                                                 absl::Span<const float> grads);
  // Changes frozen and/or optimizer hyper-parameters (unset fields stay).
  absl::StatusOr<v1::TableInfo> UpdateTable(const v1::UpdateTableRequest& request);
  absl::StatusOr<v1::OptimizerStateResponse> GetOptimizerState(absl::string_view table,
                                                               absl::Span<const int64_t> ids);
  // The stub, for streaming calls (StreamGradients).
  v1::EmbeddingService::Stub* stub() { return stub_.get(); }

  // Raw multi-query calls, answers unparsed.
  absl::StatusOr<v1::LookupResponse> Lookup(const v1::LookupRequest& request);
  absl::StatusOr<v1::PooledResponse> LookupPooled(const v1::PooledRequest& request);

  // One unary call with the client's deadline, for RPCs without a typed
  // wrapper (e.g. Unary(&v1::EmbeddingService::Stub::LoadTable, request)).
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(
      grpc::Status (v1::EmbeddingService::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
      const Req& request) {
    Resp response;
    grpc::ClientContext ctx;
    Prepare(&ctx);
    const absl::Status status = FromGrpcStatus((stub_.get()->*method)(&ctx, request, &response));
    if (!status.ok()) return status;
    return response;
  }

 private:
  void Prepare(grpc::ClientContext* ctx) const;

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::EmbeddingService::Stub> stub_;
  absl::Duration timeout_;
};

// Decodes a LookupResult (little-endian float32, or float16 when its dtype
// says so) into a float32 Tensor. DataLoss if the byte count does not match
// the shape, InvalidArgument for another dtype.
absl::StatusOr<Tensor> TensorFromResult(const v1::LookupResult& result);

}  // namespace embedserve

#endif  // EMBEDSERVE_CLIENT_EMBEDDING_CLIENT_H_
