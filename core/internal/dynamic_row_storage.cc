#include "core/internal/dynamic_row_storage.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/internal/aligned_memory.h"
#include "core/internal/prefetch.h"
#include "core/row_codec.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kChunkBytes = kHugePageBytes;
constexpr int64_t kMinChunkSlots = 64;
constexpr int64_t kMaxChunkSlots = int64_t{1} << 16;

int64_t RoundUp(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Sorts (order, slot) pairs by order (ties keep their places): a radix
// sort, 16 bits of (order - the least order) a pass, for a restore of
// millions of rows (std::sort of 10 M pairs took 1.1 s on this project's
// VM); std::sort for few.
void SortByOrder(std::vector<std::pair<int64_t, uint32_t>>* v) {
  if (v->size() < 4096) {
    std::stable_sort(v->begin(), v->end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    return;
  }
  const auto [lo, hi] = std::minmax_element(
      v->begin(), v->end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  const uint64_t base = static_cast<uint64_t>(lo->first);
  const uint64_t span = static_cast<uint64_t>(hi->first) - base;
  std::vector<std::pair<int64_t, uint32_t>> out(v->size());
  std::vector<size_t> start(65537);
  for (int shift = 0; shift < 64 && (span >> shift) != 0; shift += 16) {
    auto digit = [&](const std::pair<int64_t, uint32_t>& e) {
      return ((static_cast<uint64_t>(e.first) - base) >> shift) & 0xffff;
    };
    std::fill(start.begin(), start.end(), 0);
    for (const auto& e : *v) ++start[digit(e) + 1];
    for (size_t d = 1; d < start.size(); ++d) start[d] += start[d - 1];
    for (const auto& e : *v) out[start[digit(e)]++] = e;
    v->swap(out);
  }
}

// A counter that only the writer changes: a plain load and store (readers
// load it relaxed), not a locked read-modify-write.
inline void Bump(std::atomic<int64_t>& counter, int64_t by) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

// Upsert works this many ids ahead on the index lines, and this many
// victims ahead on the LRU list when the storage is full.
constexpr size_t kUpsertAhead = 8;
constexpr int kVictimsAhead = 4;
static_assert(DynamicRowStorage::kMaxSlots <= IdIndex::kSlotLimit);

// AllocateAligned, zeroed; nullptr without memory.
void* AllocateZeroed(int64_t bytes) {
  void* p = AllocateAligned(bytes);
  if (p != nullptr) std::memset(p, 0, static_cast<size_t>(AlignedAllocationBytes(bytes)));
  return p;
}

}  // namespace

absl::Status CheckDynamicRowOptions(const DynamicRowOptions& o) {
  if (o.max_rows < 0 || o.max_rows > DynamicRowStorage::kMaxSlots) {
    return absl::InvalidArgumentError(absl::StrCat("max_rows ", o.max_rows, " is not in [0, ",
                                                   DynamicRowStorage::kMaxSlots, "]"));
  }
  if (o.ttl_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("ttl_steps ", o.ttl_steps, " is negative"));
  }
  if (o.admit_after < 0 || o.admit_after > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat("admit_after ", o.admit_after, " is not in [0, 255]"));
  }
  if (o.admit_after >= 2 && (o.sketch_width < 1 || o.sketch_width > (int64_t{1} << 30))) {
    return absl::InvalidArgumentError(
        absl::StrCat("sketch_width ", o.sketch_width, " is not in [1, 2^30]"));
  }
  if (o.sketch_window < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("sketch_window ", o.sketch_window, " is negative"));
  }
  if (o.expected_rows < 0 || o.expected_rows > DynamicRowStorage::kMaxSlots) {
    return absl::InvalidArgumentError(absl::StrCat("expected_rows ", o.expected_rows,
                                                   " is not in [0, ",
                                                   DynamicRowStorage::kMaxSlots, "]"));
  }
  return absl::OkStatus();
}

DynamicRowStorage::DynamicRowStorage(const RowFormat& format, const DynamicRowOptions& options,
                                     int chunk_shift, int64_t max_slots)
    : RowStorage(format),
      options_(options),
      chunk_shift_(chunk_shift),
      chunk_mask_((int64_t{1} << chunk_shift) - 1),
      max_slots_(max_slots),
      state_stride_(RoundUp(format.dim, 16)) {}

