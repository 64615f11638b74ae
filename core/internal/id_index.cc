#include "core/internal/id_index.h"

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>
#include <memory>

#include "core/internal/aligned_memory.h"
#include "core/internal/prefetch.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kMinLines = 4;
// Ids this far down a request get their home line prefetched.
constexpr size_t kPrefetchAhead = 16;

// Prefetches go into L1 (PrefetchT0): a batched Find reads the line again a
// few ids later, and Recheck once more.

// A counter that only the writer changes: a plain load and store (readers
// load it relaxed), not a locked read-modify-write.
inline void Bump(std::atomic<int64_t>& counter, int64_t by) {
  counter.store(counter.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

}  // namespace

IdIndex::IdIndex(uint64_t seed) : seed_(Mix(seed ^ 0x5bd1e9955bd1e995ULL)) {}

std::unique_ptr<IdIndex> IdIndex::Create(uint64_t seed, int64_t expected) {
  int64_t lines = kMinLines;
  while (static_cast<double>(std::max<int64_t>(expected, 1)) >
         kRebuildLoad * static_cast<double>(lines * kEntries)) {
    lines *= 2;
  }
  Array* a = NewArray(lines);
  if (a == nullptr) return nullptr;
  std::unique_ptr<IdIndex> index(new IdIndex(seed));
  index->array_.store(a, std::memory_order_release);
  index->capacity_.store(lines * kEntries, std::memory_order_relaxed);
  index->bytes_.store(a->bytes, std::memory_order_relaxed);
  return index;
}

IdIndex::~IdIndex() {
  FreeArray(array_.load(std::memory_order_relaxed));
  if (retired_ != nullptr) FreeArray(retired_);
}

IdIndex::Array* IdIndex::NewArray(int64_t lines) {
  // The filter's words after the lines, in one allocation (lines >= 4).
  const int64_t words = lines / 2;
  const int64_t line_bytes = lines * static_cast<int64_t>(sizeof(Line));
  const int64_t wanted = line_bytes + words * 8;
  const int64_t bytes = AlignedAllocationBytes(wanted);
  void* p = AllocateAligned(wanted);
  if (p == nullptr) return nullptr;
  auto* filter = reinterpret_cast<std::atomic<uint64_t>*>(static_cast<char*>(p) + line_bytes);
  for (int64_t i = 0; i < words; ++i) new (&filter[i]) std::atomic<uint64_t>(0);
  Line* l = static_cast<Line*>(p);
  for (int64_t i = 0; i < lines; ++i) {
    new (&l[i]) Line;
    l[i].flags.store(0, std::memory_order_relaxed);
    for (int k = 0; k < kEntries; ++k) {
      l[i].value[k].store(kEmpty, std::memory_order_relaxed);
      l[i].id[k].store(0, std::memory_order_relaxed);
    }
  }
  Array* a = new Array;
  a->mask = static_cast<uint64_t>(lines - 1);
  a->lines = l;
  a->filter = filter;
  a->filter_shift = static_cast<uint64_t>(64 - std::countr_zero(static_cast<uint64_t>(words)));
  a->bytes = bytes;
  return a;
}

void IdIndex::FreeArray(Array* a) {
  std::free(a->lines);
  delete a;
}

// The filter's word and bits come from a second mix of the hash: the word
// from its top bits, the four bit numbers from its low 24 (independent of
// the line, which is the hash's low bits).
uint64_t IdIndex::FilterWord(const Array* a, uint64_t h) {
  return Mix(h ^ 0x9e3779b97f4a7c15ULL) >> a->filter_shift;
}

uint64_t IdIndex::FilterBits(uint64_t h) {
  const uint64_t g = Mix(h ^ 0x9e3779b97f4a7c15ULL);
  return uint64_t{1} << (g & 63) | uint64_t{1} << (g >> 6 & 63) | uint64_t{1} << (g >> 12 & 63) |
         uint64_t{1} << (g >> 18 & 63);
}

bool IdIndex::Place(Array* a, uint64_t h, int64_t id, uint32_t value, std::memory_order order) {
  // Before the id is published (by the release store of its value).
  std::atomic<uint64_t>& word = a->filter[FilterWord(a, h)];
  word.store(word.load(std::memory_order_relaxed) | FilterBits(h), std::memory_order_relaxed);
  for (uint64_t l = h & a->mask;; l = (l + 1) & a->mask) {
    Line& line = a->lines[l];
    for (int k = 0; k < kEntries; ++k) {
      const uint32_t v = line.value[k].load(std::memory_order_relaxed);
      if (v == kEmpty || v == kErased) {
        // The id before the value, and after the erase that freed the
        // entry (release: a reader that sees the new id sees that erase).
        if (line.id[k].load(std::memory_order_relaxed) != id) {
          line.id[k].store(id, order == std::memory_order_relaxed ? order
                                                                  : std::memory_order_release);
        }
        line.value[k].store(value, order);
        return v == kEmpty;
      }
    }
    // Full: the id goes further on, so probes for ids of this line must too.
    const uint32_t f = line.flags.load(std::memory_order_relaxed);
    if ((f & kOverflow) == 0) line.flags.store(f | kOverflow, order);
  }
}

template <bool kPositions>
void IdIndex::FindIn(const Array* a, absl::Span<const int64_t> ids, int64_t* out,
                     int64_t* positions, absl::FunctionRef<void(int64_t slot)>* found) const {
  const int64_t* const id = ids.data();
  const size_t n = ids.size();
  const Line* const lines = a->lines;
  const uint64_t mask = a->mask;
  for (size_t i = 0; i < std::min(n, kPrefetchAhead); ++i) {
    PrefetchT0(&lines[Hash(id[i]) & mask]);
  }
  uint64_t position = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) PrefetchT0(&lines[Hash(id[i + kPrefetchAhead]) & mask]);
    out[i] = Probe(a, Hash(id[i]), id[i], &position);
    if constexpr (kPositions) {
      positions[i] = static_cast<int64_t>(position);
      if (out[i] >= 0) (*found)(out[i]);
    }
  }
}

