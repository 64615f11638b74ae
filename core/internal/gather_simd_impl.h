#ifndef EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_
#define EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_

// The SIMD kernels, written once over a vector-ops trait `V` and instantiated
// by gather_avx2.cc and gather_avx512.cc (each with its own ISA flags).
// Longer than ~450 lines on purpose: it is one template shared by every ISA
// file (gather, pooled, compact decode, to-half); split, one kernel's row
// loop, tail handling and seqlock contract would be spread over files that
// must all be included with the same ISA flags.
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
#include "core/internal/gather_kernels.h"
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

// Prefetches up to kMaxPrefetchLines cache lines of the row; nothing for a
// bad id.
inline void SimdPrefetch(const RowView& t, int64_t id, int64_t row_bytes) {
  if (!SimdInRange(t, id)) return;
  const char* p = reinterpret_cast<const char*>(SimdRow(t, id));
  const int64_t end = row_bytes < kMaxPrefetchLines * 64 ? row_bytes : kMaxPrefetchLines * 64;
  for (int64_t off = 0; off < end; off += 64) PrefetchNta(p + off);
}

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
  const int64_t stopped = InPrefetchedBlocks(
      n, kPrefetchDistance, [&](int64_t j) { SimdPrefetch(t, ids[j], row_bytes); },
      [&](int64_t i) {
        const int64_t id = ids[i];
        if (!SimdInRange(t, id)) return false;
        SimdCopyRow<V>(SimdRow(t, id), out + i * dim, dim);
        return true;
      });
  return stopped < n ? stopped : kAllValid;
}

enum class Op { kAdd, kWeighted, kMax };

