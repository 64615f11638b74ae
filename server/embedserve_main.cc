// embedserve: the embedding server. Thin main: flags -> ServerOptions ->
// EmbeddingServer::Start -> Wait until SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "core/embedding_table.h"
#include "core/enum_names.h"
#include "core/gather.h"
#include "core/parallel_lookup.h"
#include "core/table_registry.h"
#include "server/auth.h"
#include "server/embedding_server.h"
#include "server/internal/log.h"
#include "server/snapshot_scheduler.h"
#include "server/startup.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051",
          "host:port to serve on; port 0 picks a free port (see --port_file)");
ABSL_FLAG(std::string, config, "",
          "tables to create at start: embedserve.v1.ServerConfig in text format "
          "(e.g. deploy/demo_tables.txtpb)");
ABSL_FLAG(std::string, port_file, "", "if set, write the bound port to this file once serving");
ABSL_FLAG(int64_t, max_ids_per_request, 4'000'000,
          "ids over all queries of one request; more is RESOURCE_EXHAUSTED");
ABSL_FLAG(int64_t, max_response_bytes, int64_t{256} << 20,
          "bytes of gathered rows in one answer; more is RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, max_message_bytes, 512 << 20, "largest gRPC message accepted or sent");
ABSL_FLAG(int64_t, max_table_bytes, -1,
          "memory all tables (rows and optimizer state) may take together, bytes; "
          "-1 = 80% of physical memory, 0 = no limit");
ABSL_FLAG(std::string, data_dir, "./data",
          "RocksDB directory that makes tables durable (created if missing); empty = memory "
          "only");
ABSL_FLAG(std::string, durability, "async",
          "async: a change is acknowledged once its update log record (or, with "
          "--update_log=false, RocksDB's WAL) reached the OS (survives a process crash); sync: "
          "once it is fsync'ed, concurrent changes sharing one fsync (survives a machine crash)");
ABSL_FLAG(bool, update_log, true,
          "with --data_dir: make changes durable as commands in an update log (<data_dir>/log) "
          "and write the rows out in bulk snapshots; false: every change writes its rows to "
          "RocksDB (slower; the layout before the log)");
ABSL_FLAG(int64_t, snapshot_log_bytes, int64_t{1} << 30,
          "snapshot the tables once the update log holds this many bytes (0 = never by size)");
ABSL_FLAG(int32_t, snapshot_interval_s, 600,
          "snapshot changed tables at least this often, seconds (0 = never by time)");
ABSL_FLAG(int64_t, log_segment_bytes, int64_t{64} << 20,
          "size of one update log segment file; whole segments are removed after a snapshot");
ABSL_FLAG(std::string, import_rocksdb, "",
          "at start, copy every table of this RocksDB (storage/FORMAT.md; e.g. written by an "
          "offline job) into the server; opened read-only");
ABSL_FLAG(int32_t, lookup_threads, 0,
          "split lookups of at least --parallel_min_ids ids across this many extra threads "
          "(0 = every lookup runs on its gRPC thread)");
ABSL_FLAG(int64_t, parallel_min_ids, 16384, "smallest lookup that --lookup_threads splits");
ABSL_FLAG(int64_t, max_upload_bytes, int64_t{4} << 30,
          "largest ImportTable upload, bytes; more is RESOURCE_EXHAUSTED (0 = no limit)");
ABSL_FLAG(int32_t, admin_threads, 1,
          "threads for slow calls (load, import, create, drop, checkpoints), run at low CPU "
          "priority so that lookups come first");
ABSL_FLAG(int32_t, admin_queue, 16,
          "slow calls that may wait for an admin thread; more are RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, push_threads, 0, "threads that apply pushes and assigns (0 = one per core)");
ABSL_FLAG(int32_t, push_queue, 4096, "pushes that may wait; more are RESOURCE_EXHAUSTED");
ABSL_FLAG(int32_t, push_nice, 10,
          "nice value of the push threads (0-19): higher lets lookups take more of the CPU "
          "while a trainer pushes flat out; 0 = pushes and lookups share equally");
ABSL_FLAG(double, push_share_under_lookups, 0.5,
          "while lookups come in, a push stream is kept busy at most this share of the time "
          "(it pauses between pushes; flow control slows the trainer); 1 = no pause");
ABSL_FLAG(int64_t, max_sequence_wait_ms, 10000,
          "the longest a lookup naming a trainer's min_sequence waits for that push to be "
          "applied (never past the call's deadline); then DEADLINE_EXCEEDED");
ABSL_FLAG(int32_t, max_concurrent_streams, 100,
          "HTTP/2 streams one connection may have open at once; more are refused");
ABSL_FLAG(int32_t, max_connection_idle_s, 3600,
          "close a connection with no call for this long, seconds (0 = never)");
ABSL_FLAG(int32_t, max_connection_age_s, 0,
          "ask a connection older than this to reconnect, seconds (0 = never)");
ABSL_FLAG(int32_t, keepalive_time_s, 120,
          "ping an idle connection this often, seconds; dead peers are dropped");
ABSL_FLAG(int64_t, transport_memory_bytes, int64_t{1} << 30,
          "memory gRPC's transport may use for buffers before it pushes back (resource quota)");
ABSL_FLAG(int32_t, memory_trim_interval_s, 1,
          "hand freed heap memory back to the kernel this often, seconds (0 = never)");
ABSL_FLAG(std::string, load_dir, "",
          "LoadTable reads files only beneath this directory (relative paths, no symbolic "
          "links); empty = LoadTable is off (ImportTable uploads still work)");
ABSL_FLAG(std::string, tokens_file, "",
          "bearer tokens and their roles, one '<reader|trainer|admin> <token> [name]' a line; "
          "clients send 'authorization: Bearer <token>'. Empty = no tokens asked for");
ABSL_FLAG(std::string, tls_cert, "", "PEM certificate chain: serve TLS (with --tls_key)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA: clients must present a certificate it signed (mutual TLS)");
ABSL_FLAG(bool, insecure, false,
          "allow listening on a non-loopback address without TLS and tokens (anyone who "
          "reaches the port may read and change every table)");
ABSL_FLAG(bool, reflection, false,
          "serve gRPC server reflection (grpcurl without the .proto); it is not behind tokens");
ABSL_FLAG(std::string, simd, "auto", "gather kernels: auto, scalar, avx2 or avx512");
ABSL_FLAG(std::string, metrics_address, "",
          "host:port to serve Prometheus metrics on (plain HTTP, GET /metrics; port 0 picks a "
          "free port, see --metrics_port_file); empty = off. They show table names and counts, "
          "never rows");
ABSL_FLAG(std::string, metrics_port_file, "",
          "if set, write the bound metrics port to this file once serving");
ABSL_FLAG(std::string, health_address, "",
          "host:port of a second, plaintext gRPC port serving only grpc.health.v1 (for probes "
          "that cannot speak TLS); port 0 picks a free port (see --health_port_file); empty = "
          "off");
ABSL_FLAG(std::string, health_port_file, "",
          "if set, write the bound health port to this file once serving");

namespace {

using embedserve::internal::LogError;
using embedserve::internal::LogInfo;
using embedserve::internal::LogWarning;

// Writes `port` to `path` (if set) through a rename: readers never see a
// partial file.
void WritePortFile(const std::string& path, int port) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  std::ofstream(tmp) << port << "\n";
  std::rename(tmp.c_str(), path.c_str());
}

int Run() {
  embedserve::TuneMallocForServing();
  // Block the stop signals before any thread starts (RocksDB's and gRPC's
  // inherit the mask); one thread waits for them and shuts the server down.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  if (const std::string simd = absl::GetFlag(FLAGS_simd); simd != "auto") {
    const std::optional<embedserve::SimdLevel> level = embedserve::ParseSimdLevel(simd);
    if (!level) {
      LogError(absl::StrCat("--simd=", simd, ": expected auto, ",
                            embedserve::NameList(embedserve::SimdLevelNames())));
      return 2;
    }
    if (absl::Status s = embedserve::ForceSimdLevel(*level); !s.ok()) {
      LogError(absl::StrCat("--simd: ", s.message()));
      return 2;
    }
  }
  // Handed to every table through the registry; null: lookups run on the
  // gRPC thread that received them.
  std::shared_ptr<embedserve::LookupParallelism> parallelism;
  if (const int threads = absl::GetFlag(FLAGS_lookup_threads); threads > 0) {
    parallelism = std::make_shared<embedserve::LookupParallelism>(
        threads, absl::GetFlag(FLAGS_parallel_min_ids));
    LogInfo(absl::StrCat("lookups of >= ", absl::GetFlag(FLAGS_parallel_min_ids),
                         " ids split across ", threads, " extra threads"));
  }
  LogInfo(absl::StrCat("gather kernels: ",
                       embedserve::Name(embedserve::ActiveKernels().level)));

  embedserve::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  embedserve::ServiceOptions& service = options.service;
  service.limits.max_ids_per_request = absl::GetFlag(FLAGS_max_ids_per_request);
  service.limits.max_response_bytes = absl::GetFlag(FLAGS_max_response_bytes);
  service.limits.max_upload_bytes = absl::GetFlag(FLAGS_max_upload_bytes);
  service.admin_threads = absl::GetFlag(FLAGS_admin_threads);
  service.admin_queue = absl::GetFlag(FLAGS_admin_queue);
  service.push_threads = absl::GetFlag(FLAGS_push_threads);
  service.push_queue = absl::GetFlag(FLAGS_push_queue);
  service.push_nice = absl::GetFlag(FLAGS_push_nice);
  service.push_share_under_lookups = absl::GetFlag(FLAGS_push_share_under_lookups);
  service.max_sequence_wait = absl::Milliseconds(absl::GetFlag(FLAGS_max_sequence_wait_ms));
  service.load_dir = absl::GetFlag(FLAGS_load_dir);
  if (const std::string tokens = absl::GetFlag(FLAGS_tokens_file); !tokens.empty()) {
    auto authorizer = embedserve::TokenAuthorizer::FromFile(tokens);
    if (!authorizer.ok()) {
      LogError(std::string(authorizer.status().message()));
      return 2;
    }
    service.authorizer = *std::move(authorizer);
    LogInfo(absl::StrCat("tokens: ", service.authorizer->size(), " from ", tokens));
  }
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.insecure = absl::GetFlag(FLAGS_insecure);
  options.enable_reflection = absl::GetFlag(FLAGS_reflection);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);
  options.max_concurrent_streams = absl::GetFlag(FLAGS_max_concurrent_streams);
  options.max_connection_idle_s = absl::GetFlag(FLAGS_max_connection_idle_s);
  options.max_connection_age_s = absl::GetFlag(FLAGS_max_connection_age_s);
  options.keepalive_time_s = absl::GetFlag(FLAGS_keepalive_time_s);
  options.transport_memory_bytes = absl::GetFlag(FLAGS_transport_memory_bytes);
  options.memory_trim_interval_s = absl::GetFlag(FLAGS_memory_trim_interval_s);
  options.metrics_address = absl::GetFlag(FLAGS_metrics_address);
  options.health_address = absl::GetFlag(FLAGS_health_address);
  // Before anything is opened or written: a refused start changes nothing.
  if (absl::Status s = embedserve::EmbeddingServer::CheckExposure(options); !s.ok()) {
    LogError(std::string(s.message()));
    return 2;
  }

  int64_t max_table_bytes = absl::GetFlag(FLAGS_max_table_bytes);
  if (max_table_bytes < 0) {
    // A create that the machine cannot hold must fail cleanly, not get the
    // server OOM-killed while it fills the rows.
    max_table_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / 5 * 4;
  }
  LogInfo(absl::StrCat("table memory limit: ", max_table_bytes == 0
                                                   ? std::string("none")
                                                   : absl::StrCat(max_table_bytes, " bytes")));
  std::unique_ptr<embedserve::RocksDbStore> store;
  if (const std::string dir = absl::GetFlag(FLAGS_data_dir); !dir.empty()) {
    auto opened = embedserve::OpenDataDir(dir, absl::GetFlag(FLAGS_durability));
    if (!opened.ok()) {
      LogError(std::string(opened.status().message()));
      return opened.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
    }
    store = *std::move(opened);
  } else {
    LogInfo("no --data_dir: tables live in memory only");
  }
  if (const std::string dir = absl::GetFlag(FLAGS_data_dir); !dir.empty()) {
    auto uploads = embedserve::PrepareUploadDir(dir);
    if (!uploads.ok()) {
      LogError(std::string(uploads.status().message()));
      return 1;
    }
    options.service.upload_dir = *uploads;
  }
  auto registry =
      std::make_shared<embedserve::TableRegistry>(max_table_bytes, store.get(), parallelism);
  options.store = store.get();
  std::unique_ptr<embedserve::FileUpdateLog> update_log;
  if (store != nullptr && !absl::GetFlag(FLAGS_update_log)) {
    if (absl::Status s =
            embedserve::CheckNoPendingUpdateLog(absl::GetFlag(FLAGS_data_dir), *store);
        !s.ok()) {
      LogError(std::string(s.message()));
      return 2;
    }
  }
  if (store != nullptr && absl::GetFlag(FLAGS_update_log)) {
    auto opened = embedserve::OpenUpdateLog(absl::GetFlag(FLAGS_data_dir),
                                            absl::GetFlag(FLAGS_durability),
                                            absl::GetFlag(FLAGS_log_segment_bytes));
    if (!opened.ok()) {
      LogError(std::string(opened.status().message()));
      return 1;
    }
    update_log = *std::move(opened);
    registry->SetUpdateLog(update_log.get());
    store->SetUpdateLog(update_log.get());
    options.update_log = update_log.get();
  }
  if (absl::Status s =
          embedserve::RestoreAndImportTables(*registry, absl::GetFlag(FLAGS_import_rocksdb));
      !s.ok()) {
    LogError(std::string(s.message()));
    return 1;
  }
  if (const std::string config = absl::GetFlag(FLAGS_config); !config.empty()) {
    if (absl::Status s = embedserve::CreateConfigTables(*registry, config); !s.ok()) {
      LogError(std::string(s.message()));
      return 2;
    }
  }

  embedserve::ReleaseFreedMemory();
  std::unique_ptr<embedserve::SnapshotScheduler> snapshots;
  if (update_log != nullptr) {
    embedserve::SnapshotPolicy policy;
    policy.log_bytes = absl::GetFlag(FLAGS_snapshot_log_bytes);
    policy.interval = absl::Seconds(absl::GetFlag(FLAGS_snapshot_interval_s));
    snapshots = std::make_unique<embedserve::SnapshotScheduler>(*registry, *update_log, policy);
  }

  auto server = embedserve::EmbeddingServer::Start(options, registry);
  if (!server.ok()) {
    LogError(std::string(server.status().message()));
    return server.status().code() == absl::StatusCode::kFailedPrecondition ? 2 : 1;
  }
  LogInfo(absl::StrCat("security: ", options.tls_cert_file.empty() ? "plaintext" : "TLS",
                       options.tls_client_ca_file.empty() ? "" : " with client certificates", ", ",
                       options.service.authorizer ? "tokens required" : "no tokens", ", LoadTable ",
                       options.service.load_dir.empty() ? std::string("off")
                                                        : "beneath " + options.service.load_dir));
  LogInfo(absl::StrCat("serving embedserve.v1.EmbeddingService on ", (*server)->address()));
  auto bound = [](const std::string& address, int port) {
    return absl::StrCat(address.substr(0, address.rfind(':')), ":", port);
  };
  if (!options.metrics_address.empty()) {
    const std::string where = bound(options.metrics_address, (*server)->metrics_port());
    LogInfo(absl::StrCat("serving Prometheus metrics on http://", where, "/metrics"));
    if (!embedserve::EmbeddingServer::IsLoopbackAddress(options.metrics_address)) {
      LogWarning(absl::StrCat("metrics on ", where,
                              " are not on loopback: anyone who reaches the port sees table "
                              "names, sizes and call counts (never rows or tokens)"));
    }
    WritePortFile(absl::GetFlag(FLAGS_metrics_port_file), (*server)->metrics_port());
  }
  if (!options.health_address.empty()) {
    LogInfo(absl::StrCat("serving grpc.health.v1 only, plaintext, on ",
                         bound(options.health_address, (*server)->health_port())));
    WritePortFile(absl::GetFlag(FLAGS_health_port_file), (*server)->health_port());
  }
  // Last: a test that waits for the port file finds every endpoint up.
  WritePortFile(absl::GetFlag(FLAGS_port_file), (*server)->port());
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    LogInfo(absl::StrCat("signal ", sig, ": shutting down"));
    (*server)->Shutdown();
  });
  (*server)->Wait();
  stopper.join();
  snapshots.reset();  // before the registry and the log it writes through
  LogInfo("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "embedserve: serves embedding tables over gRPC (embedserve.v1.EmbeddingService).\n"
      "  embedserve --address=127.0.0.1:50051 --config=deploy/demo_tables.txtpb");
  absl::ParseCommandLine(argc, argv);
  return Run();
}