void IdIndex::Find(absl::Span<const int64_t> ids, absl::Span<int64_t> slots) const {
  ReaderEpochGuard guard(epoch_);
  FindIn<false>(array_.load(std::memory_order_acquire), ids, slots.data(), nullptr, nullptr);
}

void IdIndex::Find(absl::Span<const int64_t> ids, absl::Span<int64_t> slots,
                   absl::Span<int64_t> positions, uint64_t* generation,
                   absl::FunctionRef<void(int64_t slot)> found) const {
  ReaderEpochGuard guard(epoch_);
  const Array* a = array_.load(std::memory_order_acquire);
  *generation = a->generation;
  FindIn<true>(a, ids, slots.data(), positions.data(), &found);
}

void IdIndex::Recheck(absl::Span<const int64_t> ids, absl::Span<const int64_t> slots,
                      absl::Span<const int64_t> positions, uint64_t generation,
                      std::vector<int64_t>* changed) const {
  ReaderEpochGuard guard(epoch_);
  const Array* a = array_.load(std::memory_order_acquire);
  const size_t n = ids.size();
  if (a->generation != generation) {
    thread_local std::vector<int64_t> now;
    now.resize(n);
    FindIn<false>(a, ids, now.data(), nullptr, nullptr);
    for (size_t i = 0; i < n; ++i) {
      if (slots[i] >= 0 && now[i] != slots[i]) changed->push_back(static_cast<int64_t>(i));
    }
    return;
  }
  // Same array: does the entry still map the id to the slot?
  for (size_t i = 0; i < n; ++i) {
    if (slots[i] >= 0 && !Holds(a, static_cast<uint64_t>(positions[i]), ids[i], slots[i])) {
      changed->push_back(static_cast<int64_t>(i));
    }
  }
}

IdIndex::Reader::Reader(const IdIndex& index)
    : index_(index), guard_(index.epoch_), array_(index.array_.load(std::memory_order_acquire)) {}

void IdIndex::Reader::PrefetchFilter(uint64_t h) const {
  PrefetchT0(&array_->filter[FilterWord(array_, h)]);
}

bool IdIndex::Reader::MayHold(uint64_t h) const {
  const uint64_t bits = FilterBits(h);
  return (array_->filter[FilterWord(array_, h)].load(std::memory_order_relaxed) & bits) == bits;
}

int64_t IdIndex::Find(int64_t id) const {
  ReaderEpochGuard guard(epoch_);
  uint64_t position;
  return Probe(array_.load(std::memory_order_acquire), Hash(id), id, &position);
}

int64_t IdIndex::WriterFind(int64_t id) const {
  uint64_t position;
  return Probe(array_.load(std::memory_order_relaxed), Hash(id), id, &position);
}

