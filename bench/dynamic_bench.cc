// Dynamic (id-keyed) rows against dense rows, side by side in one run
// (issue 15's figures). For N = 1 M and 10 M rows of dim 64 (float32):
//   dense/N      a lookup of 512 random dense ids over the storage's own rows
//                (slot == id: the dense table's path: seqlock snapshot,
//                gather, torn check);
//   stored/N     512 random stored 64-bit ids through the engine's lookup
//                (EmbeddingTable::GatherDynamic's DynamicRowStorage::Lookup:
//                the Recheck protocol in one call);
//   stored_steps/N  the same protocol step by step: Resolve, snapshot,
//                Recheck, gather (GatherResolved), torn check;
//   stored_norecheck/N  the steps without Recheck (what the check costs);
//   unseen/N     512 ids never stored through the engine's lookup: the id
//                index's filter rules most out (no index line read), their
//                initial rows (RowInitializer::Fill, in batches of 16);
//   unseen_nofill/N  the same with an empty fill: the index's share;
//   resolve_index/N     Resolve alone, and
//   resolve_absl/N      absl::flat_hash_map<int64_t, int64_t>::find for the
//                same ids (single-threaded, no concurrency story);
//   push_update/N  Upsert of 512 stored ids + an SGD step on each row under
//                the seqlock; push_insert/N: 512 new ids into the full
//                storage (max_rows = N: each insert evicts the LRU row),
//                initial row + the same step. Both pushes take the same
//                path: Resolve (which ids are new), the initial rows of the
//                new ones in one RowInitializer::Fill, Upsert (init_row
//                copies the prepared row), the step;
//   push_insert_zeros/N  push_insert with zeros for initial rows: the
//                storage's own share;
//   initial_row, fill_ids  the initial rows of 512 random ids, one
//                InitialRow call each or one RowInitializer::Fill;
//   model_line/N, model_line_page/N  ceilings, not the engine: dense/N's
//                rows, each after one random 64-byte line of its own (see
//                ModelLines).
// Dense and dynamic gather the very same row memory: the ratio is the cost
// of the id index and the protocol, not of a different allocation.
// Across processes (a VM's ratio moves with where a process's memory
// landed): bench/multi_process_ratios.py, the median of per-process ratios.
// Ratios are printed by bench/dynamic_bench_ratios.py from the JSON output
// (the median of --benchmark_repetitions runs; items_per_second is CPU
// time, so a busy machine's preemption does not count, its cache and TLB
// pollution does: run --benchmark_enable_random_interleaving=true so that
// drifting load hits every benchmark alike).

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <random>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "benchmark/benchmark.h"
#include "core/gather.h"
#include "core/initializer.h"
#include "core/internal/admission_sketch.h"
#include "core/internal/aligned_memory.h"
#include "core/internal/dynamic_row_storage.h"
#include "core/internal/prefetch.h"
#include "core/internal/row_seqlock.h"
#include "core/row_codec.h"
#include "core/table_spec.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kDim = 64;
constexpr int64_t kBatch = 512;
constexpr int kBatches = 256;  // distinct requests cycled through

TableSpec Spec() {
  TableSpec spec;
  spec.name = "dyn";
  spec.num_embeddings = int64_t{1} << 62;  // a dynamic table has no range
  spec.embedding_dim = kDim;
  spec.initializer.kind = InitKind::kNormal;
  spec.initializer.seed = 7;
  spec.initializer.generator = 2;
  return spec;
}

RowFormat Format() {
  RowFormat f;
  f.dim = kDim;
  f.type = RowType::kFloat32;
  f.row_bytes = CompactRowStride(RowType::kFloat32, kDim);
  return f;
}

// One storage of N rows, shared by the benchmarks of that size; the next
// size frees it first.
struct World {
  int64_t n = 0;
  std::unique_ptr<DynamicRowStorage> storage;
  RowSeqlock seqlock;
  std::vector<int64_t> stored;  // ids, by slot
  absl::flat_hash_map<int64_t, int64_t> absl_index;
  std::vector<std::vector<int64_t>> stored_batches, dense_batches, unseen_batches;
  int64_t step = 1;
  uint64_t fresh = 0;  // next new id counter
  // model_line/N's lines: as many bytes as the id index's lines.
  std::unique_ptr<void, decltype(&std::free)> model_lines{nullptr, &std::free};
  uint64_t model_mask = 0;  // lines - 1
};

