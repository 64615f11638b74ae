#include "server/embedding_server.h"

#include <arpa/inet.h>
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <malloc.h>
#include <netinet/in.h>

#include <chrono>
#include <climits>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/status_macros.h"
#include "server/internal/http_exposer.h"
#include "server/metrics.h"
#include "server/server_metrics.h"

namespace embedserve {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path, absl::string_view what) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream text;
  text << in.rdbuf();
  if (text.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(what, " ", path, " is not a PEM file"));
  }
  return text.str();
}

// The listening credentials: TLS (and mTLS) from the options, else plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(const ServerOptions& o) {
  if (o.tls_cert_file.empty() && o.tls_key_file.empty() && o.tls_client_ca_file.empty()) {
    return grpc::InsecureServerCredentials();
  }
  if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
    return absl::InvalidArgumentError("TLS needs both --tls_cert and --tls_key");
  }
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadPem(o.tls_key_file, "the TLS key"));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadPem(o.tls_cert_file, "the TLS certificate"));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!o.tls_client_ca_file.empty()) {
    ASSIGN_OR_RETURN(ssl.pem_root_certs, ReadPem(o.tls_client_ca_file, "the client CA"));
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

bool IsLoopbackHost(absl::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host == "localhost") return true;
  const std::string literal(host);
  in_addr v4;
  if (inet_pton(AF_INET, literal.c_str(), &v4) == 1) return (ntohl(v4.s_addr) >> 24) == 127;
  in6_addr v6;
  return inet_pton(AF_INET6, literal.c_str(), &v6) == 1 && IN6_IS_ADDR_LOOPBACK(&v6);
}

// Removes every builder plugin: the health port must not pick up server
// reflection, which InitProtoReflectionServerBuilderPlugin adds to every
// builder of the process once --reflection turned it on.
class NoPlugins final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    plugins->clear();
  }
};

// The plaintext port that serves only grpc.health.v1 (ServerOptions::
// health_address): no service of ours is registered, so the default health
// service is all there is; `unimplemented` (gRPC's generic service, whose
// every call ends UNIMPLEMENTED at once) answers any other method (without
// a callback service gRPC refuses to start the server, and a call nobody
// handles would hang until its deadline). Messages and streams are kept
// tiny.
std::unique_ptr<grpc::Server> StartHealthServer(const std::string& address,
                                                grpc::CallbackGenericService* unimplemented,
                                                int* port) {
  grpc::ServerBuilder builder;
  builder.SetOption(std::make_unique<NoPlugins>());
  builder.RegisterCallbackGenericService(unimplemented);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(4096);
  builder.SetMaxSendMessageSize(4096);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  grpc::ResourceQuota quota("embedserve-health");
  quota.Resize(size_t{32} << 20);
  builder.SetResourceQuota(quota);
  return builder.BuildAndStart();
}

void SetHealth(grpc::Server* server, bool serving) {
  if (server == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  if (health == nullptr) return;
  if (!serving) {
    health->SetServingStatus(false);  // every service name
    return;
  }
  health->SetServingStatus(true);
  health->SetServingStatus("embedserve.v1.EmbeddingService", true);
}

}  // namespace

bool EmbeddingServer::IsLoopbackAddress(absl::string_view address) {
  const size_t colon = address.rfind(':');
  return IsLoopbackHost(colon == absl::string_view::npos ? address : address.substr(0, colon));
}

