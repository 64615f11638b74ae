#ifndef EMBEDSERVE_CORE_INTERNAL_DYNAMIC_ROW_STORAGE_H_
#define EMBEDSERVE_CORE_INTERNAL_DYNAMIC_ROW_STORAGE_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "core/gather.h"
#include "core/internal/admission_sketch.h"
#include "core/internal/id_index.h"
#include "core/internal/row_seqlock.h"
#include "core/row_storage.h"

namespace embedserve::internal {

// The rules of a dynamic (id-keyed) table's rows (issue 15). Defaults: no
// limit, no expiry, every pushed id admitted.
struct DynamicRowOptions {
  // Most rows stored; 0: no limit (up to kMaxSlots). When a new id is
  // admitted into a full storage, the least recently updated row goes.
  int64_t max_rows = 0;
  // Rows not updated at any of the last ttl_steps steps go: at step t, a row
  // last updated at step u <= t - ttl_steps. 0: rows never expire.
  int64_t ttl_steps = 0;
  // A pushed id gets a row once it was pushed admit_after times (counted by
  // an AdmissionSketch); 0 or 1: at its first push. At most 255.
  int admit_after = 1;
  // Admission counters per sketch row (4 rows of 1 byte each) and the Adds
  // between agings (0: 16 * width). Used only with admit_after >= 2.
  int64_t sketch_width = int64_t{1} << 18;
  int64_t sketch_window = 0;
  // Seeds the index's and the sketch's hashing (e.g. the table's seed).
  uint64_t seed = 0;
  // The id index is sized for this many rows (0: max_rows, or small) so
  // that filling it needs no rebuild.
  int64_t expected_rows = 0;
};

// InvalidArgument naming the first bad field.
absl::Status CheckDynamicRowOptions(const DynamicRowOptions& options);

struct DynamicRowStats {
  int64_t rows_stored = 0;
  int64_t rows_admitted = 0;        // rows created, ever
  int64_t rows_evicted = 0;         // by max_rows
  int64_t rows_expired = 0;         // by ttl_steps
  int64_t rows_erased = 0;          // by Erase
  int64_t pushes_not_admitted = 0;  // pushed ids below admit_after
  int64_t pushes_dropped_full = 0;  // admitted ids with every row pinned (see Upsert)
  int64_t index_bytes = 0;          // the id index's buckets
  int64_t index_rebuilds = 0;
  int64_t sketch_bytes = 0;
  int64_t slot_meta_bytes = 0;      // per-slot id, last step, order and LRU links
  int64_t row_bytes = 0;            // row chunks (RowStorage::row_bytes)
  int64_t state_bytes = 0;          // optimizer state chunks
};

// How Upsert treats an id without a row.
enum class UpsertMode {
  kPush,   // an update by a push: admission applies
  kWrite,  // a write of whole rows (assign, import, restore): always stored
};

// Rows keyed by any int64 id, for dynamic tables: a RowStorage whose slots
// are handed out as ids arrive, and whose Resolve looks ids up in an IdIndex.
//
// Rows live in chunks of rows_per_chunk() slots (about 2 MiB each, 64-byte
// aligned rows of RowFormat::row_bytes, optimizer state beside them), never
// moved and never freed before the storage: a slot, and a pointer to its
// row, stay valid while rows are inserted and evicted, and the kernels read
// slots through one fixed RowView over every chunk there can be
// (num_slots() == the slot limit). An evicted row's slot goes to a free list
// (LIFO) and is the next one handed out.
//
// Eviction order: least recently updated (exact LRU, an intrusive doubly
// linked list over slots: O(1) per update and per eviction). LRU rather
// than LFU because it is what ttl_steps needs too: the list is sorted by
// last update step, so expiry pops its head and a full storage evicts its
// head, both exactly and in O(1), with one order to persist; an LFU would
// need counts that age (else ids hot last week never leave) and a second
// structure for the TTL. Updates only move rows in the list: reads never do,
// and no clock is read, so the same updates give the same rows, slots and
// order on any machine and SIMD level.
//
// Thread-safety: as RowStorage. Resolve, SlotOf, Recheck, Row and the kernel
// view may run on any thread concurrently with the one writer (Upsert,
// Expire, Erase, MutableRow, WriteRecord; serialised by the caller). A
// lookup that must not mix rows (no torn row, no row of another id) follows
// the protocol of Recheck below, with the caller's RowSeqlock around every
// row write, including Upsert's init_row.
class DynamicRowStorage final : public RowStorage {
 public:
  // Returned by Resolve and SlotOf for an id without a row; outside
  // [0, num_slots()), so the gather kernels report its position.
  static constexpr int64_t kMissingSlot = -1;
  // The most slots a storage can have (LRU links are 32-bit).
  static constexpr int64_t kMaxSlots = int64_t{1} << 31;

