#ifndef EMBEDSERVE_CORE_GATHER_H_
#define EMBEDSERVE_CORE_GATHER_H_

// Gather kernels: the hot path of every lookup.
//
// Each kernel exists at several instruction-set levels (scalar, AVX2,
// AVX-512), one file per level; the scalar one is the reference and the
// fallback. The level is picked once, at first use, from the CPU (see
// ActiveKernels); tests reach every level through KernelsFor.
//
// Kernels do not return Status (this is the hot path): they return kAllValid,
// or the position of the first id that is out of range, in which case the
// contents of `out` are unspecified.

#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace embedserve {

// Read-only view of a sharded table, as the kernels see it. Shard s holds the
// contiguous global rows [s << shard_shift, (s + 1) << shard_shift); row r
// starts at shards[r >> shard_shift] + (r & local_mask) * stride.
// Every shard is 64-byte aligned and stride is a multiple of 16 floats, so
// every row starts on a cache line.
struct RowView {
  const float* const* shards = nullptr;
  int shard_shift = 0;
  int64_t num_rows = 0;
  int64_t dim = 0;
  int64_t stride = 0;  // floats between consecutive rows, >= dim

  // REQUIRES: 0 <= id < num_rows.
  const float* Row(int64_t id) const {
    const int64_t local_mask = (int64_t{1} << shard_shift) - 1;
    return shards[id >> shard_shift] + (id & local_mask) * stride;
  }
};

enum class PoolingMode { kSum, kMean, kMax };

// One pooled (nn.EmbeddingBag) request, already validated except for ids.
struct BagArgs {
  const int64_t* ids = nullptr;
  int64_t num_ids = 0;
  // num_bags + 1 boundaries: bag b is ids[bounds[b], bounds[b + 1]).
  // REQUIRES: bounds[0] == 0, non-decreasing, bounds[num_bags] == num_ids.
  const int64_t* bounds = nullptr;
  int64_t num_bags = 0;
  PoolingMode mode = PoolingMode::kSum;
  const float* weights = nullptr;  // nullptr, or num_ids weights (kSum only)
  int64_t padding_idx = -1;        // row skipped by pooling; -1 for none
};

inline constexpr int64_t kAllValid = -1;

// Plain gather (F.embedding):
//   for i in [0, n): if !(0 <= ids[i] < num_rows): return i
//                    out[i*dim : (i+1)*dim] = row(ids[i])[0:dim]
//   return kAllValid
// `out` holds n * dim floats, packed (no stride padding), any alignment.
using GatherFn = int64_t (*)(const RowView& table, const int64_t* ids, int64_t n, float* out);

// Pooled gather (F.embedding_bag), for each bag b, with
// E = { i in bag b : ids[i] != padding_idx }:
//   kSum:  out[b] = sum_{i in E} w_i * row(ids[i])   (w_i = 1 without weights)
//   kMean: out[b] = (sum_{i in E} row(ids[i])) / |E|
//   kMax:  out[b] = elementwise max_{i in E} row(ids[i])
//   E empty (empty bag or only padding): out[b] = 0
// Returns the position of the first out-of-range id, or kAllValid.
// `out` holds num_bags * dim floats, packed.
using PooledFn = int64_t (*)(const RowView& table, const BagArgs& args, float* out);

// How rows are stored (core/row_codec.h has the encodings).
enum class RowType { kFloat32, kFloat16, kBFloat16, kInt8Rowwise };

// A sharded table of compact rows: like RowView, with rows of stride bytes
// (a multiple of 64, see CompactRowStride) in encoding `type`.
struct CompactRowView {
  const uint8_t* const* shards = nullptr;
  int shard_shift = 0;
  int64_t num_rows = 0;
  int64_t dim = 0;
  int64_t stride = 0;  // bytes (CompactRowStride)
  RowType type = RowType::kFloat16;

  // REQUIRES: 0 <= id < num_rows.
  const uint8_t* Row(int64_t id) const {
    const int64_t local_mask = (int64_t{1} << shard_shift) - 1;
    return shards[id >> shard_shift] + (id & local_mask) * stride;
  }
};

// The same contracts as GatherFn / PooledFn, on decoded rows: rows are
// decoded to float32 (exactly as DecodeRow) and then gathered or pooled.
using CompactGatherFn = int64_t (*)(const CompactRowView& table, const int64_t* ids, int64_t n,
                                    float* out);
using CompactPooledFn = int64_t (*)(const CompactRowView& table, const BagArgs& args, float* out);

// float32 -> IEEE binary16 (float16 answers on the wire):
//   out[i] = in[i] rounded to nearest-even; past the float16 range -> +-inf;
//   NaN -> a quiet NaN of the same sign (payload unspecified).
// Equal to core/row_codec.h FloatToHalf for every non-NaN input. `in` and
// `out` any alignment, not overlapping.
using ToHalfFn = void (*)(const float* in, int64_t n, uint16_t* out);

enum class SimdLevel { kScalar = 0, kAvx2 = 1, kAvx512 = 2 };

struct GatherKernels {
  SimdLevel level;
  GatherFn gather;
  PooledFn pooled;
  CompactGatherFn compact_gather;
  CompactPooledFn compact_pooled;
  ToHalfFn to_half;
};

// The level names ("scalar", "avx2", "avx512") are in core/enum_names.h.

// True when this CPU (and this build) can run the level.
bool CpuSupports(SimdLevel level);
// The best level this CPU supports.
SimdLevel BestSupportedLevel();

// The kernels of one level. REQUIRES: CpuSupports(level).
const GatherKernels& KernelsFor(SimdLevel level);

// The kernels every table uses: BestSupportedLevel() unless ForceSimdLevel
// was called. Thread-safe.
const GatherKernels& ActiveKernels();

// Makes ActiveKernels() return `level` from now on (tests, --simd flag).
// FailedPrecondition if this CPU cannot run it.
absl::Status ForceSimdLevel(SimdLevel level);

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_GATHER_H_
