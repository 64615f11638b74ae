// Lookups with and without a concurrent push load, on the engine (no gRPC),
// so that the figure is the cost of the table's concurrency mechanism and
// not of the transport. A background thread pushes SGD gradients of 512 rows
// back to back while the measured thread looks up 512 rows.
//
//   BM_Lookup/push_load:0  lookups alone
//   BM_Lookup/push_load:1  lookups while one thread pushes
//   BM_Push                pushes alone (rows applied per second)
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "bench/bench_ids.h"
#include "benchmark/benchmark.h"
#include "core/embedding_table.h"

namespace embedserve {
namespace {

constexpr int64_t kRows = 1'000'000, kDim = 64, kBatch = 512;

EmbeddingTable& Table() {
  static EmbeddingTable* t = [] {
    TableSpec spec;
    spec.name = "bench";
    spec.num_embeddings = kRows;
    spec.embedding_dim = kDim;
    spec.initializer.kind = InitKind::kUniform;
    return EmbeddingTable::Create(spec)->release();
  }();
  return *t;
}

void BM_Lookup(benchmark::State& state) {
  EmbeddingTable& t = Table();
  std::atomic<bool> stop{false};
  std::atomic<int64_t> pushed_rows{0};
  std::thread pusher;
  if (state.range(0) == 1) {
    pusher = std::thread([&] {
      const std::vector<float> grads(kBatch * kDim, 1e-6f);
      for (uint64_t seed = 1; !stop.load(std::memory_order_relaxed); ++seed) {
        const std::vector<int64_t> ids = bench::UniformIds(kBatch, kRows, seed * 7919);
        if (t.ApplyGradients(ids, grads).ok()) pushed_rows += kBatch;
      }
    });
  }
  std::vector<std::vector<int64_t>> batches;
  for (uint64_t s = 0; s < 64; ++s) batches.push_back(bench::UniformIds(kBatch, kRows, 1000 + s));
  std::vector<float> out(kBatch * kDim);
  size_t i = 0;
  for (auto _ : state) {
    if (!t.Lookup(batches[i++ % batches.size()], absl::MakeSpan(out)).ok()) {
      state.SkipWithError("lookup failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  stop = true;
  if (pusher.joinable()) pusher.join();
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["pushed_rows_per_s"] =
      benchmark::Counter(static_cast<double>(pushed_rows.load()), benchmark::Counter::kIsRate);
}

void BM_Push(benchmark::State& state) {
  EmbeddingTable& t = Table();
  const std::vector<float> grads(kBatch * kDim, 1e-6f);
  std::vector<std::vector<int64_t>> batches;
  for (uint64_t s = 0; s < 64; ++s) batches.push_back(bench::UniformIds(kBatch, kRows, 5000 + s));
  size_t i = 0;
  for (auto _ : state) {
    if (!t.ApplyGradients(batches[i++ % batches.size()], grads).ok()) {
      state.SkipWithError("push failed");
    }
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

BENCHMARK(BM_Lookup)
    ->ArgName("push_load")
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_Push)->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace embedserve

BENCHMARK_MAIN();