  // Empty. InvalidArgument for bad options; ResourceExhausted if memory for
  // the index or the sketch cannot be had.
  static absl::StatusOr<std::unique_ptr<DynamicRowStorage>> Create(
      const RowFormat& format, const DynamicRowOptions& options);
  ~DynamicRowStorage() override;

  // ---- RowStorage.
  // Fixed for the storage's life (not only until the next mutating call).
  const KernelRows& kernel_rows() const override { return kernel_rows_; }
  // The slot of each id (kMissingSlot for ids without a row), in `scratch`
  // (which also keeps, after them, where each was found: see Recheck).
  absl::Span<const int64_t> Resolve(absl::Span<const int64_t> ids,
                                    std::vector<int64_t>* scratch) const override;
  int64_t SlotOf(int64_t id) const override { return index_->Find(id); }
  const uint8_t* Row(int64_t slot) const override {
    return row_chunks_[slot >> chunk_shift_] + (slot & chunk_mask_) * format().row_bytes;
  }
  uint8_t* MutableRow(int64_t slot) override {
    return row_chunks_[slot >> chunk_shift_] + (slot & chunk_mask_) * format().row_bytes;
  }
  void ReadRecord(int64_t slot, float* record) const override;
  void WriteRecord(int64_t slot, const float* record) override;
  int64_t num_slots() const override { return max_slots_; }
  int64_t row_bytes() const override;
  int64_t state_bytes() const override;
  int num_shards() const override { return chunks_.load(std::memory_order_relaxed); }
  int64_t rows_per_shard() const override { return 0; }

  // ---- Readers.
  // The lookup protocol (no torn row, never another id's row):
  //   slots = Resolve(ids, &scratch)
  //   seqlock.Snapshot(slots, before)
  //   Recheck(ids, scratch, &redo)      // after Snapshot: mapping changed?
  //   GatherResolved(...)               // rows of hits, initial rows of misses
  //   seqlock.Torn(slots, before, &redo)
  //   for each position in redo: ReadRowStable(seqlock, id, copy) or, when it
  //   returns false, the id's initial row.
  // Why it holds: a slot is given to another id only after the old id was
  // erased from the index and inside a seqlock write of that slot (Upsert's
  // init_row), so a reader whose stripe counter did not move between
  // Snapshot and Torn, and whose Recheck (after Snapshot) still maps the id
  // to the slot, read that id's row.
  // Appends to `changed` the positions i with a slot whose id no longer maps
  // to it. One load per id (the bucket Resolve found it in), unless the
  // index was rebuilt meanwhile. REQUIRES: `scratch` as Resolve(ids,
  // &scratch) left it (it keeps the buckets past the slots).
  void Recheck(absl::Span<const int64_t> ids, const std::vector<int64_t>& scratch,
               std::vector<int64_t>* changed) const;
  // The whole protocol above in one call, the engine's lookup (issue 15):
  // out[i * dim, +dim) = the row of ids[i] (decoded to float), or, for an
  // id without a row, what unseen(ids', rows') writes for it (rows' gets
  // ids'.size() packed rows: e.g. RowInitializer::Fill). `seqlock` is the
  // writer's; nullptr when the caller keeps writers out (no Snapshot,
  // Recheck nor Torn). Each found id's Snapshot and Recheck are taken as it
  // is probed (RowSeqlock::SnapshotOne, IdIndex::Reader::StillHolds; the
  // array's Current once after the loop): the same order per id as the
  // protocol above, without a second pass over the request's index lines.
  // Why one call: a missing id's index probe is a wait
  // for memory and its initial row is arithmetic; a prefetched random line
  // of the index does not overlap the arithmetic beside it (its TLB walk
  // holds up retirement: measured, see IdIndex), so the probes consult the
  // index's filter first (kLookupAhead ids ahead), and an id it rules out
  // reads no index line; a call skips the filter when most of the
  // thread's recent ids had rows (the answer is the same either way).
  // unseen is called on batches of at most
  // kUnseenBatch ids while the index reader epoch is held (and once more
  // for each redone position whose id has no row by then); it must not
  // call into this storage's writer.
  void Lookup(absl::Span<const int64_t> ids, const GatherKernels& kernels,
              const RowSeqlock* seqlock, float* out,
              absl::FunctionRef<void(absl::Span<const int64_t> ids, float* rows)> unseen) const;
  static constexpr int64_t kLookupAhead = 16;
  static constexpr int64_t kUnseenBatch = 16;