DynamicRowStorage::~DynamicRowStorage() {
  for (int c = 0; c < chunks_.load(std::memory_order_relaxed); ++c) std::free(row_chunks_[c]);
}

absl::StatusOr<std::unique_ptr<DynamicRowStorage>> DynamicRowStorage::Create(
    const RowFormat& format, const DynamicRowOptions& options) {
  if (absl::Status s = CheckDynamicRowOptions(options); !s.ok()) return s;
  const int64_t max_slots = options.max_rows > 0 ? options.max_rows : kMaxSlots;
  int64_t chunk_slots = std::clamp<int64_t>(
      static_cast<int64_t>(std::bit_floor(static_cast<uint64_t>(
          std::max<int64_t>(kChunkBytes / std::max<int64_t>(format.row_bytes, 1), 1)))),
      kMinChunkSlots, kMaxChunkSlots);
  chunk_slots = std::max<int64_t>(
      kMinChunkSlots,
      std::min<int64_t>(chunk_slots,
                        static_cast<int64_t>(std::bit_ceil(static_cast<uint64_t>(max_slots)))));
  const int chunk_shift = std::countr_zero(static_cast<uint64_t>(chunk_slots));
  std::unique_ptr<DynamicRowStorage> s(
      new DynamicRowStorage(format, options, chunk_shift, max_slots));

  const int64_t expected =
      options.expected_rows > 0 ? options.expected_rows : std::min<int64_t>(options.max_rows, 1 << 20);
  s->index_ = IdIndex::Create(options.seed, expected);
  if (s->index_ == nullptr) {
    return absl::ResourceExhaustedError("cannot allocate the id index of a dynamic table");
  }
  if (options.admit_after >= 2) {
    s->sketch_ = std::make_unique<AdmissionSketch>(options.seed, options.sketch_width,
                                                   options.sketch_window);
  }
  // calloc: the untouched tail of a large pointer array costs no memory.
  const int64_t max_chunks = (max_slots + chunk_slots - 1) / chunk_slots;
  s->row_chunk_storage_.reset(
      static_cast<uint8_t**>(std::calloc(static_cast<size_t>(max_chunks), sizeof(uint8_t*))));
  s->float_chunks_.reset(
      static_cast<const float**>(std::calloc(static_cast<size_t>(max_chunks), sizeof(float*))));
  s->compact_chunks_.reset(static_cast<const uint8_t**>(
      std::calloc(static_cast<size_t>(max_chunks), sizeof(uint8_t*))));
  if (!s->row_chunk_storage_ || !s->float_chunks_ || !s->compact_chunks_) {
    return absl::ResourceExhaustedError("cannot allocate the chunk table of a dynamic table");
  }
  s->row_chunks_ = s->row_chunk_storage_.get();
  KernelRows& k = s->kernel_rows_;
  k.rows = RowView{s->float_chunks_.get(), chunk_shift, max_slots, format.dim,
                   format.row_bytes / 4};
  k.compact = CompactRowView{s->compact_chunks_.get(), chunk_shift, max_slots,
                             format.dim,                 format.row_bytes, format.type};
  k.is_compact = format.type != RowType::kFloat32;
  return s;
}

// ---- Readers ---------------------------------------------------------------

absl::Span<const int64_t> DynamicRowStorage::Resolve(absl::Span<const int64_t> ids,
                                                     std::vector<int64_t>* scratch) const {
  // [slots | bucket positions | array generation]
  const size_t n = ids.size();
  scratch->resize(2 * n + 1);
  uint64_t generation = 0;
  // Each found row is prefetched into L2 while the next ids are probed, so
  // the gather that follows reads rows the probes already waited for.
  const int64_t row_bytes = format().row_bytes;
  index_->Find(ids, absl::MakeSpan(scratch->data(), n), absl::MakeSpan(scratch->data() + n, n),
               &generation, [&](int64_t slot) {
                 const uint8_t* row = Row(slot);
                 for (int64_t b = 0; b < row_bytes; b += 64) PrefetchL2(row + b);
               });
  (*scratch)[2 * n] = static_cast<int64_t>(generation);
  return absl::MakeConstSpan(scratch->data(), n);
}

void DynamicRowStorage::Recheck(absl::Span<const int64_t> ids,
                                const std::vector<int64_t>& scratch,
                                std::vector<int64_t>* changed) const {
  const size_t n = ids.size();
  index_->Recheck(ids, absl::MakeConstSpan(scratch.data(), n),
                  absl::MakeConstSpan(scratch.data() + n, n),
                  static_cast<uint64_t>(scratch[2 * n]), changed);
}