World* world = nullptr;

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

World& Get(int64_t n) {
  if (world != nullptr && world->n == n) return *world;
  delete world;
  world = new World;
  World& w = *world;
  w.n = n;
  DynamicRowOptions o;
  o.max_rows = n;
  o.seed = 3;
  w.storage = *DynamicRowStorage::Create(Format(), o);
  // Random 64-bit ids; rows are filled with a cheap pattern (the initial
  // values are measured by unseen/N and push_insert/N).
  std::vector<int64_t> ids(4096), slots(4096);
  w.stored.reserve(n);
  for (int64_t first = 0; first < n; first += 4096) {
    const int64_t m = std::min<int64_t>(4096, n - first);
    for (int64_t i = 0; i < m; ++i) ids[i] = static_cast<int64_t>(SplitMix(first + i));
    (void)w.storage->Upsert(absl::MakeConstSpan(ids.data(), m), 0, UpsertMode::kWrite,
                            absl::MakeSpan(slots.data(), m), [&](int64_t i, int64_t slot) {
                              float* row = reinterpret_cast<float*>(w.storage->MutableRow(slot));
                              for (int64_t j = 0; j < kDim; ++j) row[j] = static_cast<float>(i + j);
                            });
    for (int64_t i = 0; i < m; ++i) w.stored.push_back(ids[i]);
  }
  w.absl_index.reserve(n);
  for (int64_t s = 0; s < n; ++s) w.absl_index[w.stored[s]] = s;
  std::mt19937_64 rng(11);
  for (int b = 0; b < kBatches; ++b) {
    std::vector<int64_t> st(kBatch), de(kBatch), un(kBatch);
    for (int64_t i = 0; i < kBatch; ++i) {
      const int64_t slot = static_cast<int64_t>(rng() % static_cast<uint64_t>(n));
      de[i] = slot;
      st[i] = w.stored[slot];
      un[i] = static_cast<int64_t>(SplitMix(uint64_t{1} << 60 | rng()));  // not among the stored
    }
    w.stored_batches.push_back(std::move(st));
    w.dense_batches.push_back(std::move(de));
    w.unseen_batches.push_back(std::move(un));
  }
  w.fresh = uint64_t{1} << 61;
  return w;
}

// The initial rows of the positions GatherResolved reported (ascending):
// one Fill per run of consecutive positions, straight into `out`.
void FillMissing(const RowInitializer& init, absl::Span<const int64_t> ids,
                 const std::vector<int64_t>& missing, float* out) {
  const int64_t dim = init.dim();
  size_t a = 0;
  while (a < missing.size()) {
    size_t b = a + 1;
    while (b < missing.size() && missing[b] == missing[b - 1] + 1) ++b;
    init.Fill(ids.subspan(missing[a], b - a), out + missing[a] * dim);
    a = b;
  }
}

// The process's memory on transparent huge pages (MiB; the index and the
// row chunks ask for them with madvise: without, each random row or bucket
// costs a page walk too).
double HugePageMiB() {
  std::ifstream f("/proc/self/smaps_rollup");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("AnonHugePages:", 0) == 0) return std::atof(line.c_str() + 14) / 1024.0;
  }
  return 0;
}

void Counters(benchmark::State& state, World& w) {
  state.counters["thp_MiB"] = HugePageMiB();
  state.SetItemsProcessed(state.iterations() * kBatch);
  const DynamicRowStats st = w.storage->stats();
  const double rows = static_cast<double>(st.rows_stored);
  const double raw = rows * kDim * 4;
  state.counters["index_B_per_row"] = static_cast<double>(st.index_bytes) / rows;
  state.counters["meta_B_per_row"] = static_cast<double>(st.slot_meta_bytes) / rows;
  state.counters["total_over_raw"] =
      static_cast<double>(st.row_bytes + st.index_bytes + st.slot_meta_bytes) / raw;
}

