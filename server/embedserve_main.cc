// embedserve: the embedding server. Thin main: flags -> ServerOptions ->
// EmbeddingServer::Start -> Wait until SIGINT/SIGTERM.
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "core/gather.h"
#include "core/table_registry.h"
#include "server/embedding_server.h"
#include "server/internal/log.h"
#include "server/table_config.h"

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
ABSL_FLAG(std::string, simd, "auto", "gather kernels: auto, scalar, avx2 or avx512");

namespace {

using embedserve::internal::LogError;
using embedserve::internal::LogInfo;

int Run() {
  if (const std::string simd = absl::GetFlag(FLAGS_simd); simd != "auto") {
    embedserve::SimdLevel level;
    if (!embedserve::ParseSimdLevel(simd, &level)) {
      LogError(absl::StrCat("--simd=", simd, ": expected auto, scalar, avx2 or avx512"));
      return 2;
    }
    if (absl::Status s = embedserve::ForceSimdLevel(level); !s.ok()) {
      LogError(absl::StrCat("--simd: ", s.message()));
      return 2;
    }
  }
  LogInfo(absl::StrCat("gather kernels: ",
                       embedserve::SimdLevelName(embedserve::ActiveKernels().level)));

  int64_t max_table_bytes = absl::GetFlag(FLAGS_max_table_bytes);
  if (max_table_bytes < 0) {
    // A create that the machine cannot hold must fail cleanly, not get the
    // server OOM-killed while it fills the rows.
    max_table_bytes = static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE) / 5 * 4;
  }
  LogInfo(absl::StrCat("table memory limit: ", max_table_bytes == 0
                                                   ? std::string("none")
                                                   : absl::StrCat(max_table_bytes, " bytes")));
  auto registry = std::make_shared<embedserve::TableRegistry>(max_table_bytes);
  if (const std::string config = absl::GetFlag(FLAGS_config); !config.empty()) {
    auto specs = embedserve::LoadTableConfig(config);
    if (!specs.ok()) {
      LogError(std::string(specs.status().message()));
      return 2;
    }
    for (const auto& spec : *specs) {
      auto table = registry->Create(spec);
      if (!table.ok()) {
        LogError(absl::StrCat("table '", spec.name, "': ", table.status().message()));
        return 2;
      }
      LogInfo(absl::StrCat("created table '", spec.name, "': ", spec.num_embeddings, " x ",
                           spec.embedding_dim, " (", (*table)->bytes_used(), " bytes)"));
    }
  }

  embedserve::ServerOptions options;
  options.address = absl::GetFlag(FLAGS_address);
  options.limits.max_ids_per_request = absl::GetFlag(FLAGS_max_ids_per_request);
  options.limits.max_response_bytes = absl::GetFlag(FLAGS_max_response_bytes);
  options.max_message_bytes = absl::GetFlag(FLAGS_max_message_bytes);

  // Block the stop signals in every thread (gRPC's included); one thread
  // waits for them and shuts the server down.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  auto server = embedserve::EmbeddingServer::Start(options, registry);
  if (!server.ok()) {
    LogError(std::string(server.status().message()));
    return 1;
  }
  LogInfo(absl::StrCat("serving embedserve.v1.EmbeddingService on ", (*server)->address()));
  if (const std::string port_file = absl::GetFlag(FLAGS_port_file); !port_file.empty()) {
    const std::string tmp = port_file + ".tmp";
    std::ofstream(tmp) << (*server)->port() << "\n";
    std::rename(tmp.c_str(), port_file.c_str());  // readers never see a partial file
  }
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    LogInfo(absl::StrCat("signal ", sig, ": shutting down"));
    (*server)->Shutdown();
  });
  (*server)->Wait();
  stopper.join();
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