void DynamicRowStorage::Lookup(
    absl::Span<const int64_t> ids, const GatherKernels& kernels, const RowSeqlock* seqlock,
    float* out,
    absl::FunctionRef<void(absl::Span<const int64_t> ids, float* rows)> unseen) const {
  const int64_t n = static_cast<int64_t>(ids.size());
  const int64_t dim = format().dim;
  const int64_t* const id = ids.data();
  thread_local std::vector<int64_t> slot_buf, redo;
  thread_local std::vector<uint32_t> before;
  thread_local std::vector<float> packed;
  slot_buf.resize(n);
  int64_t* const slots = slot_buf.data();
  // Positions without a row, not filled yet (ascending).
  int64_t missing[kUnseenBatch];
  int64_t pending = 0;
  auto fill_pending = [&] {
    const int64_t first = missing[0];
    if (missing[pending - 1] - first == pending - 1) {
      unseen(ids.subspan(first, pending), out + first * dim);  // one run: in place
    } else {
      int64_t batch_ids[kUnseenBatch];
      for (int64_t k = 0; k < pending; ++k) batch_ids[k] = id[missing[k]];
      packed.resize(kUnseenBatch * dim);
      unseen(absl::MakeConstSpan(batch_ids, pending), packed.data());
      for (int64_t k = 0; k < pending; ++k) {
        std::memcpy(out + missing[k] * dim, packed.data() + k * dim, dim * sizeof(float));
      }
    }
    pending = 0;
  };
  redo.clear();
  {
    // Resolve, with the misses filled as they come. While most of the
    // thread's recent ids had no row, in three stages: the filter word of
    // id i + 2 * kLookupAhead is prefetched, the filter of id i +
    // kLookupAhead read (and, if it may hold the id, its index line
    // prefetched), and id i probed: an id the filter rules out reads no
    // index line at all (see IdIndex: such a line costs a TLB walk that
    // stalls the fill beside it). Else in two (IdIndex::Reader::FindEach:
    // the line prefetched kEachAhead ids ahead, the probe): for a stored id
    // the filter would be a third random line beside its index line and
    // its row. `balance`,
    // kept per thread across calls, counts ids with a row up and ids
    // without down; each call picks its way from it.
    const IdIndex::Reader reader(*index_);
    constexpr int kBalanceMax = 16;
    thread_local int balance = 0;
    const bool filtered = balance < kBalanceMax / 2;
    // A found id's seqlock snapshot and recheck are taken as it is found,
    // while its index line is in L1: no second pass over the request's
    // lines (IdIndex::Recheck). Its row is not prefetched here: the gather
    // below prefetches rows in a loop of its own, and a prefetch here,
    // measured, gained nothing (stored lookups / dense gather 0.634x with
    // it, 0.624x without, medians of 4 processes on this project's 2-core
    // EPYC VM). What did pay is the probe loop's size: a random line's
    // prefetch waits for its TLB walk before it retires, so only the
    // prefetches within the CPU's reorder window overlap their walks, and
    // the loop is now IdIndex::Reader::FindEach, inline (0.55x -> 0.62x).
    if (seqlock != nullptr) before.resize(n);
    uint32_t* const snapshot = before.data();
    auto probed = [&](int64_t i, int64_t position) {
      if (slots[i] >= 0) {
        if (seqlock != nullptr) {
          snapshot[i] = seqlock->SnapshotOne(slots[i]);
          if (!reader.StillHolds(position, id[i], slots[i])) redo.push_back(i);
        }
        balance = std::min(balance + 1, kBalanceMax);
      } else {
        // (Torn reads every position's stripe, as Snapshot noted them.)
        if (seqlock != nullptr) snapshot[i] = seqlock->SnapshotOne(slots[i]);
        balance = std::max(balance - 1, 0);
        missing[pending++] = i;
        if (pending == kUnseenBatch) fill_pending();
      }
    };
    if (!filtered) {
      reader.FindEach(ids, [&](int64_t i, int64_t slot, uint64_t position) {
        slots[i] = slot;
        probed(i, static_cast<int64_t>(position));
      });
    } else {
      constexpr int64_t kRing = 4 * kLookupAhead;  // a power of two
      uint64_t hash[kRing];
      bool may[kRing];
      auto stage1 = [&](int64_t j) {
        hash[j & (kRing - 1)] = reader.Hash(id[j]);
        reader.PrefetchFilter(hash[j & (kRing - 1)]);
      };
      auto stage2 = [&](int64_t j) {
        const uint64_t h = hash[j & (kRing - 1)];
        may[j & (kRing - 1)] = reader.MayHold(h);
        if (may[j & (kRing - 1)]) reader.PrefetchLine(h);
      };
      for (int64_t j = 0; j < std::min(n, 2 * kLookupAhead); ++j) stage1(j);
      for (int64_t j = 0; j < std::min(n, kLookupAhead); ++j) stage2(j);
      for (int64_t i = 0; i < n; ++i) {
        if (i + 2 * kLookupAhead < n) stage1(i + 2 * kLookupAhead);
        if (i + kLookupAhead < n) stage2(i + kLookupAhead);
        const int64_t r = i & (kRing - 1);
        int64_t position = 0;
        slots[i] = may[r] ? reader.Find(hash[r], id[i], &position) : IdIndex::kMissing;
        probed(i, position);
      }
    }
    // After the last snapshot: a rebuild since the probes sends every
    // found id to the re-read by id (rare: once per ~0.5 x capacity inserts).
    if (seqlock != nullptr && !reader.Current()) {
      for (int64_t i = 0; i < n; ++i) {
        if (slots[i] >= 0) redo.push_back(i);
      }
    }
  }
  if (pending > 0) fill_pending();
  const absl::Span<const int64_t> slot_span(slots, n);
  // The rows (the missing ones are written already).
  GatherResolved(kernels, kernel_rows_, slot_span, out, [](int64_t, float*) {});
  if (seqlock == nullptr) return;
  seqlock->Torn(slot_span, before, &redo);
  if (redo.empty()) return;
  std::sort(redo.begin(), redo.end());
  redo.erase(std::unique(redo.begin(), redo.end()), redo.end());
  for (const int64_t i : redo) {
    float* const row = out + i * dim;
    const bool stored = ReadRowStable(*seqlock, id[i], [&](const uint8_t* src) {
      DecodeRow(format().type, src, dim, row);
    });
    if (!stored) unseen(ids.subspan(i, 1), row);  // evicted meanwhile
  }
}

