#ifndef EMBEDSERVE_CORE_INTERNAL_ID_INDEX_H_
#define EMBEDSERVE_CORE_INTERNAL_ID_INDEX_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/types/span.h"
#include "core/internal/prefetch.h"
#include "core/internal/reader_epoch.h"

namespace embedserve::internal {

// A collision-free hash index from any int64 id to a slot, read lock-free by
// any number of threads while one writer inserts and erases.
//
// Layout: open addressing over a power-of-two array of 64-byte lines, each
// a bucket of five entries {id, slot + 2} (a 32-bit value: 0 empty, 1
// erased) and an overflow flag. The home line is the low bits of a 64-bit
// mixer of (id, seed) (murmur3's finaliser, a bijection: any id, negative
// and INT64_MIN / INT64_MAX included, is a key). An id goes to the first
// free entry of its home line, or, when that line is full, of the next line
// with one, and every full line it passes gets its overflow flag. Entries of
// a line fill in order and never become empty again within an array, so a
// probe stops at the first empty entry, or at the end of a full line
// without the flag: a lookup, found or not, reads its home line and only
// then a next line when that home line overflowed (about 4% of lines at the
// load of a freshly rebuilt array, ~10-20% at the rebuild threshold).
// Why one line: an id that is not stored (an unseen id, a new id of a
// push) is the common case of a recommender's lookups, and with 16-byte
// buckets and linear probing a miss read ~4-8.5 buckets, often two or three
// lines, each a DRAM access (and a TLB walk) that a prefetch had to cover;
// 32-bit values fit five entries a line where 16-byte buckets fit four, so
// the same bytes hold more entries. Why not a Swiss table with SIMD tag
// groups: it reads a control line and then a slot line (two dependent
// misses a lookup), and its 1-byte tags need the full key check anyway;
// here the ids are compared in the line itself, and each entry is two
// independent atomics that a reader reads without a lock. Batched lookups
// (Find of a span) prefetch the home lines of ids further down the
// request, so a request's misses overlap.
//
// Beside the lines, a filter of the ids inserted into the array (a blocked
// Bloom filter: one 64-bit word per two lines, 4 bits an id, about 13 bits
// an id at the load of a fresh array, so ~1% false positives; erased ids
// keep their bits until the next rebuild). Why: a random line of a large
// array costs a TLB walk that a prefetch does not hide (the prefetch waits
// at retirement for its translation, and the work behind it, e.g. an
// unseen id's initial row, stalls behind it; measured on this project's
// 2-core EPYC VM, where random prefetched lines of up to 32 MiB cost
// nothing over the work beside them and of 256 MiB ~80 ns each). The
// filter is 1/16 of the lines' bytes (16 MiB at 10 M ids): a batched
// lookup reads an id's filter word first and probes the lines only if the
// filter holds the id, so an id that is not stored costs no line.
//
// Concurrency (one writer, lock-free readers):
//  - An erase only sets the entry's value to "erased". An insert takes the
//    first erased or empty entry on its id's path: it stores the id
//    (release), then the value (release). So an entry's id may change
//    within an array, but only while its value is "erased". A reader loads
//    the value (acquire), the id, and the value again after an acquire
//    fence; it takes the pair only if both values agree. Seeing a new id
//    means seeing the erase before it, so a value that agrees with an old
//    one is the new id's own (the same slot, given to the new id: its
//    mapping). A reader never pairs one id with another id's slot.
//    Why reuse erased entries: a table at max_rows erases an id for each
//    new one, and with entries never reused every insert used up an empty
//    entry, so the index was rebuilt (a new array written, its pages
//    zeroed by the kernel) every ~0.27 x capacity inserts; with reuse an
//    insert takes an empty entry only when its path holds no erased one,
//    and rebuilds come ~2x less often (see Insert).
//  - A line's overflow flag is set (release) before the id that passed it
//    is published further on, and never cleared within an array; a reader
//    that misses the flag of an insert in progress answers "absent", the
//    answer from before that insert.
//  - An id's filter bits are set before the id is published, and cleared
//    only by a rebuild (a new array); a reader that reads them before an
//    insert in progress sets them answers "absent", the answer from before.
//  - Growth and the removal of erased entries build a new array and swap an
//    atomic pointer; the old array is freed only once every reader that could
//    have loaded it left (ReaderEpoch), so readers never touch freed memory.
//  - A Find that runs concurrently with an Insert or Erase of the same id
//    returns the slot before or after; otherwise its answer is the current
//    mapping. A stale answer (the id was erased meanwhile and its slot given
//    to another id) is what the caller's seqlock protocol checks for: see
//    DynamicRowStorage::Recheck.
//
// Determinism: positions depend only on the seed and the order of Insert /
// Erase calls, never on timing or the CPU.
class IdIndex {
 public:
  static constexpr int64_t kMissing = -1;
  // Slots are below this (values are 32-bit).
  static constexpr int64_t kSlotLimit = int64_t{1} << 31;
  // Most live + erased entries before the array is rebuilt.
  static constexpr double kMaxLoad = 0.75;
  // A rebuild doubles the array until live ids fill at most this much.
  static constexpr double kRebuildLoad = 0.625;
  // Most ids placed in an array (live, erased and reused entries' ids: the
  // filter's bits) per entry before it is rebuilt: about 6.4 filter bits an
  // id, ~4-5% false positives at worst (1-2% in a fresh array).
  static constexpr double kMaxFiltered = 1.0;