void BM_Dense(benchmark::State& state) {
  World& w = Get(state.range(0));
  const KernelRows& rows = w.storage->kernel_rows();
  const GatherKernels& k = ActiveKernels();
  std::vector<float> out(kBatch * kDim);
  std::vector<uint32_t> before(kBatch);
  std::vector<int64_t> torn;
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& slots = w.dense_batches[b++ % kBatches];
    w.seqlock.Snapshot(slots, absl::MakeSpan(before));
    benchmark::DoNotOptimize(k.gather(rows.rows, slots.data(), kBatch, out.data()));
    torn.clear();
    w.seqlock.Torn(slots, before, &torn);
    benchmark::DoNotOptimize(out.data());
  }
  Counters(state, w);
}

// The protocol step by step (Resolve, Snapshot, [Recheck,] GatherResolved,
// Torn) as Lookup runs it for stored ids.
void Stored(benchmark::State& state, bool recheck) {
  World& w = Get(state.range(0));
  const RowInitializer init(Spec());
  const KernelRows& rows = w.storage->kernel_rows();
  const GatherKernels& k = ActiveKernels();
  std::vector<float> out(kBatch * kDim);
  std::vector<uint32_t> before(kBatch);
  std::vector<int64_t> scratch, redo, missing;
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& ids = w.stored_batches[b++ % kBatches];
    const absl::Span<const int64_t> slots = w.storage->Resolve(ids, &scratch);
    w.seqlock.Snapshot(slots, absl::MakeSpan(before));
    redo.clear();
    if (recheck) w.storage->Recheck(ids, scratch, &redo);
    missing.clear();
    GatherResolved(k, rows, slots, out.data(),
                   [&](int64_t i, float*) { missing.push_back(i); });
    FillMissing(init, ids, missing, out.data());
    w.seqlock.Torn(slots, before, &redo);
    benchmark::DoNotOptimize(out.data());
    if (!redo.empty()) state.SkipWithError("unexpected redo");
  }
  Counters(state, w);
}
void BM_StoredSteps(benchmark::State& state) { Stored(state, true); }
void BM_StoredNoRecheck(benchmark::State& state) { Stored(state, false); }

// The two-access models: a ceiling for designs, not a measure of the
// engine. Each of dense/N's rows is preceded by one random 64-byte line,
// read with nothing else of an index's work: the line is a hash of the
// slot, prefetched kAhead ids before its read (one pass over the request,
// as the id index's FindEach), its first word folded into a checksum (a
// real load), then dense/N's snapshot, gather and torn check.
//   model_line/N: the line in an array as large as the id index's lines
//     (its own memory, elsewhere): what any lookup that reads one line of a
//     separate index before the row (this engine's index, a Swiss table, a
//     cuckoo table) can at best reach on this machine.
//   model_line_page/N: the line in the row's own 4 KiB page (another line
//     of the row memory): what putting an id's index entry beside its row
//     would buy.
// stored/N against model_line/N is what the id index costs beyond its one
// line; model_line/N against dense/N, what one line more costs here.
void ModelLines(benchmark::State& state, bool same_page) {
  World& w = Get(state.range(0));
  if (!same_page && w.model_lines == nullptr) {
    // The index's lines are a power of two of them; its filter adds 1/16.
    int64_t bytes = 64;
    while (bytes * 2 <= w.storage->stats().index_bytes) bytes *= 2;
    w.model_lines.reset(AllocateAligned(bytes));
    if (w.model_lines == nullptr) {
      state.SkipWithError("no memory for the model's lines");
      return;
    }
    std::memset(w.model_lines.get(), 1, static_cast<size_t>(bytes));
    w.model_mask = static_cast<uint64_t>(bytes / 64 - 1);
  }
  const KernelRows& rows = w.storage->kernel_rows();
  const GatherKernels& k = ActiveKernels();
  const auto* lines = static_cast<const uint8_t*>(w.model_lines.get());
  auto line_of = [&](int64_t slot) -> const uint8_t* {
    const uint64_t h = SplitMix(static_cast<uint64_t>(slot));
    if (same_page) {
      const auto row = reinterpret_cast<uintptr_t>(w.storage->Row(slot));
      return reinterpret_cast<const uint8_t*>((row & ~uintptr_t{4095}) | (h & 4032));
    }
    return lines + ((h & w.model_mask) << 6);
  };
  constexpr int64_t kAhead = 16;
  std::vector<float> out(kBatch * kDim);
  std::vector<uint32_t> before(kBatch);
  std::vector<int64_t> torn;
  uint64_t sum = 0;
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& slots = w.dense_batches[b++ % kBatches];
    for (int64_t i = 0; i < kAhead; ++i) PrefetchT0(line_of(slots[i]));
    for (int64_t i = 0; i < kBatch; ++i) {
      if (i + kAhead < kBatch) PrefetchT0(line_of(slots[i + kAhead]));
      uint64_t word;  // (row memory holds floats: copied, not aliased)
      std::memcpy(&word, line_of(slots[i]), sizeof(word));
      sum += word;
    }
    w.seqlock.Snapshot(slots, absl::MakeSpan(before));
    benchmark::DoNotOptimize(k.gather(rows.rows, slots.data(), kBatch, out.data()));
    torn.clear();
    w.seqlock.Torn(slots, before, &torn);
    benchmark::DoNotOptimize(out.data());
  }
  benchmark::DoNotOptimize(sum);
  Counters(state, w);
}
void BM_ModelLine(benchmark::State& state) { ModelLines(state, false); }
void BM_ModelLinePage(benchmark::State& state) { ModelLines(state, true); }