void GatherResolved(const GatherKernels& kernels, const KernelRows& rows,
                    absl::Span<const int64_t> slots, float* out,
                    absl::FunctionRef<void(int64_t position, float* row)> fill_missing) {
  const int64_t n = static_cast<int64_t>(slots.size());
  const int64_t dim = rows.rows.dim;
  const int64_t* const s = slots.data();
  int64_t i = 0;
  while (i < n) {
    int64_t j = i;
    while (j < n && s[j] >= 0) ++j;
    if (j > i) {
      // Every slot in [i, j) is a row: the kernel reports none.
      if (rows.is_compact) {
        kernels.compact_gather(rows.compact, s + i, j - i, out + i * dim);
      } else {
        kernels.gather(rows.rows, s + i, j - i, out + i * dim);
      }
    }
    if (j < n) fill_missing(j, out + j * dim);
    i = j + 1;
  }
}

// ---- Rows and state --------------------------------------------------------

float* DynamicRowStorage::State(int k, int64_t slot) const {
  return state_chunks_[k][slot >> chunk_shift_].get() + (slot & chunk_mask_) * state_stride_;
}

void DynamicRowStorage::ReadRecord(int64_t slot, float* dst) const {
  const int64_t dim = format().dim;
  DecodeRow(format().type, Row(slot), dim, dst);
  dst += dim;
  for (int k = 0; k < format().element_slots; ++k) {
    std::memcpy(dst, State(k, slot), dim * sizeof(float));
    dst += dim;
  }
  if (format().row_slots > 0) *dst = row_state_chunks_[slot >> chunk_shift_][slot & chunk_mask_];
}

void DynamicRowStorage::WriteRecord(int64_t slot, const float* src) {
  WillChange(slot);
  const int64_t dim = format().dim;
  EncodeRow(format().type, src, dim, MutableRow(slot));
  src += dim;
  for (int k = 0; k < format().element_slots; ++k) {
    std::memcpy(State(k, slot), src, dim * sizeof(float));
    src += dim;
  }
  if (format().row_slots > 0) row_state_chunks_[slot >> chunk_shift_][slot & chunk_mask_] = *src;
}