  // An index sized so that `expected` ids fit without a rebuild for growth;
  // nullptr if the memory cannot be had.
  static std::unique_ptr<IdIndex> Create(uint64_t seed, int64_t expected);
  ~IdIndex();
  IdIndex(const IdIndex&) = delete;
  IdIndex& operator=(const IdIndex&) = delete;

  // ---- Readers (any thread).
  // The slot of each id, or kMissing. REQUIRES: slots.size() == ids.size().
  void Find(absl::Span<const int64_t> ids, absl::Span<int64_t> slots) const;
  int64_t Find(int64_t id) const;
  // Find that also notes where each id was found (`positions`, for ids
  // found) and which array (`*generation`), for Recheck.
  // REQUIRES: slots.size() == positions.size() == ids.size().
  // `found(slot)` is called as each slot is found (e.g. to prefetch its
  // row, so that row misses overlap the probes of the next ids).
  void Find(absl::Span<const int64_t> ids, absl::Span<int64_t> slots,
            absl::Span<int64_t> positions, uint64_t* generation,
            absl::FunctionRef<void(int64_t slot)> found) const;
  // A Find driven id by id by the caller, for one request that does other
  // work while the lines of later ids load (DynamicRowStorage::Lookup):
  // defined below.
  class Reader;
  // Appends to `changed` the positions i with slots[i] >= 0 whose id no
  // longer maps to slots[i] (arguments as that Find left them). Two loads
  // of the id's entry (value, then id) while the array is the same; a full
  // Find after a rebuild.
  void Recheck(absl::Span<const int64_t> ids, absl::Span<const int64_t> slots,
               absl::Span<const int64_t> positions, uint64_t generation,
               std::vector<int64_t>* changed) const;

  // ---- The writer (one at a time, serialised by the caller).
  // Find without the reader epoch (the writer is the only one who frees).
  int64_t WriterFind(int64_t id) const;
  // REQUIRES: id absent; 0 <= slot < kSlotLimit. False (nothing changed) when a
  // rebuild needed memory that cannot be had.
  bool Insert(int64_t id, int64_t slot);
  // True if the id was present.
  bool Erase(int64_t id);
  // Prefetches the line a WriterFind, Insert or Erase of `id` reads first
  // (and the filter word an Insert sets), so that a batch of writes
  // overlaps its misses.
  void WriterPrefetch(int64_t id) const;
  // Frees old arrays that no reader holds any more. Cheap; called by every
  // Insert.
  void ReclaimRetired();

  // ---- Figures (any thread).
  int64_t size() const { return live_.load(std::memory_order_relaxed); }
  // Entries (five a line).
  int64_t capacity() const { return capacity_.load(std::memory_order_relaxed); }
  // The line array's bytes (and any old arrays not yet freed).
  int64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }
  int64_t rebuilds() const { return rebuilds_.load(std::memory_order_relaxed); }

  // The line an id probes first, before the mask (tests).
  uint64_t Hash(int64_t id) const { return Mix(static_cast<uint64_t>(id) ^ seed_); }

