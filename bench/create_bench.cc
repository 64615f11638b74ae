// Creating a table in memory: the row storage allocated (zeroed, optimizer
// state initialised) and every row filled by its initializer (N(0, 1), as
// nn.Embedding), as EmbeddingTable::Create does. Run through
// bench/run_create_bench.sh to see it next to torch.nn.Embedding of the same
// size.
//
// Variants, per table shape:
//   alloc          storage only (zeroed rows and state): the floor of a fill
//   v1             generator 1 (SplitMix64 + libm, serial): before generator 2
//   v2/<level>     generator 2 at one SIMD level, this thread only
//   v2/<best>/2t   generator 2 at the best level on 2 threads (a pool of 1 and
//                  this thread: LookupParallelism(1, ...))
// Shapes: 2M x 64 (SGD: rows only), 4M x 64 Adagrad (rows and as much state),
// 20M x 64 (SGD; 5.1 GB). Generator 1 at 20M (about 40 s an iteration) only
// with EMBEDSERVE_CREATE_V1_LARGE=1.
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "core/enum_names.h"
#include "core/gather.h"
#include "core/initializer.h"
#include "core/internal/init_kernels.h"
#include "core/internal/sharded_row_storage.h"
#include "core/parallel_lookup.h"

namespace embedserve {
namespace {

struct Shape {
  const char* name;
  int64_t rows;
  OptimizerKind optimizer;
};

TableSpec SpecFor(const Shape& shape, uint32_t generator) {
  TableSpec s;
  s.name = "bench";
  s.num_embeddings = shape.rows;
  s.embedding_dim = 64;
  s.optimizer.kind = shape.optimizer;
  s.initializer.generator = generator;
  return *NormalizeTableSpec(s);
}

// One create per iteration; freeing the table is not timed (torch's side
// times construction only too).
void RunCreate(benchmark::State& state, const TableSpec& spec, bool fill, SimdLevel level,
               LookupParallelism* parallelism) {
  if (!ForceSimdLevel(level).ok()) {
    state.SkipWithError("level not supported here");
    return;
  }
  for (auto _ : state) {
    auto rows = internal::ShardedRowStorage::Create(spec);
    if (!rows.ok()) {
      state.SkipWithError(std::string(rows.status().message()).c_str());
      break;
    }
    if (fill) FillInitialRows(spec, {}, **rows, parallelism);
    benchmark::DoNotOptimize((*rows)->Row(spec.num_embeddings - 1));
    state.PauseTiming();
    rows->reset();
    state.ResumeTiming();
  }
  state.counters["rows"] = static_cast<double>(spec.num_embeddings);
  state.counters["Mrows/s"] = benchmark::Counter(static_cast<double>(spec.num_embeddings) / 1e6,
                                                 benchmark::Counter::kIsIterationInvariantRate);
  (void)ForceSimdLevel(BestSupportedLevel());
}

// The generator alone: N(0, 1) values of 64-column rows into a 16 KiB
// buffer that stays in L1, so compute per value without the memory system.
void RunKernel(benchmark::State& state, SimdLevel level) {
  if (!CpuSupports(level)) {
    state.SkipWithError("level not supported here");
    return;
  }
  const internal::InitFillFn fill = internal::InitKernelsFor(level).fill;
  internal::InitParams p;
  std::vector<float> out(4096);
  uint64_t row = 0;
  for (auto _ : state) {
    fill(p, row, 64, 16, out.data());
    row += 64;
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["ns/value"] = benchmark::Counter(
      4096, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

void Register() {
  for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
    benchmark::RegisterBenchmark((std::string("kernel/") + std::string(Name(level))).c_str(),
                                 [level](benchmark::State& st) { RunKernel(st, level); });
  }
  static LookupParallelism* two_threads = new LookupParallelism(1, 1);
  const bool v1_large = std::getenv("EMBEDSERVE_CREATE_V1_LARGE") != nullptr;
  const Shape shapes[] = {{"2M_sgd", 2'000'000, OptimizerKind::kSgd},
                          {"4M_adagrad", 4'000'000, OptimizerKind::kAdagrad},
                          {"20M_sgd", 20'000'000, OptimizerKind::kSgd}};
  const SimdLevel best = BestSupportedLevel();
  for (const Shape& shape : shapes) {
    const bool large = shape.rows > 4'000'000;
    auto reg = [&](const std::string& variant, uint32_t generator, bool fill, SimdLevel level,
                   LookupParallelism* p) {
      const TableSpec spec = SpecFor(shape, generator);
      benchmark::RegisterBenchmark(
          ("create/" + std::string(shape.name) + "/" + variant).c_str(),
          [spec, fill, level, p](benchmark::State& st) { RunCreate(st, spec, fill, level, p); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime()
          ->Iterations(large ? 1 : 3);
    };
    reg("alloc", 2, false, best, nullptr);
    if (!large || v1_large) reg("v1", 1, true, best, nullptr);
    for (SimdLevel level : {SimdLevel::kScalar, SimdLevel::kAvx2, SimdLevel::kAvx512}) {
      if (CpuSupports(level)) reg(std::string("v2/") + std::string(Name(level)), 2, true, level, nullptr);
    }
    reg(std::string("v2/") + std::string(Name(best)) + "/2t", 2, true, best, two_threads);
  }
}

}  // namespace
}  // namespace embedserve

int main(int argc, char** argv) {
  embedserve::Register();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