int64_t DynamicRowStorage::row_bytes() const {
  return chunks_.load(std::memory_order_relaxed) *
         AlignedAllocationBytes(rows_per_chunk() * format().row_bytes);
}

int64_t DynamicRowStorage::state_bytes() const {
  const int64_t per_chunk =
      format().element_slots * AlignedAllocationBytes(rows_per_chunk() * state_stride_ * 4) +
      format().row_slots * rows_per_chunk() * 4;
  return chunks_.load(std::memory_order_relaxed) * per_chunk;
}

DynamicRowStats DynamicRowStorage::stats() const {
  DynamicRowStats st;
  st.rows_stored = stored_.load(std::memory_order_relaxed);
  st.rows_admitted = admitted_.load(std::memory_order_relaxed);
  st.rows_evicted = evicted_.load(std::memory_order_relaxed);
  st.rows_expired = expired_.load(std::memory_order_relaxed);
  st.rows_erased = erased_.load(std::memory_order_relaxed);
  st.pushes_not_admitted = not_admitted_.load(std::memory_order_relaxed);
  st.pushes_dropped_full = dropped_full_.load(std::memory_order_relaxed);
  st.index_bytes = index_->bytes();
  st.index_rebuilds = index_->rebuilds();
  st.sketch_bytes = sketch_ ? sketch_->bytes() : 0;
  st.slot_meta_bytes = chunks_.load(std::memory_order_relaxed) * rows_per_chunk() *
                       static_cast<int64_t>(sizeof(SlotMeta));
  st.row_bytes = row_bytes();
  st.state_bytes = state_bytes();
  return st;
}

std::array<int64_t, DynamicRowStorage::kCounters> DynamicRowStorage::Counters() const {
  const DynamicRowStats st = stats();
  return {st.rows_admitted,       st.rows_evicted,        st.rows_expired,
          st.rows_erased,         st.pushes_not_admitted, st.pushes_dropped_full};
}

void DynamicRowStorage::SetCounters(const std::array<int64_t, kCounters>& c) {
  admitted_.store(c[0], std::memory_order_relaxed);
  evicted_.store(c[1], std::memory_order_relaxed);
  expired_.store(c[2], std::memory_order_relaxed);
  erased_.store(c[3], std::memory_order_relaxed);
  not_admitted_.store(c[4], std::memory_order_relaxed);
  dropped_full_.store(c[5], std::memory_order_relaxed);
}

// ---- The writer ------------------------------------------------------------