 private:
  static constexpr int kEntries = 5;  // a line's
  static constexpr uint32_t kEmpty = 0, kErased = 1, kOverflow = 1;
  struct alignas(64) Line {
    std::atomic<uint32_t> flags;              // kOverflow
    std::atomic<uint32_t> value[kEntries];    // kEmpty, kErased, else slot + 2
    std::atomic<int64_t> id[kEntries];
  };
  static_assert(sizeof(Line) == 64);
  struct Array {
    uint64_t mask = 0;        // lines - 1
    uint64_t generation = 0;  // 0, 1, 2, ... one per rebuild
    Line* lines = nullptr;
    std::atomic<uint64_t>* filter = nullptr;  // one word per two lines
    uint64_t filter_shift = 0;                // a hash's word: the top bits
    int64_t bytes = 0;                        // lines and filter
  };
  // An entry's position for Recheck: line * 8 + entry.
  static constexpr int kEntryBits = 3;
  static constexpr uint64_t kEntryMask = (uint64_t{1} << kEntryBits) - 1;

  // murmur3's 64-bit finaliser: a bijection with full avalanche.
  static uint64_t Mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
  }
  explicit IdIndex(uint64_t seed);
  static Array* NewArray(int64_t lines);  // nullptr without memory
  static void FreeArray(Array* a);
  // Rebuilds into an array where live_ + 1 ids fit under kRebuildLoad;
  // false (nothing changed) without memory.
  bool Rebuild();
  // The filter word of hash h and the bits an id of that hash sets in it.
  static uint64_t FilterWord(const Array* a, uint64_t h);
  static uint64_t FilterBits(uint64_t h);
  // Probe for the reader / writer. `a` stays valid for the call. Sets
  // *position to the entry of a found id.
  static int64_t Probe(const Array* a, uint64_t h, int64_t id, uint64_t* position) {
    uint64_t l = h & a->mask;
    for (;;) {
      const Line& line = a->lines[l];
      for (int k = 0; k < kEntries; ++k) {
        // The value first: a live value was stored (release) after its id.
        const uint32_t v = line.value[k].load(std::memory_order_acquire);
        // Entries fill in order: none of this line's ids is further on, and
        // a line with room never sent an id to the next.
        if (v == kEmpty) return kMissing;
        if (v != kErased && line.id[k].load(std::memory_order_relaxed) == id) {
          // The id may be newer than v (the entry erased and taken by this
          // id meanwhile): v counts only if the value is still v.
          std::atomic_thread_fence(std::memory_order_acquire);
          if (line.value[k].load(std::memory_order_relaxed) != v) {
            --k;  // read the entry again
            continue;
          }
          *position = l << kEntryBits | static_cast<uint64_t>(k);
          return static_cast<int64_t>(v - 2);
        }
      }
      if ((line.flags.load(std::memory_order_acquire) & kOverflow) == 0) return kMissing;
      l = (l + 1) & a->mask;
    }
  }
  // Whether the entry at `position` maps `id` to `slot` (a reader's
  // recheck: the value, then the id; a new id's store is ordered after the
  // erase that freed the entry, so an unchanged value with an unchanged id
  // means no erase was seen).
  static bool Holds(const Array* a, uint64_t position, int64_t id, int64_t slot) {
    const Line& line = a->lines[position >> kEntryBits];
    const uint64_t k = position & kEntryMask;
    return line.value[k].load(std::memory_order_acquire) == static_cast<uint64_t>(slot) + 2 &&
           line.id[k].load(std::memory_order_relaxed) == id;
  }
  // Places `id` with `value` in `a`: the first erased or empty entry on
  // its path, flagging the full lines it passes (writer, or a rebuild's
  // private array). Sets its filter bits first. Returns true if it took an
  // empty entry.
  static bool Place(Array* a, uint64_t h, int64_t id, uint32_t value, std::memory_order order);
  template <bool kPositions>
  void FindIn(const Array* a, absl::Span<const int64_t> ids, int64_t* out, int64_t* positions,
              absl::FunctionRef<void(int64_t slot)>* found) const;

  const uint64_t seed_;
  std::atomic<Array*> array_;
  ReaderEpoch epoch_;
  // Retired arrays and the parity of their possible readers (writer only).
  Array* retired_ = nullptr;
  int retired_parity_ = 0;
  int64_t used_ = 0;  // live + erased entries (writer only)
  int64_t filtered_ = 0;  // ids placed in the current array: its filter's (writer only)
  std::atomic<int64_t> live_{0};
  std::atomic<int64_t> capacity_{0};
  std::atomic<int64_t> bytes_{0};
  std::atomic<int64_t> rebuilds_{0};
};

