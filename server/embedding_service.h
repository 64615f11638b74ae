#ifndef EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_
#define EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_

#include <cstdint>
#include <memory>

#include "core/table_registry.h"
#include "embedserve/v1/embedserve.grpc.pb.h"
#include "server/results_writer.h"

namespace embedserve {

// Per-request limits; a request over one gets RESOURCE_EXHAUSTED.
struct RequestLimits {
  int64_t max_ids_per_request = 4'000'000;          // ids over all queries
  int64_t max_response_bytes = int64_t{256} << 20;  // gathered floats
};

// embedserve.v1.EmbeddingService on gRPC's callback API. Thin: each method
// converts the request, calls core, converts the answer. Every reply is
// computed inline on the gRPC thread that received the call (lookups are
// short and memory-bound; a thread hop would cost more than it saves).
//
// A multi-query request is validated whole (tables, shapes, ids, offsets,
// weights) before any query runs, so that a failed request changes nothing
// (max_norm lookups write to the table).
//
// Thread-safe; the registry must outlive the service.
//
// Lookup and LookupPooled are raw methods (bytes in, bytes out): the request
// is parsed here and the answer is built by ResultsWriter, so the kernels
// gather straight into the bytes gRPC sends.
class EmbeddingServiceImpl final : public v1::EmbeddingService::WithRawCallbackMethod_Lookup<
                                       v1::EmbeddingService::WithRawCallbackMethod_LookupPooled<
                                           v1::EmbeddingService::CallbackService>> {
 public:
  EmbeddingServiceImpl(std::shared_ptr<TableRegistry> registry, RequestLimits limits)
      : registry_(std::move(registry)), limits_(limits) {}

  grpc::ServerUnaryReactor* CreateTable(grpc::CallbackServerContext* ctx,
                                        const v1::CreateTableRequest* req,
                                        v1::CreateTableResponse* resp) override;
  grpc::ServerUnaryReactor* DropTable(grpc::CallbackServerContext* ctx,
                                      const v1::DropTableRequest* req,
                                      v1::DropTableResponse* resp) override;
  grpc::ServerUnaryReactor* ListTables(grpc::CallbackServerContext* ctx,
                                       const v1::ListTablesRequest* req,
                                       v1::ListTablesResponse* resp) override;
  grpc::ServerUnaryReactor* DescribeTable(grpc::CallbackServerContext* ctx,
                                          const v1::DescribeTableRequest* req,
                                          v1::DescribeTableResponse* resp) override;
  // Raw: a v1::LookupRequest in, a v1::LookupResponse out.
  grpc::ServerUnaryReactor* Lookup(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* req,
                                   grpc::ByteBuffer* resp) override;
  // Raw: a v1::PooledRequest in, a v1::PooledResponse out.
  grpc::ServerUnaryReactor* LookupPooled(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* req,
                                         grpc::ByteBuffer* resp) override;
  grpc::ServerUnaryReactor* AssignRows(grpc::CallbackServerContext* ctx,
                                       const v1::AssignRowsRequest* req,
                                       v1::AssignRowsResponse* resp) override;
  grpc::ServerUnaryReactor* PushGradients(grpc::CallbackServerContext* ctx,
                                          const v1::PushRequest* req,
                                          v1::PushResponse* resp) override;
  // Pushes are applied and answered one at a time, in order; a failed push
  // is answered with its code and message and the stream goes on.
  grpc::ServerBidiReactor<v1::PushRequest, v1::PushResponse>* StreamGradients(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* UpdateTable(grpc::CallbackServerContext* ctx,
                                        const v1::UpdateTableRequest* req,
                                        v1::UpdateTableResponse* resp) override;
  grpc::ServerUnaryReactor* GetOptimizerState(grpc::CallbackServerContext* ctx,
                                              const v1::OptimizerStateRequest* req,
                                              v1::OptimizerStateResponse* resp) override;

  grpc::ServerUnaryReactor* LoadTable(grpc::CallbackServerContext* ctx,
                                      const v1::LoadTableRequest* req,
                                      v1::LoadTableResponse* resp) override;

  grpc::ServerReadReactor<v1::ImportChunk>* ImportTable(grpc::CallbackServerContext* ctx,
                                                        v1::LoadTableResponse* resp) override;
  grpc::ServerWriteReactor<v1::ExportChunk>* ExportTable(
      grpc::CallbackServerContext* ctx, const v1::ExportTableRequest* req) override;
  grpc::ServerUnaryReactor* CreateCheckpoint(grpc::CallbackServerContext* ctx,
                                             const v1::CreateCheckpointRequest* req,
                                             v1::CreateCheckpointResponse* resp) override;
  grpc::ServerUnaryReactor* ListCheckpoints(grpc::CallbackServerContext* ctx,
                                            const v1::ListCheckpointsRequest* req,
                                            v1::ListCheckpointsResponse* resp) override;
  grpc::ServerUnaryReactor* RestoreCheckpoint(grpc::CallbackServerContext* ctx,
                                              const v1::RestoreCheckpointRequest* req,
                                              v1::RestoreCheckpointResponse* resp) override;

  // Loads a pretrained file (LoadTable, and ImportTable once uploaded);
  // error messages name `display_path` instead of the path read.
  absl::Status DoLoadTable(const v1::LoadTableRequest& req, v1::LoadTableResponse* resp,
                           const std::string& display_path = "");

  // One push (shared by the unary and the streaming RPC).
  absl::Status ApplyPush(const v1::PushRequest& req, v1::PushResponse* resp);

 private:
  absl::Status DoCreateTable(const v1::CreateTableRequest& req, v1::CreateTableResponse* resp);
  absl::Status DoLookup(const v1::LookupRequest& req, ResultsWriter* out);
  absl::Status DoLookupPooled(const v1::PooledRequest& req, ResultsWriter* out);
  absl::Status DoAssignRows(const v1::AssignRowsRequest& req, v1::AssignRowsResponse* resp);
  absl::Status LoadTableFrom(const v1::LoadTableRequest& req, v1::LoadTableResponse* resp);
  absl::Status DoUpdateTable(const v1::UpdateTableRequest& req, v1::UpdateTableResponse* resp);
  absl::Status DoGetOptimizerState(const v1::OptimizerStateRequest& req,
                                   v1::OptimizerStateResponse* resp);

  const std::shared_ptr<TableRegistry> registry_;
  const RequestLimits limits_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_EMBEDDING_SERVICE_H_
