#ifndef EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_
#define EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/table_registry.h"
#include "server/embedding_service.h"

namespace grpc {
class Server;
}

namespace embedserve {

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one (see EmbeddingServer::port).
  std::string address = "127.0.0.1:50051";
  RequestLimits limits;
  // Largest request or response message gRPC accepts, bytes.
  int max_message_bytes = 512 << 20;
  // Serve grpc.reflection.v1alpha (grpcurl, grpc_cli) and grpc.health.v1.
  bool enable_reflection = true;
};

// A running embedserve gRPC server: EmbeddingService, grpc.health.v1 (status
// SERVING for "" and "embedserve.v1.EmbeddingService") and reflection.
//
// Thread-safe. Destroying it shuts it down.
class EmbeddingServer {
 public:
  // Binds and starts serving `registry`. Unavailable if the address cannot be
  // bound, InvalidArgument if it is malformed.
  static absl::StatusOr<std::unique_ptr<EmbeddingServer>> Start(
      const ServerOptions& options, std::shared_ptr<TableRegistry> registry);

  ~EmbeddingServer();

  // The bound port (the chosen one when the address asked for port 0).
  int port() const { return port_; }
  // "host:port" with the bound port, for clients.
  const std::string& address() const { return address_; }
  TableRegistry& registry() { return *registry_; }

  // Stops accepting calls, lets calls in flight finish (up to 5 s). Idempotent.
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

 private:
  EmbeddingServer() = default;

  std::shared_ptr<TableRegistry> registry_;
  std::unique_ptr<EmbeddingServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::atomic<bool> shut_down_{false};
  std::string address_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_
