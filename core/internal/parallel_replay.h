#ifndef EMBEDSERVE_CORE_INTERNAL_PARALLEL_REPLAY_H_
#define EMBEDSERVE_CORE_INTERNAL_PARALLEL_REPLAY_H_

// Replay of the update log's pushes on several threads, overlapped with the
// reading of the log (issue 14: restart).
//
// Why it is the same function as the serial replay: a push's ids are
// distinct (coalesced, core/coalesce.h), and a row's step reads only that
// row, its own state, its gradient and the push's StepScalars (computed in
// log order by the caller). So the rows may be split among workers by any
// fixed function of the id (here: blocks of kBlockRows ids, dealt round
// robin): each worker applies the pushes in log order to its own rows, and
// every row sees exactly the serial sequence of steps, through the same
// StepRecord as the live path. Nothing is applied in a different order to
// the same row; only different rows are stepped at the same time.
//
// Dense storage only (RowStorage::rows_per_shard() > 0: slot == id, every
// row exists): id-keyed storage makes and evicts rows inside a push, which
// is not a per-id function; its pushes stay on the serial path.
//
// The caller (TableRegistry::Replay) reads the log on its own thread and
// queues each dense push with Push (the ids and gradients in place where
// the log's record pins them, UpdateRecord::pin, else a copy: the record
// is then a view into the log's reused read buffer), and calls Drain before any
// record that is not a push (create, drop, settings, assign) and at the end,
// so that those see every earlier push applied, and so that no table is
// destroyed with pushes pending.
//
// Thread-safety: Push and Drain from one thread (the log reader). The rows a
// queued push writes are written without the table's lock or seqlock:
// REQUIRES the tables are not shared yet (start-up), and nothing else reads
// or writes their rows until Drain returns.

#include <cstdint>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "core/internal/prefetch.h"
#include "core/optimizer.h"
#include "core/row_storage.h"

namespace embedserve::internal {

// One row's optimizer step on its durable record (RowFormat layout: the row,
// element state slot by slot, row state): the one place that maps a record
// onto ApplyRowStep's arguments, for the live path (SteppedRecords) and
// replay alike. `g`: format.dim floats.
inline void StepRecord(const RowFormat& f, OptimizerKind kind, const StepScalars& k,
                       const float* g, float* record) {
  const int64_t dim = f.dim;
  ApplyRowStep(kind, k, g, dim, record, f.element_slots >= 1 ? record + dim : nullptr,
               f.element_slots >= 2 ? record + 2 * dim : nullptr,
               f.row_slots > 0 ? record + f.record_floats() - 1 : nullptr);
}

// Calls visit(i) for i = 0 .. n - 1 in order, having asked for the lines of
// row_of(i) (row_bytes from a row's start; null: nothing), for writing, a
// block of kRowBlock positions ahead (InPrefetchedBlocks, prefetch.h).
inline constexpr int64_t kRowBlock = 16;
template <typename RowOf, typename Visit>
void InRowBlocks(size_t n, int64_t row_bytes, RowOf&& row_of, Visit&& visit) {
  InPrefetchedBlocks(
      static_cast<int64_t>(n), kRowBlock,
      [&](int64_t i) {
        const uint8_t* row = row_of(static_cast<size_t>(i));
        if (row == nullptr) return;
        for (int64_t b = 0; b < row_bytes; b += 64) PrefetchForWrite(row + b);
      },
      [&](int64_t i) {
        visit(static_cast<size_t>(i));
        return true;
      });
}

// Steps rows[ids[u]] by sums[u * dim ...] for the ids that `part` owns
// (PartOf(id, parts) == part; all of them with parts == 1), each through
// ReadRecord, StepRecord and WriteRecord (a float32 row without optimizer
// state, its own record, by StepRecord in place). REQUIRES: dense `rows`, ids
// distinct and in range, sums.size() == ids.size() * dim.
void StepRows(RowStorage& rows, OptimizerKind kind, const StepScalars& k,
              absl::Span<const int64_t> ids, absl::Span<const float> sums, int part, int parts);

class ParallelReplay {
 public:
  // Ids per block of the split: 64, so that runs of ids stay with one
  // worker (rows are padded to whole cache lines; per-row state floats of
  // two workers share a line only at block edges).
  static constexpr int kBlockShift = 6;
  static int PartOf(int64_t id, int parts) {
    return static_cast<int>(static_cast<uint64_t>(id >> kBlockShift) % static_cast<uint64_t>(parts));
  }

  // `workers` threads (at least 1) apply queued pushes; at most
  // `max_queued_bytes` of copied pushes wait (one larger push still goes).
  explicit ParallelReplay(int workers, int64_t max_queued_bytes = int64_t{64} << 20);
  // Drains, then stops the workers.
  ~ParallelReplay();
  ParallelReplay(const ParallelReplay&) = delete;
  ParallelReplay& operator=(const ParallelReplay&) = delete;

  // Queues the push and returns; waits first while the queue is full.
  // With `pin` null, ids and sums are copied; otherwise they are used in
  // place and must stay valid while a copy of `pin` is held: the queue
  // holds one until every worker has applied the push (released by then
  // when Drain returns). REQUIRES: as StepRows; `rows` outlives the next
  // Drain.
  void Push(RowStorage& rows, OptimizerKind kind, const StepScalars& k,
            absl::Span<const int64_t> ids, absl::Span<const float> sums,
            std::shared_ptr<const void> pin = nullptr);
  // Returns once every push queued so far is applied (its writes are then
  // visible to the caller).
  void Drain();

  int workers() const { return static_cast<int>(threads_.size()); }

 private:
  struct Task {
    RowStorage* rows;
    OptimizerKind kind;
    StepScalars k;
    absl::Span<const int64_t> ids;  // into *pin, or ids_copy
    absl::Span<const float> sums;   // into *pin, or sums_copy
    std::shared_ptr<const void> pin;
    std::vector<int64_t> ids_copy;
    std::vector<float> sums_copy;
    int64_t bytes;  // of ids and sums, copied or pinned
  };
  void Work(int part, int parts);
  // Tasks every worker has finished leave the queue (and drop their pins).
  void Retire() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const int64_t max_queued_bytes_;
  absl::Mutex mu_;
  // Tasks [first_, first_ + queue_.size()) by sequence number. A task is
  // not changed while queued; workers read it without mu_.
  std::deque<std::unique_ptr<Task>> queue_ ABSL_GUARDED_BY(mu_);
  // Retired tasks, whose vectors the next pushes reuse: fresh buffers of
  // a MiB each cost page faults and zeroing per push (as much as the copy).
  std::vector<std::unique_ptr<Task>> free_ ABSL_GUARDED_BY(mu_);
  int64_t first_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<int64_t> next_ ABSL_GUARDED_BY(mu_);  // per worker: the next task to apply
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CORE_INTERNAL_PARALLEL_REPLAY_H_
