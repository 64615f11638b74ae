// Replay of pushes into dense rows (issue 14, restart): the stepping that
// TableRegistry::Replay hands to internal::ParallelReplay, on its own,
// without reading a log. A table of 4 M rows x 64 floats (1 GiB, SGD) takes
// pushes of 4,096 distinct random ids, as bench/restart_bench.py's log
// holds them.
//
//   step_rows          StepRows on one thread, every id (parts == 1)
//   parallel/W         ParallelReplay with W workers: Push each push (its
//                      ids and sums in place, pinned), then Drain
//   push               the live path's stepping of the same pushes: a
//                      memory-only EmbeddingTable's ApplyGradients
//                      (coalescing, reading the records, stepping copies,
//                      writing them back under the seqlock)
//
// Figures: ns per stepped row (items_per_second's inverse). Random rows
// miss the caches and, on a VM, the TLB: the benchmark measures how well
// the stepping overlaps those misses.
//
//   build/bench/replay_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true   (one command line)

#include <malloc.h>

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "benchmark/benchmark.h"
#include "core/embedding_table.h"
#include "core/internal/parallel_replay.h"
#include "core/internal/sharded_row_storage.h"
#include "core/optimizer.h"
#include "core/table_spec.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kRows = 4'000'000;
constexpr int64_t kDim = 64;
constexpr int64_t kPushRows = 4096;
constexpr int kPushes = 64;  // 256 K row steps a pass, 64 MiB of sums

// kRows x kDim, SGD with lr 0.01.
TableSpec SgdSpec(const char* name) {
  TableSpec spec;
  spec.name = name;
  spec.num_embeddings = kRows;
  spec.embedding_dim = kDim;
  spec.optimizer.kind = OptimizerKind::kSgd;
  spec.optimizer.lr = 0.01f;
  return spec;
}

struct World {
  std::unique_ptr<ShardedRowStorage> rows;
  std::vector<std::vector<int64_t>> ids;  // per push, distinct
  std::vector<float> sums;                // kPushes x kPushRows x kDim
  StepScalars k;

  World() {
    absl::StatusOr<TableSpec> normal = NormalizeTableSpec(SgdSpec("replay"));
    if (!normal.ok()) std::abort();
    absl::StatusOr<std::unique_ptr<ShardedRowStorage>> made = ShardedRowStorage::Create(*normal);
    if (!made.ok()) std::abort();
    rows = std::move(*made);
    // Every row touched once, so that the first pass pays no first-touch
    // page faults.
    for (int64_t r = 0; r < kRows; ++r) rows->MutableRow(r)[0] = 0;
    std::mt19937_64 rng(14);
    std::uniform_int_distribution<int64_t> id(0, kRows - 1);
    for (int p = 0; p < kPushes; ++p) {
      absl::flat_hash_set<int64_t> seen;
      std::vector<int64_t> push;
      while (static_cast<int64_t>(push.size()) < kPushRows) {
        const int64_t i = id(rng);
        if (seen.insert(i).second) push.push_back(i);
      }
      ids.push_back(std::move(push));
    }
    sums.assign(static_cast<size_t>(kPushes * kPushRows * kDim), 1e-3f);
    k = ComputeStepScalars(normal->optimizer, 1);
  }
  absl::Span<const float> Sums(int p) const {
    return absl::MakeConstSpan(sums).subspan(static_cast<size_t>(p * kPushRows * kDim),
                                             static_cast<size_t>(kPushRows * kDim));
  }
};

World& TheWorld() {
  static World* w = new World();
  return *w;
}

void BM_StepRows(benchmark::State& state) {
  World& w = TheWorld();
  for (auto _ : state) {
    for (int p = 0; p < kPushes; ++p) {
      StepRows(*w.rows, OptimizerKind::kSgd, w.k, w.ids[p], w.Sums(p), 0, 1);
    }
  }
  state.SetItemsProcessed(state.iterations() * kPushes * kPushRows);
}
BENCHMARK(BM_StepRows)->Name("step_rows")->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Parallel(benchmark::State& state) {
  World& w = TheWorld();
  ParallelReplay replay(static_cast<int>(state.range(0)));
  const auto pin = std::make_shared<int>(0);
  for (auto _ : state) {
    for (int p = 0; p < kPushes; ++p) {
      replay.Push(*w.rows, OptimizerKind::kSgd, w.k, w.ids[p], w.Sums(p), pin);
    }
    replay.Drain();
  }
  state.SetItemsProcessed(state.iterations() * kPushes * kPushRows);
}
BENCHMARK(BM_Parallel)
    ->Name("parallel")
    ->Arg(1)
    ->Arg(2)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_Push(benchmark::State& state) {
  World& w = TheWorld();
  static EmbeddingTable* table = [] {
    absl::StatusOr<std::unique_ptr<EmbeddingTable>> made = EmbeddingTable::Create(SgdSpec("push"));
    if (!made.ok()) std::abort();
    return made->release();
  }();
  for (auto _ : state) {
    for (int p = 0; p < kPushes; ++p) {
      if (!table->ApplyGradients(w.ids[p], w.Sums(p)).ok()) std::abort();
    }
  }
  state.SetItemsProcessed(state.iterations() * kPushes * kPushRows);
}
BENCHMARK(BM_Push)->Name("push")->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
}  // namespace embedserve::internal

int main(int argc, char** argv) {
  // As the server (server/startup.h, KeepFreedMemory): freed pushes' buffers
  // stay in the process; otherwise glibc hands them back and every push
  // page-faults its ~1 MiB of buffers in again (a third of `push`'s time).
  mallopt(M_MMAP_THRESHOLD, 64 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
