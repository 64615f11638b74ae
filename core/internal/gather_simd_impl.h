#ifndef EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_
#define EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_

// The SIMD kernels, written once over a vector-ops trait `V` and instantiated
// by gather_avx2.cc and gather_avx512.cc (each with its own ISA flags).
//
// Everything here has internal linkage (anonymous namespace) and calls no
// inline function from other headers: an out-of-line copy of a shared inline
// function compiled with AVX-512 flags could otherwise be picked by the linker
// for callers on CPUs without AVX-512.
//
// V provides: R (register type), kLanes, Zero, Set1, Load, Store, StoreN (first
// n lanes), Add, Fma(a, b, c) = a * b + c, Max, Div.
//
// Invariant used for speed: a row's stride is a multiple of 16 floats
// (EmbeddingTable guarantees it), so a full-vector load at any d < dim stays
// inside the row's stride; lanes past dim are discarded by StoreN.

#include <cstdint>

#include "core/gather.h"
#include "core/internal/prefetch.h"

namespace embedserve::internal {
namespace {

inline const float* SimdRow(const RowView& t, int64_t id) {
  const int64_t local_mask = (int64_t{1} << t.shard_shift) - 1;
  return t.shards[id >> t.shard_shift] + (id & local_mask) * t.stride;
}

inline bool SimdInRange(const RowView& t, int64_t id) {
  return static_cast<uint64_t>(id) < static_cast<uint64_t>(t.num_rows);
}

// Prefetches up to 8 cache lines of the row; nothing for a bad id.
inline void SimdPrefetch(const RowView& t, int64_t id, int64_t row_bytes) {
  if (!SimdInRange(t, id)) return;
  const char* p = reinterpret_cast<const char*>(SimdRow(t, id));
  const int64_t end = row_bytes < 512 ? row_bytes : 512;
  for (int64_t off = 0; off < end; off += 64) PrefetchNta(p + off);
}

constexpr int64_t kSimdPrefetchDistance = 16;

template <class V>
inline void SimdCopyRow(const float* src, float* dst, int64_t dim) {
  constexpr int64_t L = V::kLanes;
  int64_t d = 0;
  for (; d + 4 * L <= dim; d += 4 * L) {
    const typename V::R a = V::Load(src + d), b = V::Load(src + d + L),
                        c = V::Load(src + d + 2 * L), e = V::Load(src + d + 3 * L);
    V::Store(dst + d, a);
    V::Store(dst + d + L, b);
    V::Store(dst + d + 2 * L, c);
    V::Store(dst + d + 3 * L, e);
  }
  for (; d + L <= dim; d += L) V::Store(dst + d, V::Load(src + d));
  if (d < dim) V::StoreN(dst + d, V::Load(src + d), dim - d);
}

template <class V>
int64_t SimdGather(const RowView& t, const int64_t* ids, int64_t n, float* out) {
  const int64_t dim = t.dim;
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  for (int64_t i = 0; i < n; ++i) {
    if (i + kSimdPrefetchDistance < n) {
      SimdPrefetch(t, ids[i + kSimdPrefetchDistance], row_bytes);
    }
    const int64_t id = ids[i];
    if (!SimdInRange(t, id)) return i;
    SimdCopyRow<V>(SimdRow(t, id), out + i * dim, dim);
  }
  return kAllValid;
}

enum class Op { kAdd, kWeighted, kMax };

// Accumulates kVecs (1, 2, 4 or 8) vectors starting at float `d` over the bag's
// non-padding rows and stores them (the last one partially if it passes dim).
template <class V, Op kOp, int kVecs>
inline void SimdPoolBlock(const RowView& t, const BagArgs& a, int64_t begin, int64_t end, int64_t d,
                          int64_t dim, float* o, typename V::R init, bool prefetch,
                          int64_t row_bytes) {
  constexpr int64_t L = V::kLanes;
  typename V::R acc[kVecs];
  for (int j = 0; j < kVecs; ++j) acc[j] = init;
  for (int64_t i = begin; i < end; ++i) {
    if (prefetch && i + kSimdPrefetchDistance < a.num_ids) {
      SimdPrefetch(t, a.ids[i + kSimdPrefetchDistance], row_bytes);
    }
    const int64_t id = a.ids[i];
    if (id == a.padding_idx) continue;
    const float* row = SimdRow(t, id) + d;
    if constexpr (kOp == Op::kAdd) {
      for (int j = 0; j < kVecs; ++j) acc[j] = V::Add(acc[j], V::Load(row + j * L));
    } else if constexpr (kOp == Op::kWeighted) {
      const typename V::R w = V::Set1(a.weights[i]);
      for (int j = 0; j < kVecs; ++j) acc[j] = V::Fma(w, V::Load(row + j * L), acc[j]);
    } else {
      for (int j = 0; j < kVecs; ++j) acc[j] = V::Max(acc[j], V::Load(row + j * L));
    }
  }
  for (int j = 0; j < kVecs; ++j) {
    const int64_t at = d + j * L;
    if (at + L <= dim) {
      V::Store(o + at, acc[j]);
    } else {
      V::StoreN(o + at, acc[j], dim - at);
    }
  }
}

// Walks the row in blocks of 8, 4, 2 and 1 vectors: a 64-float row is one
// pass of 8 AVX2 accumulators (a 128-float row one pass of 8 AVX-512 ones),
// so each row is read once. The first block also prefetches upcoming rows.
template <class V, Op kOp>
inline void SimdPoolBag(const RowView& t, const BagArgs& a, int64_t begin, int64_t end, float* o,
                        typename V::R init) {
  constexpr int64_t L = V::kLanes;
  const int64_t dim = t.dim;
  const int64_t row_bytes = dim * static_cast<int64_t>(sizeof(float));
  const int64_t num_vecs = (dim + L - 1) / L;
  int64_t v = 0;
  for (; v + 8 <= num_vecs; v += 8) {
    SimdPoolBlock<V, kOp, 8>(t, a, begin, end, v * L, dim, o, init, v == 0, row_bytes);
  }
  if (v + 4 <= num_vecs) {
    SimdPoolBlock<V, kOp, 4>(t, a, begin, end, v * L, dim, o, init, v == 0, row_bytes);
    v += 4;
  }
  if (v + 2 <= num_vecs) {
    SimdPoolBlock<V, kOp, 2>(t, a, begin, end, v * L, dim, o, init, v == 0, row_bytes);
    v += 2;
  }
  if (v < num_vecs) {
    SimdPoolBlock<V, kOp, 1>(t, a, begin, end, v * L, dim, o, init, v == 0, row_bytes);
  }
}

template <class V>
int64_t SimdPooled(const RowView& t, const BagArgs& a, float* out) {
  constexpr int64_t L = V::kLanes;
  const int64_t dim = t.dim;
  for (int64_t b = 0; b < a.num_bags; ++b) {
    const int64_t begin = a.bounds[b], end = a.bounds[b + 1];
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      if (!SimdInRange(t, a.ids[i])) return i;
      count += a.ids[i] != a.padding_idx;
    }
    float* o = out + b * dim;
    if (count == 0) {
      int64_t d = 0;
      for (; d + L <= dim; d += L) V::Store(o + d, V::Zero());
      if (d < dim) V::StoreN(o + d, V::Zero(), dim - d);
      continue;
    }
    switch (a.mode) {
      case PoolingMode::kMax:
        SimdPoolBag<V, Op::kMax>(t, a, begin, end, o, V::Set1(-__builtin_inff()));
        break;
      case PoolingMode::kSum:
        if (a.weights != nullptr) {
          SimdPoolBag<V, Op::kWeighted>(t, a, begin, end, o, V::Zero());
        } else {
          SimdPoolBag<V, Op::kAdd>(t, a, begin, end, o, V::Zero());
        }
        break;
      case PoolingMode::kMean: {
        SimdPoolBag<V, Op::kAdd>(t, a, begin, end, o, V::Zero());
        const typename V::R c = V::Set1(static_cast<float>(count));
        int64_t d = 0;
        for (; d + L <= dim; d += L) V::Store(o + d, V::Div(V::Load(o + d), c));
        // The tail is read from `o` with a full load only when it fits in the
        // output; otherwise lane by lane.
        for (; d < dim; ++d) o[d] = o[d] / static_cast<float>(count);
        break;
      }
    }
  }
  return kAllValid;
}

}  // namespace
}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_