  // One id's row, consistently: calls copy(Row(slot)) under `seqlock` (the
  // seqlock the writer holds around row writes) while the id maps to the
  // slot, and returns true; false if the id has no row.
  template <typename Copy>
  bool ReadRowStable(const RowSeqlock& seqlock, int64_t id, Copy copy) const {
    for (;;) {
      const int64_t slot = SlotOf(id);
      if (slot < 0) return false;
      bool same = false;
      seqlock.ReadStable(slot, [&] {
        same = SlotOf(id) == slot;
        if (same) copy(Row(slot));
      });
      if (same) return true;
    }
  }

  // ---- The writer.
  // Applies one update of `ids` at table step `step` (the table's push step;
  // steps never go down) and sets slots[i] to the slot to update for
  // ids[i], or kMissingSlot when the id gets no row now (its update is
  // dropped and its value stays the initial one). In order:
  //  1. ttl_steps: Expire(step).
  //  2. For each id in order:
  //     - with a row: it becomes the most recently updated, at `step`;
  //     - else, kPush with admit_after >= 2: counted; below admit_after, no
  //       row (pushes_not_admitted);
  //     - else, when max_rows rows are stored: the least recently updated
  //       row is evicted, unless every stored row is one of this call's
  //       (rows of the update in progress are pinned, since the caller holds
  //       their slots): then no row (pushes_dropped_full). Only this call's
  //       rows are pinned, not every row updated at `step`: an assign at the
  //       step of the push before it evicts that push's oldest row.
  //     - a new slot; its optimizer state is set to the format's initial
  //       state and init_row(i, slot) is called to write the row (the
  //       caller's seqlock write: the slot may have held an evicted id's
  //       row that readers still read), and only then is the id published
  //       to readers.
  // `ids` are meant to be distinct (a push's coalesced ids); a repeated id
  // is found the second time (and counts twice towards "every row is this
  // call's"). InvalidArgument (nothing changed) if `step`
  // is below an earlier step or the sizes differ; ResourceExhausted if a
  // chunk or a larger index cannot be allocated (the ids before it were
  // applied, later slots are kMissingSlot).
  absl::Status Upsert(absl::Span<const int64_t> ids, int64_t step, UpsertMode mode,
                      absl::Span<int64_t> slots,
                      absl::FunctionRef<void(int64_t position, int64_t slot)> init_row);
  // Evicts rows last updated at or before step - ttl_steps (none without a
  // TTL); returns how many. REQUIRES: step not below an earlier step.
  int64_t Expire(int64_t step);
  // Removes the id's row; false if it had none.
  bool Erase(int64_t id);

  // ---- Inspection (the writer's thread, or under its lock).
  // Every row from least to most recently updated: Upsert(kWrite) of each,
  // at its last step, in this order rebuilds the same order and steps. The
  // admission counts are not part of it.
  void ForEachRow(absl::FunctionRef<void(int64_t id, int64_t slot, int64_t last_step)> visit) const;

