// The cost of --metrics_address on lookups.
//
// BM_LookupOffVsOn: lookups of 512 uniform ids (1,000,000 x 64 table) over
// gRPC on loopback to in-process servers that share one table in memory,
// metrics off (a) and metrics on (b; the endpoint is scraped once a second
// meanwhile, as a Prometheus would, only far more often than its usual
// 15 s), alternating in blocks of 16 lookups and each side timed on its own,
// so that the drift of a shared machine falls on both alike; b_over_a is
// on/off. aa:1 runs the same with metrics off on both sides: how far apart
// two identical servers measure (the method's noise).
//
// BM_CountLookup: what metrics add to one lookup (an RPC with its latency
// histogram, rows per table), from 1 and 2 threads, sharded as the server
// runs it (shards:0) and unsharded (shards:1: every thread on the same
// cache lines).
//
// bench/run_metrics_bench.sh runs it with repetitions and prints the
// medians.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "bench/bench_ids.h"
#include "benchmark/benchmark.h"
#include "client/embedding_client.h"
#include "core/table_registry.h"
#include "server/embedding_server.h"
#include "server/server_metrics.h"

namespace embedserve {
namespace {

constexpr int64_t kRows = 1'000'000, kDim = 64, kLookup = 512;

// GET /metrics once; returns the bytes answered (0 on failure).
size_t Scrape(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  size_t got = 0;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const char kRequest[] = "GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n";
    if (::send(fd, kRequest, sizeof(kRequest) - 1, MSG_NOSIGNAL) > 0) {
      char buf[16384];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) got += static_cast<size_t>(n);
    }
  }
  ::close(fd);
  return got;
}

// Three servers in one process over one registry: metrics off, metrics on,
// and metrics off again (for the A/A run).
struct Fixture {
  std::shared_ptr<TableRegistry> registry = std::make_shared<TableRegistry>();
  std::unique_ptr<EmbeddingServer> servers[3];
  std::unique_ptr<EmbeddingClient> clients[3];
  std::vector<v1::LookupRequest> requests;
  absl::Notification stop;
  std::thread scraper;

  Fixture() {
    for (int s = 0; s < 3; ++s) {
      ServerOptions options;
      options.address = "127.0.0.1:0";
      if (s == 1) options.metrics_address = "127.0.0.1:0";
      servers[s] = *EmbeddingServer::Start(options, registry);
      clients[s] = EmbeddingClient::Connect(servers[s]->address());
    }
    v1::TableSpec spec;
    spec.set_name("bench");
    spec.set_num_embeddings(kRows);
    spec.set_embedding_dim(kDim);
    spec.mutable_initializer()->set_kind(v1::Initializer::UNIFORM);
    if (!clients[0]->CreateTable(spec).ok()) std::abort();
    for (uint64_t s = 0; s < 16; ++s) {
      v1::LookupRequest req;
      auto* q = req.add_queries();
      q->set_table("bench");
      for (int64_t id : bench::UniformIds(kLookup, kRows, 700 + s)) q->add_ids(id);
      requests.push_back(std::move(req));
    }
    const int port = servers[1]->metrics_port();
    scraper = std::thread([this, port] {
      do {
        if (Scrape(port) == 0) std::abort();
      } while (!stop.WaitForNotificationWithTimeout(absl::Seconds(1)));
    });
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();  // never destroyed: the process ends
  return *f;
}

void BM_LookupOffVsOn(benchmark::State& state) {
  constexpr int kBlock = 16;
  Fixture& f = F();
  const bool aa = state.range(0) == 1;
  EmbeddingClient* side[2] = {f.clients[0].get(), f.clients[aa ? 2 : 1].get()};
  state.SetLabel(aa ? "A/A: metrics off vs off" : "metrics off vs on");
  std::chrono::nanoseconds spent[2] = {};
  int64_t done[2] = {};
  size_t i = static_cast<size_t>(state.thread_index()) * 7;
  int first = state.thread_index() % 2;
  for (auto _ : state) {
    for (int k = 0; k < 2; ++k) {  // both sides, in an order that flips every time
      const int s = first ^ k;
      const auto t0 = std::chrono::steady_clock::now();
      for (int n = 0; n < kBlock; ++n) {
        v1::LookupResponse resp;
        grpc::ClientContext ctx;
        if (!side[s]->stub()->Lookup(&ctx, f.requests[i++ % f.requests.size()], &resp).ok()) {
          state.SkipWithError("lookup");
        }
      }
      spent[s] += std::chrono::steady_clock::now() - t0;
      done[s] += kBlock;
    }
    first ^= 1;
  }
  const double a = done[0] * 1e9 / std::max<double>(1, spent[0].count());
  const double b = done[1] * 1e9 / std::max<double>(1, spent[1].count());
  state.counters["a_lookups_per_s"] = benchmark::Counter(a, benchmark::Counter::kAvgThreads);
  state.counters["b_lookups_per_s"] = benchmark::Counter(b, benchmark::Counter::kAvgThreads);
  state.counters["b_over_a"] = benchmark::Counter(b / a, benchmark::Counter::kAvgThreads);
  state.SetItemsProcessed(state.iterations() * 2 * kBlock * kLookup);
}

void BM_CountLookup(benchmark::State& state) {
  static ServiceMetrics* sharded = new ServiceMetrics(EmbeddingServiceImpl::RpcNames());
  static ServiceMetrics* shared = new ServiceMetrics(EmbeddingServiceImpl::RpcNames(), 1);
  ServiceMetrics* metrics = state.range(0) == 1 ? shared : sharded;
  for (auto _ : state) {
    metrics->RecordRpc(4, 0, std::chrono::microseconds(80));
    metrics->AddRowsLookedUp("bench", kLookup);
  }
  state.SetItemsProcessed(state.iterations());
}

BENCHMARK(BM_LookupOffVsOn)
    ->ArgName("aa")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_CountLookup)->ArgName("shards")->Arg(0)->Arg(1)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace embedserve

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  embedserve::F();  // the servers and the table exist before any measurement
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
