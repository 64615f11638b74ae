// Gradient pushes over gRPC (loopback, in-process server): rows applied per
// second for each optimizer, unary vs streaming, and lookup throughput with
// and without a concurrent push load (paced, or flat out). BM_PushKept
// compares how a server keeps its tables (memory only, the update log, or
// the rows written to RocksDB on every push) for one streaming trainer and
// for four sync trainers (bench/run_train_bench.sh interleaves them).
//
// Table 1,000,000 x 64 per optimizer; pushes of 4,096 uniform random ids;
// lookups of 512 ids.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_ids.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "client/embedding_client.h"
#include "core/table_registry.h"
#include "server/embedding_server.h"
#include "server/snapshot_scheduler.h"
#include "server/startup.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"

namespace embedserve {
namespace {

constexpr int64_t kRows = 1'000'000, kDim = 64, kPush = 4096, kLookup = 512;
constexpr const char* kOptimizers[] = {"SGD", "ADAGRAD", "ROWWISE_ADAGRAD", "SPARSE_ADAM"};

// How a fixture's server keeps its tables.
enum class Keep {
  kMemory,     // no --data_dir
  kLogAsync,   // --data_dir --durability=async (the update log, snapshots by the defaults)
  kLogSync,    // --data_dir --durability=sync
  kRowsAsync,  // --data_dir --durability=async --update_log=false (rows to RocksDB per push)
  kRowsSync,   // --data_dir --durability=sync --update_log=false
};
constexpr const char* kKeepNames[] = {"memory", "log-async", "log-sync", "rows-async",
                                      "rows-sync"};

struct Fixture {
  std::unique_ptr<RocksDbStore> store;
  std::unique_ptr<FileUpdateLog> log;
  std::shared_ptr<TableRegistry> registry;
  std::unique_ptr<SnapshotScheduler> snapshots;
  std::unique_ptr<EmbeddingServer> server;
  std::unique_ptr<EmbeddingClient> client;
  std::vector<v1::PushRequest> pushes;  // per optimizer table, prebuilt