absl::Status DynamicRowStorage::AddChunk() {
  const int c = chunks_.load(std::memory_order_relaxed);
  const int64_t n = rows_per_chunk();
  auto* rows = static_cast<uint8_t*>(AllocateZeroed(n * format().row_bytes));
  if (rows == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", n * format().row_bytes, " bytes for rows"));
  }
  std::unique_ptr<SlotMeta[]> meta(new (std::nothrow) SlotMeta[n]);
  std::unique_ptr<float, FreeDeleter> state[2];
  std::unique_ptr<float[]> row_state;
  bool ok = meta != nullptr;
  for (int k = 0; ok && k < format().element_slots; ++k) {
    state[k].reset(static_cast<float*>(AllocateZeroed(n * state_stride_ * 4)));
    ok = state[k] != nullptr;
  }
  if (ok && format().row_slots > 0) {
    row_state.reset(new (std::nothrow) float[n]);
    ok = row_state != nullptr;
  }
  if (!ok) {
    std::free(rows);
    return absl::ResourceExhaustedError("cannot allocate optimizer state for rows");
  }
  meta_chunks_.push_back(std::move(meta));
  for (int k = 0; k < format().element_slots; ++k) state_chunks_[k].push_back(std::move(state[k]));
  if (format().row_slots > 0) row_state_chunks_.push_back(std::move(row_state));
  row_chunks_[c] = rows;
  float_chunks_.get()[c] = reinterpret_cast<const float*>(rows);
  compact_chunks_.get()[c] = rows;
  chunks_.store(c + 1, std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::StatusOr<int64_t> DynamicRowStorage::NewSlot() {
  if (free_head_ != kNil) {
    const uint32_t s = free_head_;
    free_head_ = Meta(s).next;
    return static_cast<int64_t>(s);
  }
  if (next_slot_ >= max_slots_) {
    return absl::ResourceExhaustedError(absl::StrCat("all ", max_slots_, " slots are in use"));
  }
  if ((next_slot_ & chunk_mask_) == 0) {
    if (absl::Status st = AddChunk(); !st.ok()) return st;
  }
  return next_slot_++;
}

void DynamicRowStorage::Unlink(uint32_t s) {
  SlotMeta& m = Meta(s);
  if (m.prev != kNil) {
    Meta(m.prev).next = m.next;
  } else {
    lru_head_ = m.next;
  }
  if (m.next != kNil) {
    Meta(m.next).prev = m.prev;
  } else {
    lru_tail_ = m.prev;
  }
}

void DynamicRowStorage::LinkTail(uint32_t s, int64_t order) {
  SlotMeta& m = Meta(s);
  m.order = order;
  m.prev = lru_tail_;
  m.next = kNil;
  if (lru_tail_ != kNil) {
    Meta(lru_tail_).next = s;
  } else {
    lru_head_ = s;
  }
  lru_tail_ = s;
}

void DynamicRowStorage::Drop(uint32_t s) {
  WillChange(s);
  // Unpublish first: the slot is reused only after readers can no longer
  // find the id (see Recheck).
  index_->Erase(Meta(s).id);
  Unlink(s);
  Free(s);
  Bump(stored_, -1);
}

void DynamicRowStorage::Free(uint32_t s) {
  SlotMeta& m = Meta(s);
  m.prev = kFree;
  m.next = free_head_;
  free_head_ = s;
}

int64_t DynamicRowStorage::Expire(int64_t step) {
  if (options_.ttl_steps == 0) return 0;
  last_step_ = std::max(last_step_, step);
  int64_t n = 0;
  // Steps below INT64_MIN + ttl cannot have rows older than ttl.
  if (step < INT64_MIN + options_.ttl_steps) return 0;
  const int64_t cutoff = step - options_.ttl_steps;
  while (lru_head_ != kNil && Meta(lru_head_).last_step <= cutoff) {
    Drop(lru_head_);
    ++n;
  }
  Bump(expired_, n);
  return n;
}

bool DynamicRowStorage::Erase(int64_t id) {
  const int64_t s = index_->WriterFind(id);
  if (s < 0) return false;
  Drop(static_cast<uint32_t>(s));
  Bump(erased_, 1);
  return true;
}

absl::Status DynamicRowStorage::Upsert(
    absl::Span<const int64_t> ids, int64_t step, UpsertMode mode, absl::Span<int64_t> slots,
    absl::FunctionRef<void(int64_t position, int64_t slot)> init_row) {
  if (slots.size() != ids.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ids.size(), " ids but room for ", slots.size(), " slots"));
  }
  if (step < last_step_) {
    return absl::InvalidArgumentError(
        absl::StrCat("step ", step, " is below the last step ", last_step_));
  }
  last_step_ = step;
  Expire(step);
  const RowFormat& f = format();
  const size_t n = ids.size();
  for (size_t i = 0; i < std::min(n, kUpsertAhead); ++i) index_->WriterPrefetch(ids[i]);
  // Victims of a full storage, a few ahead of the LRU head: their index
  // lines (the Erase), their rows and state (the new ids' init) are
  // prefetched while the ids before them are applied. `ahead` is a slot
  // `ahead_count` links past the head when nothing else moved the list
  // meanwhile; when it did, only prefetches go astray.
  uint32_t ahead = kNil;
  int ahead_count = 0;
  auto prefetch_victims = [&] {
    while (ahead_count < kVictimsAhead) {
      ahead = ahead == kNil ? lru_head_ : Meta(ahead).next;
      if (ahead == kNil) return;
      ++ahead_count;
      index_->WriterPrefetch(Meta(ahead).id);
      const uint8_t* row = Row(ahead);
      for (int64_t b = 0; b < f.row_bytes; b += 64) PrefetchForWrite(row + b);
      for (int k = 0; k < f.element_slots; ++k) {
        const float* st = State(k, ahead);
        for (int64_t b = 0; b < f.dim; b += 16) PrefetchForWrite(st + b);
      }
    }
  };
  // Rows this call updated or made: they sit at the tail of the LRU list,
  // so the head is one of them only when all rows are.
  int64_t ours = 0;
  for (size_t i = 0; i < n; ++i) {
    const int64_t id = ids[i];
    if (i + kUpsertAhead < n) index_->WriterPrefetch(ids[i + kUpsertAhead]);
    const int64_t found = index_->WriterFind(id);
    if (found >= 0) {
      const uint32_t s = static_cast<uint32_t>(found);
      WillChange(s);
      if (s != lru_tail_) {
        Unlink(s);
        LinkTail(s, ++last_order_);
      }
      Meta(s).last_step = step;
      slots[i] = found;
      ++ours;
      continue;
    }
    slots[i] = kMissingSlot;
    if (mode == UpsertMode::kPush && sketch_ != nullptr &&
        sketch_->Add(id) < options_.admit_after) {
      Bump(not_admitted_, 1);
      continue;
    }
    if (options_.max_rows > 0 && stored_.load(std::memory_order_relaxed) >= options_.max_rows) {
      if (ours >= stored_.load(std::memory_order_relaxed)) {  // every row is pinned
        Bump(dropped_full_, 1);
        continue;
      }
      if (lru_head_ == ahead) {
        ahead = kNil;
        ahead_count = 0;
      } else if (ahead_count > 0) {
        --ahead_count;
      }
      prefetch_victims();
      Drop(lru_head_);
      Bump(evicted_, 1);
    }
    absl::StatusOr<int64_t> slot = NewSlot();
    if (!slot.ok()) {
      std::fill(slots.begin() + i, slots.end(), kMissingSlot);
      return slot.status();
    }
    const uint32_t s = static_cast<uint32_t>(*slot);
    WillChange(s);
    SlotMeta& m = Meta(s);
    m.id = id;
    m.last_step = step;
    for (int k = 0; k < f.element_slots; ++k) {
      std::fill(State(k, s), State(k, s) + f.dim, f.initial_state);
    }
    if (f.row_slots > 0) row_state_chunks_[s >> chunk_shift_][s & chunk_mask_] = f.initial_state;
    init_row(static_cast<int64_t>(i), *slot);
    if (!index_->Insert(id, *slot)) {
      Free(s);
      std::fill(slots.begin() + i, slots.end(), kMissingSlot);
      return absl::ResourceExhaustedError("cannot grow the id index of a dynamic table");
    }
    LinkTail(s, ++last_order_);
    Bump(stored_, 1);
    Bump(admitted_, 1);
    slots[i] = *slot;
    ++ours;
  }
  return absl::OkStatus();
}

