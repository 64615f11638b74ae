#include "server/embedding_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <chrono>

#include "absl/strings/str_cat.h"

namespace embedserve {

absl::StatusOr<std::unique_ptr<EmbeddingServer>> EmbeddingServer::Start(
    const ServerOptions& options, std::shared_ptr<TableRegistry> registry) {
  const size_t colon = options.address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", options.address, "' is not host:port"));
  }
  std::unique_ptr<EmbeddingServer> server(new EmbeddingServer());
  server->registry_ = std::move(registry);
  server->service_ = std::make_unique<EmbeddingServiceImpl>(server->registry_, options.limits);

  grpc::EnableDefaultHealthCheckService(true);
  if (options.enable_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, grpc::InsecureServerCredentials(), &server->port_);
  builder.RegisterService(server->service_.get());
  // Without this, gRPC sets SO_REUSEPORT and a second server on a busy port
  // "starts" silently and steals part of the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " (in use, or not a local address?)"));
  }
  grpc::HealthCheckServiceInterface* health = server->server_->GetHealthCheckService();
  if (health != nullptr) {
    health->SetServingStatus(true);
    health->SetServingStatus("embedserve.v1.EmbeddingService", true);
  }
  server->address_ = absl::StrCat(options.address.substr(0, colon), ":", server->port_);
  return server;
}

EmbeddingServer::~EmbeddingServer() { Shutdown(); }

void EmbeddingServer::Shutdown() {
  if (server_ == nullptr || shut_down_.exchange(true)) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health != nullptr) health->SetServingStatus(false);
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
}

void EmbeddingServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace embedserve