void IdIndex::WriterPrefetch(int64_t id) const {
  const Array* a = array_.load(std::memory_order_relaxed);
  const uint64_t h = Hash(id);
  PrefetchT0(&a->lines[h & a->mask]);
  // An Insert writes the id's filter word too: a line of its own.
  PrefetchForWrite(&a->filter[FilterWord(a, h)]);
}

bool IdIndex::Insert(int64_t id, int64_t slot) {
  ReclaimRetired();
  Array* a = array_.load(std::memory_order_relaxed);
  const double entries = static_cast<double>((a->mask + 1) * kEntries);
  if (static_cast<double>(used_ + 1) > kMaxLoad * entries ||
      static_cast<double>(filtered_ + 1) > kMaxFiltered * entries) {
    if (!Rebuild()) return false;
    a = array_.load(std::memory_order_relaxed);
  }
  if (Place(a, Hash(id), id, static_cast<uint32_t>(slot + 2), std::memory_order_release)) ++used_;
  ++filtered_;
  Bump(live_, 1);
  return true;
}

bool IdIndex::Erase(int64_t id) {
  Array* a = array_.load(std::memory_order_relaxed);
  uint64_t p = 0;
  if (Probe(a, Hash(id), id, &p) == kMissing) return false;
  a->lines[p >> kEntryBits].value[p & kEntryMask].store(kErased, std::memory_order_release);
  Bump(live_, -1);
  return true;
}

bool IdIndex::Rebuild() {
  Array* old = array_.load(std::memory_order_relaxed);
  const int64_t live = live_.load(std::memory_order_relaxed);
  int64_t lines = static_cast<int64_t>(old->mask + 1);
  while (static_cast<double>(live + 1) > kRebuildLoad * static_cast<double>(lines * kEntries)) {
    lines *= 2;
  }
  Array* a = NewArray(lines);
  if (a == nullptr) return false;
  a->generation = old->generation + 1;
  // In entry order: the new layout is a function of the old one. Each id's
  // new line and filter word are prefetched kAhead ids before it is placed
  // (first in, first placed: the order, and so the layout, is unchanged),
  // so that the random writes of a rebuild overlap instead of each waiting
  // for its line.
  constexpr int64_t kAhead = 16;
  struct Pending {
    int64_t id;
    uint64_t h;
    uint32_t value;
  };
  Pending pending[kAhead];
  int64_t queued = 0, placed = 0;
  auto place_next = [&] {
    const Pending& p = pending[placed++ % kAhead];
    Place(a, p.h, p.id, p.value, std::memory_order_relaxed);
  };
  for (uint64_t j = 0; j <= old->mask; ++j) {
    const Line& from = old->lines[j];
    for (int k = 0; k < kEntries; ++k) {
      const uint32_t v = from.value[k].load(std::memory_order_relaxed);
      if (v == kEmpty) break;
      if (v == kErased) continue;
      const int64_t id = from.id[k].load(std::memory_order_relaxed);
      if (queued - placed == kAhead) place_next();
      const uint64_t h = Hash(id);
      PrefetchForWrite(&a->lines[h & a->mask]);
      PrefetchForWrite(&a->filter[FilterWord(a, h)]);
      pending[queued++ % kAhead] = Pending{id, h, v};
    }
  }
  while (placed < queued) place_next();
  // Publish (the seq_cst store orders it before the epoch flip in Retire).
  array_.store(a, std::memory_order_seq_cst);
  used_ = live;
  filtered_ = live;
  if (retired_ != nullptr) {
    // Two rebuilds within one reader's Find: wait for the older readers.
    epoch_.WaitDrained(retired_parity_);
    FreeArray(retired_);
    retired_ = nullptr;
  }
  retired_parity_ = epoch_.Retire();
  retired_ = old;
  capacity_.store(lines * kEntries, std::memory_order_relaxed);
  bytes_.store(a->bytes + old->bytes, std::memory_order_relaxed);
  Bump(rebuilds_, 1);
  return true;
}

void IdIndex::ReclaimRetired() {
  if (retired_ == nullptr || !epoch_.Drained(retired_parity_)) return;
  FreeArray(retired_);
  retired_ = nullptr;
  bytes_.store(array_.load(std::memory_order_relaxed)->bytes, std::memory_order_relaxed);
}

}  // namespace embedserve::internal