  // keep: as embedserve_main would with the matching flags (a temp data dir,
  // the update log and its snapshot scheduler at the server's defaults).
  // tables: indexes into kOptimizers. push_nice: the server's push lane
  // priority (ServiceOptions::push_nice). push_share:
  // ServiceOptions::push_share_under_lookups.
  Fixture(Keep keep, std::vector<int> tables, int push_nice = 10, double push_share = 0.5) {
    ServerOptions options;
    options.address = "127.0.0.1:0";
    options.service.push_nice = push_nice;
    options.service.push_share_under_lookups = push_share;
    if (keep != Keep::kMemory) {
      const bool sync = keep == Keep::kLogSync || keep == Keep::kRowsSync;
      const std::string dir = std::filesystem::temp_directory_path() /
                              (std::string("embedserve-train-bench-") + kKeepNames[int(keep)]);
      std::filesystem::remove_all(dir);
      store = *OpenDataDir(dir, sync ? "sync" : "async");
      options.store = store.get();
    }
    registry = std::make_shared<TableRegistry>(0, store.get());
    if (keep == Keep::kLogAsync || keep == Keep::kLogSync) {
      log = *OpenUpdateLog(std::filesystem::temp_directory_path() /
                               (std::string("embedserve-train-bench-") + kKeepNames[int(keep)]),
                           keep == Keep::kLogSync ? "sync" : "async", int64_t{64} << 20);
      registry->SetUpdateLog(log.get());
      store->SetUpdateLog(log.get());
      snapshots = std::make_unique<SnapshotScheduler>(*registry, *log, SnapshotPolicy{});
    }
    server = *EmbeddingServer::Start(options, registry);
    client = EmbeddingClient::Connect(server->address());
    for (int k : tables) {
      v1::TableSpec spec;
      spec.set_name(kOptimizers[k]);
      spec.set_num_embeddings(kRows);
      spec.set_embedding_dim(kDim);
      spec.mutable_initializer()->set_kind(v1::Initializer::UNIFORM);
      v1::OptimizerSpec::Kind kind;
      v1::OptimizerSpec::Kind_Parse(kOptimizers[k], &kind);
      spec.mutable_optimizer()->set_kind(kind);
      spec.mutable_optimizer()->set_lr(1e-4);
      if (!client->CreateTable(spec).ok()) std::abort();
    }
    const std::vector<float> grads(kPush * kDim, 1e-3f);
    for (uint64_t s = 0; s < 16; ++s) {
      v1::PushRequest req;
      for (int64_t id : bench::UniformIds(kPush, kRows, 100 + s)) req.add_ids(id);
      req.set_grads(grads.data(), grads.size() * sizeof(float));
      pushes.push_back(std::move(req));
    }
  }
};

Fixture& F() {
  static Fixture* f = new Fixture(Keep::kMemory, {0, 1, 2, 3});
  return *f;
}

// The same server with pushes at lookups' priority (push_nice 0, no pause
// between pushes): the baseline of the lookups-first change.
Fixture& EqualPriority() {
  static Fixture* f = new Fixture(Keep::kMemory, {0}, /*push_nice=*/0, /*push_share=*/1.0);
  return *f;
}

// A durable fixture holds the SGD and SPARSE_ADAM tables (async) or the SGD
// one (sync); creating all four would leave gigabytes of compaction running
// under the measurement of --update_log=false.
Fixture& Kept(Keep keep) {
  static Fixture* fixtures[5] = {};
  static absl::Mutex mu;
  absl::MutexLock lock(&mu);
  Fixture*& f = fixtures[int(keep)];
  if (f == nullptr) {
    if (keep == Keep::kMemory) return F();
    const bool sync = keep == Keep::kLogSync || keep == Keep::kRowsSync;
    f = new Fixture(keep, sync ? std::vector<int>{0} : std::vector<int>{0, 3});
  }
  return *f;
}

void BM_PushUnary(benchmark::State& state) {
  Fixture& f = F();
  const std::string table = kOptimizers[state.range(0)];
  state.SetLabel(table);
  size_t i = 0;
  for (auto _ : state) {
    v1::PushRequest req = f.pushes[i++ % f.pushes.size()];
    req.set_table(table);
    v1::PushResponse resp;
    grpc::ClientContext ctx;
    if (!f.client->stub()->PushGradients(&ctx, req, &resp).ok()) state.SkipWithError("push");
  }
  state.SetItemsProcessed(state.iterations() * kPush);
}

// Streams `n` pushes with up to `window` unanswered; returns false on error.
bool StreamPushes(Fixture& f, const std::string& table, int64_t n, int window,
                  const std::atomic<bool>* stop = nullptr,
                  std::atomic<int64_t>* applied = nullptr) {
  grpc::ClientContext ctx;
  auto stream = f.client->stub()->StreamGradients(&ctx);
  v1::PushResponse resp;
  int64_t sent = 0, answered = 0;
  bool ok = true;
  while (sent < n && !(stop && stop->load())) {
    v1::PushRequest req = f.pushes[sent % f.pushes.size()];
    req.set_table(table);
    req.set_sequence(sent);
    if (!stream->Write(req)) break;
    ++sent;
    if (sent - answered >= window) {
      if (!stream->Read(&resp) || resp.code() != 0) ok = false;
      ++answered;
      if (applied != nullptr && resp.code() == 0) *applied += kPush;
    }
  }
  stream->WritesDone();
  while (answered < sent && stream->Read(&resp)) {
    if (resp.code() != 0) ok = false;
    ++answered;
  }
  return stream->Finish().ok() && ok && answered == sent;
}

void BM_PushStream(benchmark::State& state) {
  Fixture& f = F();
  const std::string table = kOptimizers[state.range(0)];
  state.SetLabel(table);
  constexpr int64_t kPerIteration = 32;
  for (auto _ : state) {
    if (!StreamPushes(f, table, kPerIteration, /*window=*/8)) state.SkipWithError("stream");
  }
  state.SetItemsProcessed(state.iterations() * kPerIteration * kPush);
}

// Pushes streamed into a table kept as range(0) says (Keep): range(1) = 1,
// one trainer streams 32 pushes (window 8) into kOptimizers[range(2)];
// range(1) = 4, four trainers, each on its own stream, push 16 each into
// SGD at once (with the sync log, their records share fsyncs).
void BM_PushKept(benchmark::State& state) {
  const Keep keep = static_cast<Keep>(state.range(0));
  const int trainers = static_cast<int>(state.range(1));
  const std::string table = kOptimizers[state.range(2)];
  Fixture& f = Kept(keep);
  state.SetLabel(absl::StrCat(kKeepNames[int(keep)], " ", table, " x", trainers));
  const int64_t per_trainer = trainers == 1 ? 32 : 16;
  for (auto _ : state) {
    std::vector<std::thread> threads;
    std::atomic<bool> ok{true};
    for (int t = 0; t < trainers; ++t) {
      threads.emplace_back([&] {
        if (!StreamPushes(f, table, per_trainer, /*window=*/8)) ok = false;
      });
    }
    for (std::thread& t : threads) t.join();
    if (!ok) state.SkipWithError("stream");
  }
  state.SetItemsProcessed(state.iterations() * trainers * per_trainer * kPush);
}

void BM_LookupGrpc(benchmark::State& state) {
  Fixture& f = state.range(1) == 0 ? EqualPriority() : F();
  state.SetLabel(state.range(1) == 0 ? "pushes at lookup priority"
                                     : "lookups first (default: niced, paced pushes)");
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pushed{0};
  std::thread pusher;
  const int64_t rate = state.range(0);  // pushed rows per second; -1 = flat out
  if (rate != 0) {
    pusher = std::thread([&] {
      if (rate < 0) {
        while (!stop) {
          if (StreamPushes(f, "SGD", 1 << 30, 8, &stop, &pushed) == false && !stop) break;
        }
        return;
      }
      // Paced unary pushes: rate / kPush pushes a second.
      const auto period = std::chrono::nanoseconds(1'000'000'000LL * kPush / rate);
      auto next = std::chrono::steady_clock::now();
      for (size_t i = 0; !stop; ++i) {
        v1::PushRequest req = f.pushes[i % f.pushes.size()];
        req.set_table("SGD");
        v1::PushResponse resp;
        grpc::ClientContext ctx;
        if (f.client->stub()->PushGradients(&ctx, req, &resp).ok()) pushed += kPush;
        next += period;
        std::this_thread::sleep_until(next);
      }
    });
  }
  std::vector<v1::LookupRequest> requests;
  for (uint64_t s = 0; s < 16; ++s) {
    v1::LookupRequest req;
    auto* q = req.add_queries();
    q->set_table("SGD");
    for (int64_t id : bench::UniformIds(kLookup, kRows, 900 + s)) q->add_ids(id);
    requests.push_back(std::move(req));
  }
  std::vector<double> latency_us;
  size_t i = 0;
  const int64_t pushed_before = pushed.load();
  const auto started = std::chrono::steady_clock::now();
  for (auto _ : state) {
    v1::LookupResponse resp;
    grpc::ClientContext ctx;
    const auto t0 = std::chrono::steady_clock::now();
    if (!f.client->stub()->Lookup(&ctx, requests[i++ % requests.size()], &resp).ok()) {
      state.SkipWithError("lookup");
    }
    latency_us.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  const int64_t pushed_rows = pushed.load() - pushed_before;
  stop = true;
  if (pusher.joinable()) pusher.join();
  state.SetItemsProcessed(state.iterations() * kLookup);
  std::sort(latency_us.begin(), latency_us.end());
  if (!latency_us.empty()) {
    state.counters["p50_us"] = latency_us[latency_us.size() / 2];
    state.counters["p99_us"] = latency_us[latency_us.size() * 99 / 100];
  }
  state.counters["push_rows_per_s"] = seconds > 0 ? pushed_rows / seconds : 0;
}

BENCHMARK(BM_PushUnary)->DenseRange(0, 3)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_PushStream)->DenseRange(0, 3)->UseRealTime()->Unit(benchmark::kMillisecond);
// push_rows_per_s: 0 = no push load; 250,000 (61 pushes of 4,096 a second,
// a busy trainer); -1 = a stream pushing as fast as the server applies.
// keep (Keep), trainers, optimizer: one async trainer for SGD and
// SPARSE_ADAM, four sync trainers for SGD, each next to memory only.
BENCHMARK(BM_PushKept)
    ->ArgNames({"keep", "trainers", "opt"})
    ->ArgsProduct({{int(Keep::kMemory), int(Keep::kLogAsync), int(Keep::kRowsAsync)}, {1}, {0, 3}})
    ->ArgsProduct({{int(Keep::kMemory), int(Keep::kLogSync), int(Keep::kRowsSync)}, {4}, {0}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
// push_nice 0: pushes at lookups' priority (the baseline); 10: the default.
BENCHMARK(BM_LookupGrpc)
    ->ArgNames({"push_rows_per_s", "push_nice"})
    ->Args({0, 10})
    ->Args({250'000, 10})
    ->Args({-1, 0})
    ->Args({-1, 10})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace embedserve

BENCHMARK_MAIN();