// The engine's lookup (EmbeddingTable::GatherDynamic): one
// DynamicRowStorage::Lookup with RowInitializer::Fill for the ids without a
// row (what UnseenRows runs for float32 rows without max_norm).
void EngineLookup(benchmark::State& state, bool unseen) {
  World& w = Get(state.range(0));
  const RowInitializer init(Spec());
  const GatherKernels& k = ActiveKernels();
  std::vector<float> out(kBatch * kDim);
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& ids =
        (unseen ? w.unseen_batches : w.stored_batches)[b++ % kBatches];
    w.storage->Lookup(ids, k, &w.seqlock, out.data(),
                      [&](absl::Span<const int64_t> missing, float* rows) {
                        init.Fill(missing, rows);
                      });
    benchmark::DoNotOptimize(out.data());
  }
  Counters(state, w);
}
void BM_Stored(benchmark::State& state) { EngineLookup(state, false); }
void BM_Unseen(benchmark::State& state) { EngineLookup(state, true); }
void BM_UnseenNoFill(benchmark::State& state) {
  World& w = Get(state.range(0));
  const GatherKernels& k = ActiveKernels();
  std::vector<float> out(kBatch * kDim);
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& ids = w.unseen_batches[b++ % kBatches];
    w.storage->Lookup(ids, k, &w.seqlock, out.data(),
                      [&](absl::Span<const int64_t> missing, float* rows) {
                        benchmark::DoNotOptimize(rows);
                      });
    benchmark::DoNotOptimize(out.data());
  }
  Counters(state, w);
}

void BM_ResolveIndex(benchmark::State& state) {
  World& w = Get(state.range(0));
  std::vector<int64_t> scratch;
  int b = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(w.storage->Resolve(w.stored_batches[b++ % kBatches], &scratch).data());
  }
  Counters(state, w);
}

void BM_ResolveUnseen(benchmark::State& state) {
  World& w = Get(state.range(0));
  std::vector<int64_t> scratch;
  int b = 0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(w.storage->Resolve(w.unseen_batches[b++ % kBatches], &scratch).data());
  }
  Counters(state, w);
}