void DynamicRowStorage::ForEachRow(
    absl::FunctionRef<void(int64_t id, int64_t slot, int64_t last_step)> visit) const {
  for (uint32_t s = lru_head_; s != kNil; s = Meta(s).next) {
    visit(Meta(s).id, s, Meta(s).last_step);
  }
}

// ---- Copies and restores ------------------------------------------------------

absl::Status DynamicRowStorage::BeginCopy() {
  copy_.reset();
  auto copy = std::make_unique<Copy>();
  copy->end = next_slot_;
  copy->kept_at.reset(static_cast<uint32_t*>(std::calloc(std::max<int64_t>(next_slot_, 1), 4)));
  if (copy->kept_at == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", next_slot_ * 4, " bytes to copy ", next_slot_, " slots"));
  }
  copy->scratch.resize(format().record_floats());
  copy_ = std::move(copy);
  return absl::OkStatus();
}

void DynamicRowStorage::Keep(int64_t s) {
  Copy& c = *copy_;
  uint32_t& at = c.kept_at[s];
  if (at != 0) return;  // kept already: this is a later change
  const SlotMeta& m = Meta(s);
  if (m.prev == kFree) {  // no row at BeginCopy: nothing to keep
    at = Copy::kNoRow;
    return;
  }
  const int64_t k = static_cast<int64_t>(c.kept.size());
  const int64_t rf = format().record_floats();
  if (k % Copy::kBlockRows == 0) c.blocks.emplace_back(new float[Copy::kBlockRows * rf]);
  ReadRecord(s, c.blocks.back().get() + (k % Copy::kBlockRows) * rf);
  c.kept.push_back(Copy::Kept{m.id, m.last_step, m.order});
  at = static_cast<uint32_t>(k + 2);
}