absl::Status EmbeddingServer::CheckExposure(const ServerOptions& options) {
  const bool tls = !options.tls_cert_file.empty();
  const bool tokens = options.service.authorizer != nullptr;
  if (!IsLoopbackAddress(options.address) && !(tls && tokens) && !options.insecure) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.address, " without ",
        tls      ? "tokens (--tokens_file)"
        : tokens ? "TLS (--tls_cert, --tls_key)"
                 : "TLS and tokens",
        ": anyone who reaches the port could read and change every table. Turn security on "
        "(README, Security), listen on 127.0.0.1, or pass --insecure to accept the risk"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<EmbeddingServer>> EmbeddingServer::Start(
    const ServerOptions& options, std::shared_ptr<TableRegistry> registry) {
  const size_t colon = options.address.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", options.address, "' is not host:port"));
  }
  RETURN_IF_ERROR(CheckExposure(options));
  ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials, Credentials(options));
  std::unique_ptr<EmbeddingServer> server(new EmbeddingServer());
  server->registry_ = std::move(registry);
  ServiceOptions service_options = options.service;
  service_options.enable_metrics =
      service_options.enable_metrics || !options.metrics_address.empty();
  server->service_ = std::make_unique<EmbeddingServiceImpl>(server->registry_, service_options);

  grpc::EnableDefaultHealthCheckService(true);
  if (options.enable_reflection) grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, credentials, &server->port_);
  builder.RegisterService(server->service_.get());
  // Without this, gRPC sets SO_REUSEPORT and a second server on a busy port
  // "starts" silently and steals part of the traffic.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  // Transport limits: a client cannot hold unbounded streams, connections
  // or ping traffic open, and the transport's buffers are bounded.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  auto ms = [](int s) { return s > 0 ? s * 1000 : INT_MAX; };
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS, ms(options.max_connection_idle_s));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, ms(options.max_connection_age_s));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                             ms(options.max_connection_age_grace_s));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, ms(options.keepalive_time_s));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, ms(options.keepalive_timeout_s));
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                             options.min_client_ping_interval_s * 1000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 2);
  if (options.transport_memory_bytes > 0) {
    grpc::ResourceQuota quota("embedserve-transport");
    quota.Resize(static_cast<size_t>(options.transport_memory_bytes));
    builder.SetResourceQuota(quota);
  }
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || server->port_ == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " (in use, or not a local address?)"));
  }
  server->address_ = absl::StrCat(options.address.substr(0, colon), ":", server->port_);
  if (!options.health_address.empty()) {
    const size_t health_colon = options.health_address.rfind(':');
    if (health_colon == std::string::npos || health_colon == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("health address '", options.health_address, "' is not host:port"));
    }
    server->health_unimplemented_ = std::make_unique<grpc::CallbackGenericService>();
    server->health_server_ = StartHealthServer(
        options.health_address, server->health_unimplemented_.get(), &server->health_port_);
    if (server->health_server_ == nullptr || server->health_port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options.health_address,
                                                 " (health port; in use, or not a local "
                                                 "address?)"));
    }
  }
  if (!options.metrics_address.empty()) {
    server->metrics_ = std::make_unique<MetricsRegistry>();
    EmbeddingServer* s = server.get();
    const RocksDbStore* store = options.store;
    s->metrics_->AddCollector([s](std::vector<MetricFamily>* out) {
      s->service_->metrics()->Collect(out);
      CollectTableMetrics(*s->registry_, out);
    });
    if (store != nullptr) {
      s->metrics_->AddCollector(
          [store](std::vector<MetricFamily>* out) { CollectStoreMetrics(store->Stats(), out); });
    }
    if (const UpdateLog* log = options.update_log; log != nullptr) {
      s->metrics_->AddCollector(
          [log](std::vector<MetricFamily>* out) { CollectUpdateLogMetrics(log->Stats(), out); });
    }
    s->metrics_->AddCollector(CollectProcessMetrics);
    s->metrics_->AddCollector(CollectBuildInfo);
    ASSIGN_OR_RETURN(s->exposer_,
                     internal::HttpExposer::Start(options.metrics_address,
                                                  [s] { return s->metrics_->Scrape(); }, {}));
    s->metrics_port_ = s->exposer_->port();
  }
  SetHealth(server->server_.get(), true);
  SetHealth(server->health_server_.get(), true);
  if (options.memory_trim_interval_s > 0) {
    EmbeddingServer* s = server.get();
    const absl::Duration every = absl::Seconds(options.memory_trim_interval_s);
    s->trimmer_ = std::thread([s, every] {
      while (!s->stop_trimming_.WaitForNotificationWithTimeout(every)) malloc_trim(0);
    });
  }
  return server;
}

EmbeddingServer::~EmbeddingServer() {
  Shutdown();
  if (trimmer_.joinable()) {
    stop_trimming_.Notify();
    trimmer_.join();
  }
}

void EmbeddingServer::Shutdown() {
  if (server_ == nullptr || shut_down_.exchange(true)) return;
  SetHealth(server_.get(), false);
  SetHealth(health_server_.get(), false);
  service_->Shutdown();  // answers queued slow calls; running loads give up
  server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  // Probes saw NOT_SERVING and scrapes went on while calls drained.
  if (health_server_ != nullptr) {
    health_server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  }
  exposer_.reset();
}

void EmbeddingServer::Wait() {
  if (server_ != nullptr) server_->Wait();
}

}  // namespace embedserve
