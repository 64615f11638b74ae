// Gather kernels on a large table, single thread, against a plain memcpy of
// the same number of bytes. Run through bench/run_kernel_bench.sh to see them
// next to torch.nn.functional.embedding / embedding_bag.
//
// Environment: EMBEDSERVE_BENCH_ROWS (default 10,000,000),
// EMBEDSERVE_BENCH_DIM (64), EMBEDSERVE_BENCH_IDS (65,536).
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_ids.h"
#include "benchmark/benchmark.h"
#include "core/embedding_table.h"
#include "core/gather.h"

namespace embedserve {
namespace {

int64_t EnvInt(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v ? std::strtoll(v, nullptr, 10) : fallback;
}

struct Fixture {
  int64_t rows = EnvInt("EMBEDSERVE_BENCH_ROWS", 10'000'000);
  int64_t dim = EnvInt("EMBEDSERVE_BENCH_DIM", 64);
  int64_t num_ids = EnvInt("EMBEDSERVE_BENCH_IDS", 65'536);
  int64_t bag = 8;
  std::unique_ptr<EmbeddingTable> table;
  std::vector<int64_t> ids;
  std::vector<int64_t> bounds;

  Fixture() {
    TableSpec spec;
    spec.name = "bench";
    spec.num_embeddings = rows;
    spec.embedding_dim = dim;
    spec.initializer.kind = InitKind::kUniform;
    table = *EmbeddingTable::Create(spec);
    ids = bench::UniformIds(num_ids, rows, /*seed=*/12345);
    for (int64_t b = 0; b <= num_ids / bag; ++b) bounds.push_back(b * bag);
  }
};

Fixture& F() {
  static Fixture* f = new Fixture();
  return *f;
}

void BM_Memcpy(benchmark::State& state) {
  Fixture& f = F();
  // The same bytes a gather writes, copied from one contiguous source.
  const size_t bytes = f.num_ids * f.dim * sizeof(float);
  std::vector<float> src(f.num_ids * f.dim, 1.0f), out(f.num_ids * f.dim);
  for (auto _ : state) {
    std::memcpy(out.data(), src.data(), bytes);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * f.num_ids);
  state.SetBytesProcessed(state.iterations() * bytes);
}

bool Force(benchmark::State& state, SimdLevel level) {
  if (!ForceSimdLevel(level).ok()) {
    state.SkipWithError("CPU lacks this SIMD level");
    return false;
  }
  return true;
}

void BM_Gather(benchmark::State& state, SimdLevel level) {
  Fixture& f = F();
  if (!Force(state, level)) return;
  std::vector<float> out(f.num_ids * f.dim);
  for (auto _ : state) {
    absl::Status s = f.table->Lookup(f.ids, absl::MakeSpan(out));
    if (!s.ok()) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * f.num_ids);
  state.SetBytesProcessed(state.iterations() * f.num_ids * f.dim * sizeof(float));
}

void BM_PooledSum(benchmark::State& state, SimdLevel level) {
  Fixture& f = F();
  if (!Force(state, level)) return;
  std::vector<float> out((f.bounds.size() - 1) * f.dim);
  for (auto _ : state) {
    absl::Status s =
        f.table->LookupPooled(f.ids, f.bounds, PoolingMode::kSum, {}, absl::MakeSpan(out));
    if (!s.ok()) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * f.num_ids);
  state.SetBytesProcessed(state.iterations() * f.num_ids * f.dim * sizeof(float));
}

// A compact copy of the fixture's table shape (made once per type).
EmbeddingTable& CompactTable(RowType type) {
  Fixture& f = F();
  static std::unique_ptr<EmbeddingTable> tables[4];
  auto& t = tables[static_cast<int>(type)];
  if (t == nullptr) {
    TableSpec spec;
    spec.name = "compact";
    spec.num_embeddings = f.rows;
    spec.embedding_dim = f.dim;
    spec.row_type = type;
    spec.initializer.kind = InitKind::kUniform;
    t = *EmbeddingTable::Create(spec);
  }
  return *t;
}

// The same gather on compact tables (best level of this CPU): fewer bytes
// per row, decoded in the kernel.
void BM_GatherCompact(benchmark::State& state, RowType type) {
  Fixture& f = F();
  EmbeddingTable& t = CompactTable(type);
  if (!ForceSimdLevel(BestSupportedLevel()).ok()) return;
  std::vector<float> out(f.num_ids * f.dim);
  for (auto _ : state) {
    if (!t.Lookup(f.ids, absl::MakeSpan(out)).ok()) state.SkipWithError("lookup failed");
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * f.num_ids);
  state.counters["bytes_per_row"] = static_cast<double>(t.bytes_used()) / f.rows;
}

// Pooled sum (bags as BM_PooledSum) on compact tables.
void BM_PooledSumCompact(benchmark::State& state, RowType type) {
  Fixture& f = F();
  EmbeddingTable& t = CompactTable(type);
  if (!ForceSimdLevel(BestSupportedLevel()).ok()) return;
  std::vector<float> out((f.bounds.size() - 1) * f.dim);
  for (auto _ : state) {
    if (!t.LookupPooled(f.ids, f.bounds, PoolingMode::kSum, {}, absl::MakeSpan(out)).ok()) {
      state.SkipWithError("lookup failed");
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * f.num_ids);
}

BENCHMARK(BM_Memcpy)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GatherCompact, float16, RowType::kFloat16)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_GatherCompact, int8_rowwise, RowType::kInt8Rowwise)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PooledSumCompact, float16, RowType::kFloat16)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PooledSumCompact, int8_rowwise, RowType::kInt8Rowwise)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, scalar, SimdLevel::kScalar)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, avx2, SimdLevel::kAvx2)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_Gather, avx512, SimdLevel::kAvx512)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PooledSum, scalar, SimdLevel::kScalar)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PooledSum, avx2, SimdLevel::kAvx2)->Unit(benchmark::kMicrosecond);
BENCHMARK_CAPTURE(BM_PooledSum, avx512, SimdLevel::kAvx512)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace embedserve

BENCHMARK_MAIN();