  // ---- A copy of the rows as of one moment while the writer goes on (a
  // snapshot that pauses pushes for one bounded piece at a time). All
  // calls: the writer's thread, or under its lock.
  // Each row has an `order`: its place in the update (LRU) order, a number
  // that grows each time a row becomes the most recently updated (rows are
  // numbered 1, 2, ... in the order Upsert touches them; Restore keeps the
  // numbers it is given). ForEachRow visits rows in increasing order.
  struct CopiedRow {
    int64_t id;
    int64_t last_step;
    int64_t order;
    const float* record;  // ReadRecord's record_floats(), valid during the visit
  };
  // Starts a copy of every row stored now (stats().rows_stored of them),
  // dropping any copy in progress. Until EndCopy, the writer's first change
  // of a row the copy has not visited yet (an update, an eviction, a TTL
  // expiry, an erase, a reuse of its slot) first keeps the row as it was
  // aside: extra memory of 4 bytes a slot, and of one record per row
  // changed during the copy. ResourceExhausted (no copy) without memory.
  absl::Status BeginCopy();
  // Visits up to max_rows rows of the copy, from where the last call
  // stopped, each as it was at BeginCopy; returns how many (0 once every
  // row was visited, or without a copy). Rows come in slot order, not in
  // `order`: a caller that needs the update order sorts by it.
  int64_t CopyRows(int64_t max_rows, absl::FunctionRef<void(const CopiedRow&)> visit);
  void EndCopy();

  // ---- Restore (the writer, into an empty storage, before any Upsert).
  // Adds the row of `id` (its record: record_floats() floats) last updated
  // at last_step, at `order` in the update order; then FinishRestore links
  // the rows in increasing order and later Upserts number rows after the
  // largest. InvalidArgument naming what is wrong (nothing more restored):
  // an id restored twice, order < 1, max_rows rows stored already, or
  // (FinishRestore) two rows with one order or steps that go down in that
  // order; ResourceExhausted when memory runs out. A storage whose restore
  // failed must be dropped.
  absl::Status Restore(int64_t id, int64_t last_step, int64_t order, const float* record);
  absl::Status FinishRestore();

  // The admission counts (admit_after >= 2; empty otherwise), which
  // ForEachRow leaves out: a snapshot keeps them so that a restored storage
  // admits exactly as this one would. LoadAdmission: InvalidArgument
  // (nothing changed) for counts of another sketch size, or counts given to
  // a storage without admission.
  std::string SaveAdmission() const;
  absl::Status LoadAdmission(absl::string_view saved);
  // The event counters of stats() (rows admitted, evicted, expired,
  // erased; pushes not admitted, dropped full), in that order, which a
  // snapshot keeps so that they go on across a restart (a restore's own
  // Upserts count as admissions, and replay counts what it re-applies).
  // SetCounters: writer only, after the restore and before replay.
  static constexpr int kCounters = 6;
  std::array<int64_t, kCounters> Counters() const;
  void SetCounters(const std::array<int64_t, kCounters>& counters);