int64_t DynamicRowStorage::CopyRows(int64_t max_rows,
                                    absl::FunctionRef<void(const CopiedRow&)> visit) {
  if (copy_ == nullptr) return 0;
  Copy& c = *copy_;
  const int64_t rf = format().record_floats();
  int64_t visited = 0;
  for (; c.cursor < c.end && visited < max_rows; ++c.cursor) {
    const int64_t s = c.cursor;
    const uint32_t at = c.kept_at[s];
    if (at == Copy::kNoRow) continue;
    if (at != 0) {
      const int64_t k = at - 2;
      const Copy::Kept& kept = c.kept[k];
      visit(CopiedRow{kept.id, kept.last_step, kept.order,
                      c.blocks[k / Copy::kBlockRows].get() + (k % Copy::kBlockRows) * rf});
      ++visited;
      continue;
    }
    const SlotMeta& m = Meta(s);
    if (m.prev == kFree) continue;
    ReadRecord(s, c.scratch.data());
    visit(CopiedRow{m.id, m.last_step, m.order, c.scratch.data()});
    ++visited;
  }
  return visited;
}

void DynamicRowStorage::EndCopy() { copy_.reset(); }

absl::Status DynamicRowStorage::Restore(int64_t id, int64_t last_step, int64_t order,
                                        const float* record) {
  if (order < 1) {
    return absl::InvalidArgumentError(absl::StrCat("id ", id, " has order ", order, " (below 1)"));
  }
  if (index_->WriterFind(id) >= 0) {
    return absl::InvalidArgumentError(absl::StrCat("id ", id, " is restored twice"));
  }
  if (options_.max_rows > 0 && stored_.load(std::memory_order_relaxed) >= options_.max_rows) {
    return absl::InvalidArgumentError(
        absl::StrCat("no room for id ", id, ": max_rows ", options_.max_rows, " rows are stored"));
  }
  ASSIGN_OR_RETURN(const int64_t slot, NewSlot());
  const uint32_t s = static_cast<uint32_t>(slot);
  SlotMeta& m = Meta(s);
  m.id = id;
  m.last_step = last_step;
  m.order = order;
  m.prev = kNil;  // linked by FinishRestore
  WriteRecord(slot, record);
  if (!index_->Insert(id, slot)) {
    Free(s);
    return absl::ResourceExhaustedError("cannot grow the id index of a dynamic table");
  }
  restored_.emplace_back(order, s);
  Bump(stored_, 1);
  Bump(admitted_, 1);
  return absl::OkStatus();
}

absl::Status DynamicRowStorage::FinishRestore() {
  std::vector<std::pair<int64_t, uint32_t>> rows = std::move(restored_);
  restored_.clear();
  if (!std::is_sorted(rows.begin(), rows.end())) SortByOrder(&rows);
  for (size_t i = 1; i < rows.size(); ++i) {
    const SlotMeta& a = Meta(rows[i - 1].second);
    const SlotMeta& b = Meta(rows[i].second);
    if (a.order == b.order) {
      return absl::InvalidArgumentError(
          absl::StrCat("ids ", a.id, " and ", b.id, " have the same order ", a.order));
    }
    if (b.last_step < a.last_step) {
      return absl::InvalidArgumentError(absl::StrCat(
          "id ", b.id, " comes after id ", a.id, " in the update order (order ", b.order, " > ",
          a.order, ") but was updated at step ", b.last_step, " < ", a.last_step));
    }
  }
  for (const auto& [order, s] : rows) LinkTail(s, order);
  if (!rows.empty()) {  // the storage was empty: these are the last
    last_order_ = rows.back().first;
    last_step_ = Meta(rows.back().second).last_step;
  }
  return absl::OkStatus();
}

std::string DynamicRowStorage::SaveAdmission() const {
  return sketch_ == nullptr ? std::string() : sketch_->Save();
}

absl::Status DynamicRowStorage::LoadAdmission(absl::string_view saved) {
  if (sketch_ == nullptr) {
    if (saved.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError("admission counts given to a table without admit_after");
  }
  if (!sketch_->Load(std::string_view(saved.data(), saved.size()))) {
    return absl::InvalidArgumentError(absl::StrCat("admission counts of ", saved.size(),
                                                   " bytes do not fit a sketch of ",
                                                   sketch_->bytes(), " counters"));
  }
  return absl::OkStatus();
}

}  // namespace embedserve::internal