// Accumulates kVecs (1, 2, 4 or 8) vectors starting at float `d` over the bag's
// non-padding rows and stores them (the last one partially if it passes dim).
template <class V, Op kOp, int kVecs>
inline void SimdPoolBlock(const RowView& t, const BagArgs& a, int64_t begin, int64_t end, int64_t d,
                          int64_t dim, float* o, typename V::R init, bool prefetch,
                          int64_t row_bytes) {
  constexpr int64_t L = V::kLanes;
  const float* const* const shards = t.shards;
  const int shift = t.shard_shift;
  const int64_t mask = (int64_t{1} << shift) - 1;
  const int64_t stride = t.stride;
  const uint64_t num_rows = static_cast<uint64_t>(t.num_rows);
  const int64_t* const ids = a.ids;
  const int64_t num_ids = a.num_ids;
  const int64_t padding = a.padding_idx;
  // Fields in locals (no reloads in the loop), prefetch length fixed up front.
  const int64_t lines =
      prefetch ? (row_bytes < kMaxPrefetchLines * 64 ? (row_bytes + 63) / 64 : kMaxPrefetchLines)
               : 0;
  typename V::R acc[kVecs];
  for (int j = 0; j < kVecs; ++j) acc[j] = init;
  for (int64_t i = begin; i < end; ++i) {
    if (lines > 0 && i + kPrefetchDistance < num_ids) {
      const int64_t nid = ids[i + kPrefetchDistance];
      if (static_cast<uint64_t>(nid) < num_rows) {
        const char* p = reinterpret_cast<const char*>(shards[nid >> shift] + (nid & mask) * stride);
        PrefetchNta(p);
        for (int64_t l = 1; l < lines; ++l) PrefetchNta(p + 64 * l);
      }
    }
    const int64_t id = ids[i];
    if (id == padding) continue;
    const float* row = shards[id >> shift] + (id & mask) * stride + d;
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

// The per-bag part shared by the float32 and the compact pooled kernels:
// checks a bag's ids, zeroes an empty bag, and otherwise calls
// pool.template operator()<op>(begin, end, o, init) for the mode, then
// divides by the count for kMean.
template <class V, class Pool>
int64_t PooledBags(int64_t num_rows, int64_t dim, const BagArgs& a, float* out, Pool pool) {
  constexpr int64_t L = V::kLanes;
  // Every id checked in one tight pass first, so the pooling loops carry no
  // per-bag validation (that pass per bag cost ~1.5x on a 65,536-id request).
  for (int64_t i = a.bounds[0]; i < a.bounds[a.num_bags]; ++i) {
    if (static_cast<uint64_t>(a.ids[i]) >= static_cast<uint64_t>(num_rows)) return i;
  }
  for (int64_t b = 0; b < a.num_bags; ++b) {
    const int64_t begin = a.bounds[b], end = a.bounds[b + 1];
    // Rows that count: only kMean and kMax (and an empty bag) need it; a
    // kSum bag of padding only sums to the zero it starts from.
    int64_t count = end - begin;
    if (a.padding_idx >= 0 && a.mode != PoolingMode::kSum) {
      for (int64_t i = begin; i < end; ++i) count -= a.ids[i] == a.padding_idx;
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
        pool.template operator()<Op::kMax>(begin, end, o, V::Set1(-__builtin_inff()));
        break;
      case PoolingMode::kSum:
        if (a.weights != nullptr) {
          pool.template operator()<Op::kWeighted>(begin, end, o, V::Zero());
        } else {
          pool.template operator()<Op::kAdd>(begin, end, o, V::Zero());
        }
        break;
      case PoolingMode::kMean: {
        pool.template operator()<Op::kAdd>(begin, end, o, V::Zero());
        const typename V::R c = V::Set1(static_cast<float>(count));
        int64_t d = 0;
        for (; d + L <= dim; d += L) V::Store(o + d, V::Div(V::Load(o + d), c));
        for (; d < dim; ++d) o[d] = o[d] / static_cast<float>(count);
        break;
      }
    }
  }
  return kAllValid;
}

template <class V>
int64_t SimdPooledBlocked(const RowView& t, const BagArgs& a, float* out) {
  return PooledBags<V>(t.num_rows, t.dim, a, out,
                       [&]<Op kOp>(int64_t begin, int64_t end, float* o, typename V::R init) {
                         SimdPoolBag<V, kOp>(t, a, begin, end, o, init);
                       });
}

// ---- Compact rows (core/row_codec.h) -------------------------------------
// V also provides Mul, LoadF16 / LoadBF16 (L 16-bit values), LoadU8 (L
// bytes), each widening to L floats. int8 decodes as scale * q + bias with
// two roundings, exactly as the scalar DecodeRow.

template <class V, RowType T>
inline typename V::R CompactLoad(const uint8_t* row, int64_t d, typename V::R scale,
                                 typename V::R bias) {
  if constexpr (T == RowType::kFloat16) {
    return V::LoadF16(row + 2 * d);
  } else if constexpr (T == RowType::kBFloat16) {
    return V::LoadBF16(row + 2 * d);
  } else {
    return V::Add(V::Mul(V::LoadU8(row + 8 + d), scale), bias);
  }
}

template <class V, RowType T>
inline void RowScaleBias(const uint8_t* row, typename V::R* scale, typename V::R* bias) {
  if constexpr (T == RowType::kInt8Rowwise) {
    float s, b;
    __builtin_memcpy(&s, row, 4);
    __builtin_memcpy(&b, row + 4, 4);
    *scale = V::Set1(s);
    *bias = V::Set1(b);
  }
}

inline const uint8_t* CompactRow(const CompactRowView& t, int64_t id) {
  const int64_t local_mask = (int64_t{1} << t.shard_shift) - 1;
  return t.shards[id >> t.shard_shift] + (id & local_mask) * t.stride;
}

inline void CompactPrefetch(const CompactRowView& t, int64_t id) {
  if (static_cast<uint64_t>(id) >= static_cast<uint64_t>(t.num_rows)) return;
  const uint8_t* p = CompactRow(t, id);
  const int64_t end = t.stride < kMaxPrefetchLines * 64 ? t.stride : kMaxPrefetchLines * 64;
  for (int64_t off = 0; off < end; off += 64) PrefetchNta(p + off);
}

template <class V, RowType T>
int64_t CompactGatherT(const CompactRowView& t, const int64_t* ids, int64_t n, float* out) {
  constexpr int64_t L = V::kLanes;
  const int64_t dim = t.dim;
  typename V::R scale = V::Zero(), bias = V::Zero();
  const int64_t stopped = InPrefetchedBlocks(
      n, kPrefetchDistance, [&](int64_t j) { CompactPrefetch(t, ids[j]); },
      [&](int64_t i) {
        const int64_t id = ids[i];
        if (static_cast<uint64_t>(id) >= static_cast<uint64_t>(t.num_rows)) return false;
        const uint8_t* row = CompactRow(t, id);
        RowScaleBias<V, T>(row, &scale, &bias);
        float* o = out + i * dim;
        int64_t d = 0;
        for (; d + L <= dim; d += L) V::Store(o + d, CompactLoad<V, T>(row, d, scale, bias));
        if (d < dim) V::StoreN(o + d, CompactLoad<V, T>(row, d, scale, bias), dim - d);
        return true;
      });
  return stopped < n ? stopped : kAllValid;
}

template <class V, RowType T, Op kOp>
inline void CompactPoolBag(const CompactRowView& t, const BagArgs& a, int64_t begin, int64_t end,
                           float* o, typename V::R init) {
  constexpr int64_t L = V::kLanes;
  const int64_t dim = t.dim;
  const int64_t num_vecs = (dim + L - 1) / L;
  for (int64_t v = 0; v < num_vecs; v += 4) {
    const int64_t k = num_vecs - v < 4 ? num_vecs - v : 4;
    typename V::R acc[4] = {init, init, init, init};
    for (int64_t i = begin; i < end; ++i) {
      if (v == 0 && i + kPrefetchDistance < a.num_ids) {
        CompactPrefetch(t, a.ids[i + kPrefetchDistance]);
      }
      const int64_t id = a.ids[i];
      if (id == a.padding_idx) continue;
      const uint8_t* row = CompactRow(t, id);
      typename V::R scale = V::Zero(), bias = V::Zero();
      RowScaleBias<V, T>(row, &scale, &bias);
      for (int64_t j = 0; j < k; ++j) {
        const typename V::R x = CompactLoad<V, T>(row, (v + j) * L, scale, bias);
        if constexpr (kOp == Op::kAdd) {
          acc[j] = V::Add(acc[j], x);
        } else if constexpr (kOp == Op::kWeighted) {
          acc[j] = V::Fma(V::Set1(a.weights[i]), x, acc[j]);
        } else {
          acc[j] = V::Max(acc[j], x);
        }
      }
    }
    for (int64_t j = 0; j < k; ++j) {
      const int64_t at = (v + j) * L;
      if (at + L <= dim) {
        V::Store(o + at, acc[j]);
      } else {
        V::StoreN(o + at, acc[j], dim - at);
      }
    }
  }
}

template <class V, RowType T>
int64_t CompactPooledT(const CompactRowView& t, const BagArgs& a, float* out) {
  return PooledBags<V>(t.num_rows, t.dim, a, out,
                       [&]<Op kOp>(int64_t begin, int64_t end, float* o, typename V::R init) {
                         CompactPoolBag<V, T, kOp>(t, a, begin, end, o, init);
                       });
}

template <class V>
int64_t SimdCompactGather(const CompactRowView& t, const int64_t* ids, int64_t n, float* out) {
  switch (t.type) {
    case RowType::kFloat16:
      return CompactGatherT<V, RowType::kFloat16>(t, ids, n, out);
    case RowType::kBFloat16:
      return CompactGatherT<V, RowType::kBFloat16>(t, ids, n, out);
    default:
      return CompactGatherT<V, RowType::kInt8Rowwise>(t, ids, n, out);
  }
}

// ---- Pooling rows of at most 8 vectors -------------------------------------
// (dim <= 64 with AVX2, <= 128 with AVX-512: the common case) in ONE loop
// over all bags and rows, with the whole row in kVecs accumulators, ids
// checked inline and the next rows' prefetch in the same loop. Laid out like
// Caffe2's EmbeddingLookupIdx that torch runs: the blocked form (a call per
// bag, a separate check pass) ran ~1.5-2x slower per row on the same memory.
//
// `Rows` says how rows are stored: View (RowView or CompactRowView, whose
// shards + (id & mask) * stride address a row), kBytes<kVecs> (the bytes
// that kVecs vectors of a row touch), and At(row) -> an object whose Get(j)
// is vector j of the row as float32.

template <class V>
struct Float32Rows {
  using View = RowView;
  template <int kVecs>
  static constexpr int64_t kBytes = kVecs* V::kLanes * 4;
  struct Row {
    const float* p;
    typename V::R Get(int j) const { return V::Load(p + j * V::kLanes); }
  };
  static Row At(const float* p) { return {p}; }
};

template <class V, RowType T>
struct CompactRows {
  using View = CompactRowView;
  template <int kVecs>
  static constexpr int64_t kBytes =
      T == RowType::kInt8Rowwise ? 8 + kVecs* V::kLanes : 2 * kVecs* V::kLanes;
  struct Row {
    const uint8_t* p;
    typename V::R scale, bias;
    typename V::R Get(int j) const { return CompactLoad<V, T>(p, j * V::kLanes, scale, bias); }
  };
  static Row At(const uint8_t* p) {
    Row r{p, V::Zero(), V::Zero()};
    RowScaleBias<V, T>(p, &r.scale, &r.bias);
    return r;
  }
};

template <class V, class Rows, int kVecs, Op kOp>
int64_t PooledRows(const typename Rows::View& t, const BagArgs& a, float* out) {
  constexpr int64_t L = V::kLanes;
  // Cache lines the kVecs vectors touch: a compile-time count (unrolled); a
  // row's stride is a multiple of 64 bytes, so they stay inside it.
  constexpr int64_t kRowBytes = Rows::template kBytes<kVecs>;
  constexpr int kLines = kRowBytes < kMaxPrefetchLines * 64 ? (kRowBytes + 63) / 64
                                                            : static_cast<int>(kMaxPrefetchLines);
  const auto* const* const shards = t.shards;
  const int shift = t.shard_shift;
  const int64_t mask = (int64_t{1} << shift) - 1;
  const int64_t stride = t.stride;
  const int64_t dim = t.dim;
  const uint64_t num_rows = static_cast<uint64_t>(t.num_rows);
  const int64_t* const ids = a.ids;
  const int64_t num_ids = a.num_ids;
  const int64_t padding = a.padding_idx;
  const typename V::R init = kOp == Op::kMax ? V::Set1(-__builtin_inff()) : V::Zero();
  for (int64_t b = 0; b < a.num_bags; ++b) {
    const int64_t begin = a.bounds[b], end = a.bounds[b + 1];
    typename V::R acc[kVecs];
    for (int j = 0; j < kVecs; ++j) acc[j] = init;
    int64_t count = 0;
    for (int64_t i = begin; i < end; ++i) {
      const int64_t ahead = ids[i + kPrefetchDistance < num_ids ? i + kPrefetchDistance : i];
      if (static_cast<uint64_t>(ahead) < num_rows) {
        const char* p =
            reinterpret_cast<const char*>(shards[ahead >> shift] + (ahead & mask) * stride);
        for (int l = 0; l < kLines; ++l) PrefetchNta(p + 64 * l);
      }
      const int64_t id = ids[i];
      if (static_cast<uint64_t>(id) >= num_rows) return i;
      if (id == padding) continue;
      ++count;
      const auto row = Rows::At(shards[id >> shift] + (id & mask) * stride);
      if constexpr (kOp == Op::kAdd) {
        for (int j = 0; j < kVecs; ++j) acc[j] = V::Add(acc[j], row.Get(j));
      } else if constexpr (kOp == Op::kWeighted) {
        const typename V::R w = V::Set1(a.weights[i]);
        for (int j = 0; j < kVecs; ++j) acc[j] = V::Fma(w, row.Get(j), acc[j]);
      } else {
        for (int j = 0; j < kVecs; ++j) acc[j] = V::Max(acc[j], row.Get(j));
      }
    }
    if (count == 0) {
      for (int j = 0; j < kVecs; ++j) acc[j] = V::Zero();
    } else if (a.mode == PoolingMode::kMean) {
      const typename V::R c = V::Set1(static_cast<float>(count));
      for (int j = 0; j < kVecs; ++j) acc[j] = V::Div(acc[j], c);
    }
    float* o = out + b * dim;
    for (int j = 0; j < kVecs; ++j) {
      const int64_t at = j * L;
      if (at + L <= dim) {
        V::Store(o + at, acc[j]);
      } else {
        V::StoreN(o + at, acc[j], dim - at);
      }
    }
  }
  return kAllValid;
}

template <class V, class Rows, int kVecs>
int64_t PooledRowsFor(const typename Rows::View& t, const BagArgs& a, float* out) {
  if (a.mode == PoolingMode::kMax) return PooledRows<V, Rows, kVecs, Op::kMax>(t, a, out);
  if (a.weights != nullptr) return PooledRows<V, Rows, kVecs, Op::kWeighted>(t, a, out);
  return PooledRows<V, Rows, kVecs, Op::kAdd>(t, a, out);
}

// The one-loop kernel for rows of 1-8 vectors, else blocked().
template <class V, class Rows, class Blocked>
int64_t PooledRowsOr(const typename Rows::View& t, const BagArgs& a, float* out, Blocked blocked) {
  switch ((t.dim + V::kLanes - 1) / V::kLanes) {
    case 1:
      return PooledRowsFor<V, Rows, 1>(t, a, out);
    case 2:
      return PooledRowsFor<V, Rows, 2>(t, a, out);
    case 3:
      return PooledRowsFor<V, Rows, 3>(t, a, out);
    case 4:
      return PooledRowsFor<V, Rows, 4>(t, a, out);
    case 5:
      return PooledRowsFor<V, Rows, 5>(t, a, out);
    case 6:
      return PooledRowsFor<V, Rows, 6>(t, a, out);
    case 7:
      return PooledRowsFor<V, Rows, 7>(t, a, out);
    case 8:
      return PooledRowsFor<V, Rows, 8>(t, a, out);
    default:
      return blocked();
  }
}

template <class V>
int64_t SimdPooled(const RowView& t, const BagArgs& a, float* out) {
  return PooledRowsOr<V, Float32Rows<V>>(t, a, out,
                                         [&] { return SimdPooledBlocked<V>(t, a, out); });
}

template <class V, RowType T>
int64_t CompactPooledFor(const CompactRowView& t, const BagArgs& a, float* out) {
  return PooledRowsOr<V, CompactRows<V, T>>(t, a, out,
                                            [&] { return CompactPooledT<V, T>(t, a, out); });
}

template <class V>
int64_t SimdCompactPooled(const CompactRowView& t, const BagArgs& a, float* out) {
  switch (t.type) {
    case RowType::kFloat16:
      return CompactPooledFor<V, RowType::kFloat16>(t, a, out);
    case RowType::kBFloat16:
      return CompactPooledFor<V, RowType::kBFloat16>(t, a, out);
    default:
      return CompactPooledFor<V, RowType::kInt8Rowwise>(t, a, out);
  }
}

}  // namespace
}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_GATHER_SIMD_IMPL_H_