// Holds the reader epoch and the index's current array for its life: every
// Find through it probes that one array, so its positions and generation()
// go to IdIndex::Recheck as those of the batched Find. Keep it short-lived
// (one request): a writer's second rebuild waits for it to end.
class IdIndex::Reader {
 public:
  explicit Reader(const IdIndex& index);
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  uint64_t generation() const { return array_->generation; }
  // The slot of `id`, or kMissing; sets *position to its entry when found.
  int64_t Find(int64_t id, int64_t* position) const { return Find(Hash(id), id, position); }
  // Find of each of `ids` in order, each home line prefetched kEachAhead ids
  // before it is probed: calls found(i, slot, position) for ids[i] (slot
  // kMissing when absent; position as Find sets it, when found). Inline
  // and in one loop on purpose: a prefetch of a random line waits for its
  // TLB walk before it retires, and only the prefetches that fit in the
  // CPU's reorder window with it overlap their walks, so the fewer
  // instructions an id takes, the more of its lines load at once.
  static constexpr int64_t kEachAhead = 16;
  template <typename Found>
  void FindEach(absl::Span<const int64_t> ids, Found&& found) const;
  // The same in three steps, for a pipeline over a request's ids: h =
  // Hash(id); PrefetchFilter(h) a few ids ahead; MayHold(h) (false: the id
  // is absent, no line needs reading) and PrefetchLine(h) a few ids ahead;
  // Find(h, id, position).
  uint64_t Hash(int64_t id) const { return index_.Hash(id); }
  void PrefetchFilter(uint64_t h) const;
  bool MayHold(uint64_t h) const;
  void PrefetchLine(uint64_t h) const { PrefetchT0(&array_->lines[h & array_->mask]); }
  int64_t Find(uint64_t h, int64_t id, int64_t* position) const {
    uint64_t p = 0;
    const int64_t slot = Probe(array_, h, id, &p);
    *position = static_cast<int64_t>(p);
    return slot;
  }
  // Recheck of ids (what IdIndex::Recheck does), in two parts, for a
  // caller that checks each id as it finds it. StillHolds, after the
  // caller's seqlock snapshot of `slot`: whether the entry at `position`
  // (as Find set it) still maps `id` to `slot` (its line was just probed,
  // so this costs no memory access of its own). Current, once, after the
  // last snapshot: whether this reader's array is still the index's; false
  // after a rebuild even when mappings are unchanged, and the caller then
  // reads those rows again by id (a writer that rebuilt erases in the new
  // array only; a rebuild published before an entry check is seen by the
  // array check after it).
  bool StillHolds(int64_t position, int64_t id, int64_t slot) const {
    return Holds(array_, static_cast<uint64_t>(position), id, slot);
  }
  bool Current() const { return index_.array_.load(std::memory_order_acquire) == array_; }

 private:
  const IdIndex& index_;
  const ReaderEpochGuard guard_;
  const Array* const array_;
};

template <typename Found>
void IdIndex::Reader::FindEach(absl::Span<const int64_t> ids, Found&& found) const {
  const int64_t* const id = ids.data();
  const int64_t n = static_cast<int64_t>(ids.size());
  const Line* const lines = array_->lines;
  const uint64_t mask = array_->mask;
  static_assert((kEachAhead & (kEachAhead - 1)) == 0);
  uint64_t hash[kEachAhead];  // ring: the hashes of ids i .. i + kEachAhead - 1
  for (int64_t j = 0; j < std::min(n, kEachAhead); ++j) {
    hash[j] = Hash(id[j]);
    PrefetchT0(&lines[hash[j] & mask]);
  }
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r = i & (kEachAhead - 1);
    uint64_t position = 0;
    const int64_t slot = Probe(array_, hash[r], id[i], &position);
    if (i + kEachAhead < n) {
      hash[r] = Hash(id[i + kEachAhead]);
      PrefetchT0(&lines[hash[r] & mask]);
    }
    found(i, slot, position);
  }
}

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_ID_INDEX_H_