  // Any thread.
  DynamicRowStats stats() const;
  int64_t rows_per_chunk() const { return int64_t{1} << chunk_shift_; }
  const DynamicRowOptions& options() const { return options_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  // A free slot's `prev` (live slots: a slot or kNil).
  static constexpr uint32_t kFree = kNil - 1;
  struct SlotMeta {
    int64_t id;
    int64_t last_step;
    int64_t order;        // see CopiedRow
    uint32_t prev, next;  // LRU list; a free slot: kFree and the free list's next
  };
  struct FreeDeleter {
    void operator()(void* p) const { std::free(p); }
  };
  // The copy in progress (BeginCopy).
  struct Copy {
    int64_t end = 0;     // slots [0, end) were handed out at BeginCopy
    int64_t cursor = 0;  // slots [0, cursor) were visited
    // Per slot in [0, end): 0 unchanged since BeginCopy; kNoRow changed,
    // without a row at BeginCopy; else changed, its row kept as kept[v - 2].
    // (calloc: its pages are zeroed as they are first touched.)
    static constexpr uint32_t kNoRow = 1;
    std::unique_ptr<uint32_t[], FreeDeleter> kept_at;
    struct Kept {
      int64_t id, last_step, order;
    };
    std::vector<Kept> kept;
    // Kept records, kBlockRows a block (no reallocation: a push keeps rows
    // under the writer's lock).
    static constexpr int64_t kBlockRows = 4096;
    std::vector<std::unique_ptr<float[]>> blocks;
    std::vector<float> scratch;
  };

  DynamicRowStorage(const RowFormat& format, const DynamicRowOptions& options, int chunk_shift,
                    int64_t max_slots);
  SlotMeta& Meta(int64_t slot) {
    return meta_chunks_[slot >> chunk_shift_][slot & chunk_mask_];
  }
  const SlotMeta& Meta(int64_t slot) const {
    return meta_chunks_[slot >> chunk_shift_][slot & chunk_mask_];
  }
  float* State(int k, int64_t slot) const;
  absl::Status AddChunk();
  absl::StatusOr<int64_t> NewSlot();
  void Unlink(uint32_t slot);
  // Makes the slot the most recently updated, at `order` (see CopiedRow).
  void LinkTail(uint32_t slot, int64_t order);
  // Erases the slot's id and frees the slot.
  void Drop(uint32_t slot);
  void Free(uint32_t slot);
  // Before any change of a slot's row, state, id, step or order.
  void WillChange(int64_t slot) {
    if (copy_ != nullptr && slot >= copy_->cursor && slot < copy_->end) Keep(slot);
  }
  void Keep(int64_t slot);

  const DynamicRowOptions options_;
  const int chunk_shift_;
  const int64_t chunk_mask_;
  const int64_t max_slots_;
  const int64_t state_stride_;  // floats of an element-state row

  std::unique_ptr<IdIndex> index_;
  std::unique_ptr<AdmissionSketch> sketch_;  // admit_after >= 2 only

  // Chunk pointers, sized for every chunk there can be (so that the kernel
  // view never moves). Entry c is written before any slot of chunk c is
  // published through the index, which orders it before readers' loads.
  std::unique_ptr<uint8_t*[], FreeDeleter> row_chunk_storage_;
  uint8_t** row_chunks_ = nullptr;
  std::unique_ptr<const float*[], FreeDeleter> float_chunks_;
  std::unique_ptr<const uint8_t*[], FreeDeleter> compact_chunks_;
  KernelRows kernel_rows_;

  // Writer only.
  std::vector<std::unique_ptr<SlotMeta[]>> meta_chunks_;
  std::vector<std::unique_ptr<float, FreeDeleter>> state_chunks_[2];
  std::vector<std::unique_ptr<float[]>> row_state_chunks_;
  int64_t next_slot_ = 0;     // slots [0, next_slot_) were handed out once
  uint32_t free_head_ = kNil;
  uint32_t lru_head_ = kNil, lru_tail_ = kNil;  // least / most recently updated
  int64_t last_step_ = INT64_MIN;
  int64_t last_order_ = 0;
  std::unique_ptr<Copy> copy_;
  // Restore's rows and their orders, until FinishRestore.
  std::vector<std::pair<int64_t, uint32_t>> restored_;

  std::atomic<int> chunks_{0};
  std::atomic<int64_t> stored_{0}, admitted_{0}, evicted_{0}, expired_{0}, erased_{0},
      not_admitted_{0}, dropped_full_{0};
};

// Gathers the rows of `slots` (a Resolve result) into `out` (slots.size()
// rows of rows.rows.dim floats, packed) with `kernels`, and calls
// fill_missing(i, out + i * dim) for each position whose slot is negative
// (an id without a row: the caller writes its initial row or zeros).
void GatherResolved(const GatherKernels& kernels, const KernelRows& rows,
                    absl::Span<const int64_t> slots, float* out,
                    absl::FunctionRef<void(int64_t position, float* row)> fill_missing);

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_DYNAMIC_ROW_STORAGE_H_
