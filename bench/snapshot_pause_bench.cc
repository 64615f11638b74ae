// Pushes while a table snapshots (issue 14: a snapshot pauses pushes for at
// most a bounded piece at a time), dense and dynamic tables of the same
// rows side by side:
//
//   pause/dense/R    a durable dense table of R rows x 64 (SGD)
//   pause/dynamic/R  a durable dynamic table holding R rows x 64 (SGD)
//
// Each iteration runs one Snapshot() on the benchmark's thread while a
// second thread pushes 512 random stored ids back to back (ApplyGradients,
// the update log on, async), then the same pusher alone for as long. The
// time measured is the snapshot's. Counters: push_max_ms, the longest push
// while a snapshot ran; alone_max_ms, the longest push without one (the
// baseline: what a push costs when nothing pauses it); pushes_during and
// pushes_alone. A snapshot that held the writer's lock for the whole
// table shows a push_max_ms close to the snapshot's time.
//
// The store and log go under $BENCH_DATA_DIR (default /var/tmp: a real
// disk, not tmpfs); each benchmark makes and removes its own directory.
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/table_registry.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"

namespace embedserve {
namespace {

constexpr int64_t kDim = 64, kBatch = 512;
using Clock = std::chrono::steady_clock;

std::string MakeDir() {
  const char* root = getenv("BENCH_DATA_DIR");
  std::string tmpl = std::string(root ? root : "/var/tmp") + "/snapshot_pause_bench.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

// A durable registry in a fresh directory, removed at the end.
struct World {
  World(int64_t rows, bool dynamic) : dir(MakeDir()), rows(rows) {
    store = *RocksDbStore::Open({dir + "/db", /*sync=*/false});
    UpdateLogOptions o;
    o.dir = dir + "/log";
    log = *FileUpdateLog::Open(o);
    store->SetUpdateLog(log.get());
    registry = std::make_unique<TableRegistry>(0, store.get());
    registry->SetUpdateLog(log.get());
    TableSpec spec;
    spec.name = "t";
    spec.embedding_dim = kDim;
    spec.optimizer.kind = OptimizerKind::kSgd;
    spec.optimizer.lr = 0.01;
    spec.initializer.seed = 1;
    if (dynamic) {
      spec.dynamic = DynamicSpec{};
    } else {
      spec.num_embeddings = rows;
    }
    if (!registry->Create(spec).ok()) abort();
    table = *registry->Get("t");
    if (dynamic) {  // rows for ids 0 .. rows - 1, stored by assigns
      std::vector<float> values(4096 * kDim, 0.5f);
      for (int64_t first = 0; first < rows; first += 4096) {
        const int64_t n = std::min<int64_t>(4096, rows - first);
        std::vector<int64_t> ids(n);
        for (int64_t i = 0; i < n; ++i) ids[i] = first + i;
        if (!table->AssignRows(ids, absl::MakeConstSpan(values.data(), n * kDim)).ok()) abort();
      }
    }
    if (!table->Snapshot().ok()) abort();  // the log so far goes
  }
  ~World() {
    table.reset();
    registry.reset();
    log.reset();
    store.reset();
    std::filesystem::remove_all(dir);
  }
  const std::string dir;
  const int64_t rows;
  std::unique_ptr<RocksDbStore> store;
  std::unique_ptr<FileUpdateLog> log;
  std::unique_ptr<TableRegistry> registry;
  std::shared_ptr<EmbeddingTable> table;
};

// Pushes until `stop`; returns the longest push in ms and counts them.
double Pusher(EmbeddingTable& t, int64_t rows, const std::atomic<bool>& stop, int64_t* pushes,
              uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<int64_t> ids(kBatch);
  const std::vector<float> grads(kBatch * kDim, 0.001f);
  double longest = 0;
  *pushes = 0;
  while (!stop.load(std::memory_order_relaxed)) {
    // Distinct ids: a random start and an odd stride.
    const int64_t start = static_cast<int64_t>(rng() % rows);
    for (int64_t i = 0; i < kBatch; ++i) ids[i] = (start + i * 7919) % rows;
    const auto t0 = Clock::now();
    if (!t.ApplyGradients(ids, grads).ok()) abort();
    longest = std::max(longest, std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    ++*pushes;
  }
  return longest;
}

void BM_Pause(benchmark::State& state, bool dynamic) {
  World w(state.range(0), dynamic);
  double during_max = 0, alone_max = 0;
  int64_t during = 0, alone = 0;
  uint64_t seed = 1;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    int64_t n = 0;
    double longest = 0;
    std::thread pusher([&] { longest = Pusher(*w.table, w.rows, stop, &n, seed++); });
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // pushes under way
    const auto t0 = Clock::now();
    if (!w.table->Snapshot().ok()) abort();
    const auto took = Clock::now() - t0;
    stop = true;
    pusher.join();
    state.SetIterationTime(std::chrono::duration<double>(took).count());
    during_max = std::max(during_max, longest);
    during += n;
    // The same pushes alone, for as long.
    stop = false;
    std::thread alone_pusher([&] { longest = Pusher(*w.table, w.rows, stop, &n, seed++); });
    std::this_thread::sleep_for(took + std::chrono::milliseconds(50));
    stop = true;
    alone_pusher.join();
    alone_max = std::max(alone_max, longest);
    alone += n;
  }
  state.counters["push_max_ms"] = during_max;
  state.counters["alone_max_ms"] = alone_max;
  state.counters["pushes_during"] = static_cast<double>(during);
  state.counters["pushes_alone"] = static_cast<double>(alone);
}

}  // namespace
}  // namespace embedserve

int main(int argc, char** argv) {
  using namespace embedserve;
  benchmark::Initialize(&argc, argv);
  for (int64_t rows : {int64_t{1} << 20, int64_t{4} << 20}) {
    for (bool dynamic : {false, true}) {
      benchmark::RegisterBenchmark(
          (std::string("pause/") + (dynamic ? "dynamic/" : "dense/") + std::to_string(rows)).c_str(),
          [dynamic](benchmark::State& s) { BM_Pause(s, dynamic); })
          ->Arg(rows)
          ->Iterations(3)
          ->UseManualTime()
          ->Unit(benchmark::kMillisecond);
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
