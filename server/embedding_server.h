#ifndef EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_
#define EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "core/table_registry.h"
#include "server/embedding_service.h"
#include "storage/rocksdb_store.h"

namespace grpc {
class CallbackGenericService;
class Server;
}  // namespace grpc

namespace embedserve {

class MetricsRegistry;
namespace internal {
class HttpExposer;
}

struct ServerOptions {
  // host:port to listen on; port 0 picks a free one (see EmbeddingServer::port).
  std::string address = "127.0.0.1:50051";
  // Request limits, lanes, upload staging (see ServiceOptions).
  ServiceOptions service;
  // Largest request or response message gRPC accepts, bytes.
  int max_message_bytes = 512 << 20;
  // Transport limits (HTTP/2 and connection policy):
  // concurrent streams one connection may have open; more are refused.
  int max_concurrent_streams = 100;
  // A connection with no call for this long is closed (GOAWAY); 0 = never.
  int max_connection_idle_s = 3600;
  // A connection older than this is asked to reconnect (GOAWAY, then a
  // grace of max_connection_age_grace_s for calls in flight); 0 = never.
  int max_connection_age_s = 0;
  int max_connection_age_grace_s = 60;
  // The server pings an idle connection this often and drops it if no
  // answer comes within keepalive_timeout_s; clients may not ping more
  // often than every min_client_ping_interval_s (abusers get GOAWAY).
  int keepalive_time_s = 120;
  int keepalive_timeout_s = 20;
  int min_client_ping_interval_s = 10;
  // gRPC's resource quota: memory the transport may use for buffers (reads
  // of requests, queued answers) before it pushes back; 0 = gRPC's default.
  int64_t transport_memory_bytes = int64_t{1} << 30;
  // Hands freed heap memory back to the kernel this often (malloc_trim), so
  // that a burst (a large rejected message, a stream flood) does not stay in
  // RSS; 0 = never.
  int memory_trim_interval_s = 1;
  // Serve grpc.reflection.v1alpha (grpcurl, grpc_cli without the .proto).
  // Off by default: reflection is not behind the tokens. grpc.health.v1 is
  // always served, to anyone.
  bool enable_reflection = false;
  // TLS: PEM files of the server's certificate chain and private key. With
  // tls_client_ca_file too, clients must present a certificate signed by
  // that CA (mTLS). All empty: plaintext.
  std::string tls_cert_file, tls_key_file, tls_client_ca_file;
  // Secure by default: Start refuses to listen on anything but loopback
  // unless the server has TLS and tokens (service.authorizer), or this is
  // set (the operator accepts that anyone who reaches the port may do
  // anything, and read the traffic).
  bool insecure = false;

  // Operator endpoints, both off when empty; host:port, port 0 picks a free
  // one (see metrics_port, health_port).
  //
  // Prometheus metrics over plain HTTP: GET /metrics (README, Metrics). It
  // shows table names, row counts, sizes and call counts, never rows or
  // tokens; allowed on any address (the main calls it out in its log when
  // not loopback). Turns on ServiceOptions::enable_metrics.
  std::string metrics_address;
  // A second gRPC port, always plaintext, that serves only grpc.health.v1
  // with the main port's status (SERVING for "" and
  // "embedserve.v1.EmbeddingService" once started, NOT_SERVING from the
  // start of Shutdown): for probes that cannot speak TLS (Docker's
  // HEALTHCHECK, Kubernetes' gRPC probes). Nothing else is served there (no
  // EmbeddingService, no reflection) and its messages are limited to a few
  // KiB, so it needs neither TLS nor tokens on any address: it reveals
  // only whether the server is up.
  std::string health_address;
  // The store behind the registry, for the RocksDB figures of the metrics;
  // not owned, must outlive the server. Null: none shown.
  const RocksDbStore* store = nullptr;
  // The update log, for its figures (embedserve_update_log_*); not owned,
  // must outlive the server. Null: none shown.
  const UpdateLog* update_log = nullptr;
};

// A running embedserve gRPC server: EmbeddingService, grpc.health.v1 (status
// SERVING for "" and "embedserve.v1.EmbeddingService"; open to anyone) and,
// with enable_reflection, server reflection; and, when asked for, the
// metrics endpoint and the plaintext health port (ServerOptions).
//
// Thread-safe. Destroying it shuts it down.
class EmbeddingServer {
 public:
  // Binds and starts serving `registry`. Unavailable if the address cannot be
  // bound, InvalidArgument if it is malformed, FailedPrecondition if it is
  // not loopback and the server would run without TLS or tokens (see
  // ServerOptions::insecure), NotFound/InvalidArgument for TLS files that
  // cannot be read. The metrics and health addresses fail the same way as
  // the main one (InvalidArgument, Unavailable); nothing is left listening.
  static absl::StatusOr<std::unique_ptr<EmbeddingServer>> Start(
      const ServerOptions& options, std::shared_ptr<TableRegistry> registry);

  // The secure-by-default rule Start applies, for a main to check before it
  // opens anything: FailedPrecondition if options.address is not a loopback
  // address (127.0.0.0/8, ::1, localhost) and the server would run without
  // TLS and tokens, unless options.insecure.
  static absl::Status CheckExposure(const ServerOptions& options);
  // True if the host of `address` (host:port) is a loopback address (the
  // rule of CheckExposure).
  static bool IsLoopbackAddress(absl::string_view address);

  ~EmbeddingServer();

  // The bound port (the chosen one when the address asked for port 0).
  int port() const { return port_; }
  // "host:port" with the bound port, for clients.
  const std::string& address() const { return address_; }
  // The bound ports of the metrics endpoint and the health port; 0 when off.
  int metrics_port() const { return metrics_port_; }
  int health_port() const { return health_port_; }
  TableRegistry& registry() { return *registry_; }

  // Turns the health status NOT_SERVING (on both ports), stops the service's
  // lanes (queued slow calls are answered UNAVAILABLE, running loads give
  // up), stops accepting calls, lets calls in flight finish (up to 5 s), then
  // closes the health port and the metrics endpoint. Idempotent.
  void Shutdown();
  // Blocks until Shutdown.
  void Wait();

 private:
  EmbeddingServer() = default;

  std::shared_ptr<TableRegistry> registry_;
  std::unique_ptr<EmbeddingServiceImpl> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<grpc::CallbackGenericService> health_unimplemented_;  // outlives health_server_
  std::unique_ptr<grpc::Server> health_server_;  // null unless health_address
  std::unique_ptr<MetricsRegistry> metrics_;     // null unless metrics_address
  std::unique_ptr<internal::HttpExposer> exposer_;
  int port_ = 0;
  int metrics_port_ = 0;
  int health_port_ = 0;
  std::atomic<bool> shut_down_{false};
  absl::Notification stop_trimming_;
  std::thread trimmer_;
  std::string address_;
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_EMBEDDING_SERVER_H_
