#include "core/internal/id_index.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>
#include <memory>

#include "core/internal/prefetch.h"

namespace embedserve::internal {
namespace {

constexpr int64_t kHugePageBytes = int64_t{2} << 20;
constexpr int64_t kMinCapacity = 16;
// Ids this far down a request get their home line prefetched.
constexpr size_t kPrefetchAhead = 16;

// murmur3's 64-bit finaliser: a bijection with full avalanche.
inline uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

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
  int64_t capacity = kMinCapacity;
  while (static_cast<double>(std::max<int64_t>(expected, 1)) >
         kRebuildLoad * static_cast<double>(capacity)) {
    capacity *= 2;
  }
  Array* a = NewArray(capacity);
  if (a == nullptr) return nullptr;
  std::unique_ptr<IdIndex> index(new IdIndex(seed));
  index->array_.store(a, std::memory_order_release);
  index->capacity_.store(capacity, std::memory_order_relaxed);
  index->bytes_.store(a->bytes, std::memory_order_relaxed);
  return index;
}

IdIndex::~IdIndex() {
  FreeArray(array_.load(std::memory_order_relaxed));
  if (retired_ != nullptr) FreeArray(retired_);
}

IdIndex::Array* IdIndex::NewArray(int64_t capacity) {
  int64_t bytes = capacity * static_cast<int64_t>(sizeof(Bucket));
  const bool huge = bytes >= kHugePageBytes;
  if (huge) bytes = (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  void* p = std::aligned_alloc(huge ? kHugePageBytes : 64, static_cast<size_t>(bytes));
  if (p == nullptr) return nullptr;
  if (huge) ::madvise(p, static_cast<size_t>(bytes), MADV_HUGEPAGE);  // best effort
  Bucket* b = static_cast<Bucket*>(p);
  for (int64_t i = 0; i < capacity; ++i) new (&b[i]) Bucket{{0}, {kEmpty}};
  Array* a = new Array;
  a->mask = static_cast<uint64_t>(capacity - 1);
  a->buckets = b;
  a->bytes = bytes;
  return a;
}

void IdIndex::FreeArray(Array* a) {
  std::free(a->buckets);
  delete a;
}

uint64_t IdIndex::Hash(int64_t id) const { return Mix(static_cast<uint64_t>(id) ^ seed_); }

int64_t IdIndex::Probe(const Array* a, uint64_t h, int64_t id, uint64_t* position) {
  uint64_t i = h & a->mask;
  for (;;) {
    const Bucket& b = a->buckets[i];
    // The value first: a live value was stored (release) after its id.
    const uint64_t v = b.value.load(std::memory_order_acquire);
    if (v == kEmpty) return kMissing;
    if (v != kErased && b.id.load(std::memory_order_relaxed) == id) {
      *position = i;
      return static_cast<int64_t>(v - 2);
    }
    i = (i + 1) & a->mask;
  }
}

template <bool kPositions>
void IdIndex::FindIn(const Array* a, absl::Span<const int64_t> ids, int64_t* out,
                     int64_t* positions, absl::FunctionRef<void(int64_t slot)>* found) const {
  const int64_t* const id = ids.data();
  const size_t n = ids.size();
  const Bucket* const buckets = a->buckets;
  const uint64_t mask = a->mask;
  for (size_t i = 0; i < std::min(n, kPrefetchAhead); ++i) {
    PrefetchT0(&buckets[Hash(id[i]) & mask]);
  }
  uint64_t position = 0;
  for (size_t i = 0; i < n; ++i) {
    if (i + kPrefetchAhead < n) PrefetchT0(&buckets[Hash(id[i + kPrefetchAhead]) & mask]);
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
  // Same array: the bucket still holds the id; is its value still the slot?
  const Bucket* const buckets = a->buckets;
  for (size_t i = 0; i < n; ++i) {
    if (slots[i] < 0) continue;
    const uint64_t v = buckets[positions[i]].value.load(std::memory_order_acquire);
    if (v != static_cast<uint64_t>(slots[i]) + 2) changed->push_back(static_cast<int64_t>(i));
  }
}

IdIndex::Reader::Reader(const IdIndex& index)
    : index_(index), guard_(index.epoch_), array_(index.array_.load(std::memory_order_acquire)) {}

void IdIndex::Reader::Prefetch(int64_t id, bool next_line) const {
  const uint64_t h = index_.Hash(id) & array_->mask;
  PrefetchT0(&array_->buckets[h]);
  if (next_line) PrefetchT0(&array_->buckets[(h + 4) & array_->mask]);
}

int64_t IdIndex::Reader::Find(int64_t id, int64_t* position) const {
  uint64_t p = 0;
  const int64_t slot = Probe(array_, index_.Hash(id), id, &p);
  *position = static_cast<int64_t>(p);
  return slot;
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
  const uint64_t h = Hash(id) & a->mask;
  PrefetchT0(&a->buckets[h]);
  // A new id probes on to an empty bucket (3.6 buckets on average at 60%
  // load): from the line's second half it often reads the next line.
  if ((h & 2) != 0) PrefetchT0(&a->buckets[(h + 4) & a->mask]);
}

bool IdIndex::Insert(int64_t id, int64_t slot) {
  ReclaimRetired();
  Array* a = array_.load(std::memory_order_relaxed);
  if (static_cast<double>(used_ + 1) > kMaxLoad * static_cast<double>(a->mask + 1)) {
    if (!Rebuild()) return false;
    a = array_.load(std::memory_order_relaxed);
  }
  const uint64_t value = static_cast<uint64_t>(slot) + 2;
  for (uint64_t i = Hash(id) & a->mask;; i = (i + 1) & a->mask) {
    Bucket& b = a->buckets[i];
    const uint64_t v = b.value.load(std::memory_order_relaxed);
    if (v == kEmpty) {
      b.id.store(id, std::memory_order_relaxed);
      b.value.store(value, std::memory_order_release);
      ++used_;
      break;
    }
    // Its own erased bucket: the id is unchanged, so readers stay right.
    if (v == kErased && b.id.load(std::memory_order_relaxed) == id) {
      b.value.store(value, std::memory_order_release);
      break;
    }
  }
  Bump(live_, 1);
  return true;
}

bool IdIndex::Erase(int64_t id) {
  Array* a = array_.load(std::memory_order_relaxed);
  for (uint64_t i = Hash(id) & a->mask;; i = (i + 1) & a->mask) {
    Bucket& b = a->buckets[i];
    const uint64_t v = b.value.load(std::memory_order_relaxed);
    if (v == kEmpty) return false;
    if (v != kErased && b.id.load(std::memory_order_relaxed) == id) {
      b.value.store(kErased, std::memory_order_release);
      Bump(live_, -1);
      return true;
    }
  }
}

bool IdIndex::Rebuild() {
  Array* old = array_.load(std::memory_order_relaxed);
  const int64_t live = live_.load(std::memory_order_relaxed);
  int64_t capacity = static_cast<int64_t>(old->mask + 1);
  while (static_cast<double>(live + 1) > kRebuildLoad * static_cast<double>(capacity)) {
    capacity *= 2;
  }
  Array* a = NewArray(capacity);
  if (a == nullptr) return false;
  a->generation = old->generation + 1;
  // In bucket order: the new layout is a function of the old one.
  for (uint64_t j = 0; j <= old->mask; ++j) {
    const Bucket& from = old->buckets[j];
    const uint64_t v = from.value.load(std::memory_order_relaxed);
    if (v == kEmpty || v == kErased) continue;
    const int64_t id = from.id.load(std::memory_order_relaxed);
    uint64_t i = Hash(id) & a->mask;
    while (a->buckets[i].value.load(std::memory_order_relaxed) != kEmpty) i = (i + 1) & a->mask;
    a->buckets[i].id.store(id, std::memory_order_relaxed);
    a->buckets[i].value.store(v, std::memory_order_relaxed);
  }
  // Publish (the seq_cst store orders it before the epoch flip in Retire).
  array_.store(a, std::memory_order_seq_cst);
  used_ = live;
  if (retired_ != nullptr) {
    // Two rebuilds within one reader's Find: wait for the older readers.
    epoch_.WaitDrained(retired_parity_);
    FreeArray(retired_);
    retired_ = nullptr;
  }
  retired_parity_ = epoch_.Retire();
  retired_ = old;
  capacity_.store(capacity, std::memory_order_relaxed);
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