// What an unseen id's lookup spends outside the index: its initial row.
void BM_InitialRow(benchmark::State& state) {
  const TableSpec spec = Spec();
  std::vector<float> out(kBatch * kDim);
  uint64_t id = 1;
  for (auto _ : state) {
    for (int64_t i = 0; i < kBatch; ++i) {
      InitialRow(spec, static_cast<int64_t>(SplitMix(id++)), absl::MakeSpan(out.data() + i * kDim, kDim));
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// The same with RowInitializer: one Fill of the request's ids.
void BM_FillIds(benchmark::State& state) {
  const RowInitializer init(Spec());
  std::vector<float> out(kBatch * kDim);
  std::vector<int64_t> ids(kBatch);
  uint64_t id = 1;
  for (auto _ : state) {
    for (int64_t i = 0; i < kBatch; ++i) ids[i] = static_cast<int64_t>(SplitMix(id++));
    init.Fill(ids, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void BM_ResolveAbsl(benchmark::State& state) {
  World& w = Get(state.range(0));
  std::vector<int64_t> slots(kBatch);
  int b = 0;
  for (auto _ : state) {
    const std::vector<int64_t>& ids = w.stored_batches[b++ % kBatches];
    for (int64_t i = 0; i < kBatch; ++i) {
      auto it = w.absl_index.find(ids[i]);
      slots[i] = it == w.absl_index.end() ? -1 : it->second;
    }
    benchmark::DoNotOptimize(slots.data());
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
  // flat_hash_map: 16-byte slots + 1 control byte per bucket.
  state.counters["index_B_per_row"] =
      static_cast<double>(w.absl_index.bucket_count() * 17) / static_cast<double>(w.n);
}

// One push: Resolve (which ids are new), the new ids' initial rows in one
// Fill, Upsert (init_row copies a prepared row under the seqlock), then an
// SGD step (row -= 0.01 * grad) on each row under the seqlock.
void Push(benchmark::State& state, bool insert, bool zero_init = false) {
  World& w = Get(state.range(0));
  const RowInitializer init(Spec());
  std::vector<int64_t> ids(kBatch), slots(kBatch), scratch, fresh, row_of(kBatch);
  std::vector<float> grad(kDim, 0.5f), rows(kBatch * kDim), zeros(kDim, 0.0f), one(kDim);
  std::mt19937_64 rng(5);
  const int64_t rebuilds = w.storage->stats().index_rebuilds;
  for (auto _ : state) {
    // Distinct ids: new ones, or stored ones at distinct random slots (an
    // odd stride; push_insert runs after push_update, so they are stored).
    const uint64_t base = rng();
    for (int64_t i = 0; i < kBatch; ++i) {
      ids[i] = insert ? static_cast<int64_t>(SplitMix(w.fresh++))
                      : w.stored[(base + static_cast<uint64_t>(i) * 7919) %
                                 static_cast<uint64_t>(w.n)];
    }
    const absl::Span<const int64_t> found = w.storage->Resolve(ids, &scratch);
    fresh.clear();
    for (int64_t i = 0; i < kBatch; ++i) {
      row_of[i] = found[i] < 0 ? static_cast<int64_t>(fresh.size()) : -1;
      if (found[i] < 0) fresh.push_back(ids[i]);
    }
    if (!zero_init) init.Fill(fresh, rows.data());
    const int64_t step = ++w.step;
    const absl::Status s = w.storage->Upsert(
        ids, step, UpsertMode::kPush, absl::MakeSpan(slots), [&](int64_t i, int64_t slot) {
          const float* src = zeros.data();
          if (!zero_init) {
            src = rows.data() + row_of[i] * kDim;
            if (row_of[i] < 0) {  // stored at Resolve, evicted by this push since
              init.Fill(absl::MakeConstSpan(&ids[i], 1), one.data());
              src = one.data();
            }
          }
          w.seqlock.BeginWrite(slot);
          EncodeRow(RowType::kFloat32, src, kDim, w.storage->MutableRow(slot));
          w.seqlock.EndWrite(slot);
        });
    if (!s.ok()) state.SkipWithError("upsert failed");
    for (int64_t i = 0; i < kBatch; ++i) {
      if (slots[i] < 0) continue;
      w.seqlock.BeginWrite(slots[i]);
      float* row = reinterpret_cast<float*>(w.storage->MutableRow(slots[i]));
      for (int64_t j = 0; j < kDim; ++j) row[j] -= 0.01f * grad[j];
      w.seqlock.EndWrite(slots[i]);
    }
  }
  Counters(state, w);
  // An index rebuild (erased buckets cleared) inside the run.
  state.counters["index_rebuilds"] =
      static_cast<double>(w.storage->stats().index_rebuilds - rebuilds);
}
void BM_PushUpdate(benchmark::State& state) { Push(state, false); }
void BM_PushInsert(benchmark::State& state) { Push(state, true); }
// Inserts whose initial row costs nothing (zeros): the structure's share.
void BM_PushInsertZeros(benchmark::State& state) { Push(state, true, true); }

// The admission sketch's false admissions (admit_after = 2) over a stream
// where most ids are pushed once: ids admitted while their exact count
// (with the same aging) was below 2, over the pushes of such ids.
void BM_SketchFalseAdmission(benchmark::State& state) {
  const int64_t width = state.range(0);
  double rate = 0;
  for (auto _ : state) {
    AdmissionSketch sketch(1, width, 0);
    absl::flat_hash_map<int64_t, int> exact;
    int64_t adds = 0, below = 0, false_admits = 0;
    std::mt19937_64 rng(2);
    for (int64_t i = 0; i < 4000000; ++i) {
      // 1 push in 4 of an id from a hot set of 100 k, else a new id.
      const int64_t id = rng() % 4 == 0 ? static_cast<int64_t>(rng() % 100000)
                                        : static_cast<int64_t>(SplitMix(i) | 1ULL << 62);
      int& c = exact[id];
      c = std::min(c + 1, 255);
      const int e = c;
      const int s = sketch.Add(id);
      if (++adds == sketch.window()) {
        for (auto& [k, v] : exact) v /= 2;
        adds = 0;
      }
      if (e < 2) {
        ++below;
        false_admits += s >= 2;
      }
    }
    rate = static_cast<double>(false_admits) / static_cast<double>(below);
  }
  state.counters["sketch_bytes"] = static_cast<double>(AdmissionSketch::kDepth * width);
  state.counters["false_admission_rate"] = rate;
}

void BM_Free(benchmark::State& state) {
  for (auto _ : state) {
  }
  delete world;
  world = nullptr;
}

}  // namespace
}  // namespace embedserve::internal

int main(int argc, char** argv) {
  using namespace embedserve::internal;
  benchmark::Initialize(&argc, argv);
  for (int64_t n : {int64_t{1} << 20, int64_t{10000000}}) {
    const std::string s = "/" + std::to_string(n);
    benchmark::RegisterBenchmark(("dense" + s).c_str(), BM_Dense)->Arg(n);
    benchmark::RegisterBenchmark(("stored" + s).c_str(), BM_Stored)->Arg(n);
    benchmark::RegisterBenchmark(("stored_steps" + s).c_str(), BM_StoredSteps)->Arg(n);
    benchmark::RegisterBenchmark(("stored_norecheck" + s).c_str(), BM_StoredNoRecheck)->Arg(n);
    benchmark::RegisterBenchmark(("unseen" + s).c_str(), BM_Unseen)->Arg(n);
    benchmark::RegisterBenchmark(("unseen_nofill" + s).c_str(), BM_UnseenNoFill)->Arg(n);
    benchmark::RegisterBenchmark(("model_line" + s).c_str(), BM_ModelLine)->Arg(n);
    benchmark::RegisterBenchmark(("model_line_page" + s).c_str(), BM_ModelLinePage)->Arg(n);
    benchmark::RegisterBenchmark(("resolve_index" + s).c_str(), BM_ResolveIndex)->Arg(n);
    benchmark::RegisterBenchmark(("resolve_unseen" + s).c_str(), BM_ResolveUnseen)->Arg(n);
    benchmark::RegisterBenchmark(("resolve_absl" + s).c_str(), BM_ResolveAbsl)->Arg(n);
    benchmark::RegisterBenchmark(("push_update" + s).c_str(), BM_PushUpdate)->Arg(n);
    benchmark::RegisterBenchmark(("push_insert" + s).c_str(), BM_PushInsert)->Arg(n);
    benchmark::RegisterBenchmark(("push_insert_zeros" + s).c_str(), BM_PushInsertZeros)->Arg(n);
    benchmark::RegisterBenchmark(("free" + s).c_str(), BM_Free)->Iterations(1);
  }
  benchmark::RegisterBenchmark("initial_row", BM_InitialRow);
  benchmark::RegisterBenchmark("fill_ids", BM_FillIds);
  for (int64_t width : {int64_t{1} << 16, int64_t{1} << 18, int64_t{1} << 20}) {
    benchmark::RegisterBenchmark("sketch_false_admission", BM_SketchFalseAdmission)
        ->Arg(width)
        ->Iterations(1)
        ->Unit(benchmark::kMillisecond);
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
