#ifndef EMBEDSERVE_CORE_EMBEDDING_TABLE_H_
#define EMBEDSERVE_CORE_EMBEDDING_TABLE_H_

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "core/gather.h"
#include "core/initializer.h"
#include "core/internal/dynamic_row_storage.h"
#include "core/internal/row_seqlock.h"
#include "core/internal/table_persistence.h"
#include "core/internal/trainer_sequences.h"
#include "core/internal/vocabulary.h"
#include "core/optimizer.h"
#include "core/parallel_lookup.h"
#include "core/pooling.h"  // BagBounds, CheckBagWeights: callers of LookupPooled need them
#include "core/row_storage.h"
#include "core/row_store.h"
#include "core/table_spec.h"
#include "core/update_log.h"

namespace embedserve {
namespace internal {
class ParallelReplay;
}  // namespace internal

// Where a table is made durable and how its lookups run; given at creation.
struct TableOptions {
  // Not owned; must outlive the table. Null keeps the table in memory only.
  RowStore* store = nullptr;
  // Splits large lookups across threads; null runs every lookup on its
  // caller. Shared by the tables of a registry.
  std::shared_ptr<LookupParallelism> parallelism;
  // Not owned. With a log, changes are appended to it as commands
  // (core/update_log.h) instead of written to `store` record by record; the
  // store then holds snapshots (EmbeddingTable::Snapshot). Null: every
  // change goes to `store` directly.
  UpdateLog* log = nullptr;
  // The incarnation of the table's name (UpdateRecord::generation); the
  // registry hands out a new one per table it makes.
  int64_t generation = 0;
};

// A dynamic table's rows (TableSpec::dynamic): what it stores and what its
// admission and eviction rules did (core/internal/dynamic_row_storage.h).
struct DynamicTableStats {
  int64_t rows_stored = 0;
  int64_t rows_admitted = 0;        // rows made, ever
  int64_t rows_evicted = 0;         // by max_rows
  int64_t rows_expired = 0;         // by ttl_steps
  int64_t pushes_not_admitted = 0;  // pushed ids below admit_after
  int64_t pushes_dropped_full = 0;  // admitted ids with every row of a full table pinned
  int64_t index_bytes = 0;
  int64_t sketch_bytes = 0;
  int64_t slot_meta_bytes = 0;
};

// Who sent a push (EmbeddingTable::ApplyGradients, exactly-once).
struct PushOrigin {
  absl::string_view trainer;  // empty: no exactly-once
  uint64_t sequence = 0;
};

// One embedding table: num_embeddings rows of embedding_dim values, with the
// semantics of torch.nn.Embedding (see TableSpec). This class is what a
// table means (ids, validation, renorm, pooling, the optimizer step, the
// order of durable writes); where its rows live is a RowStorage
// (core/row_storage.h; today dense sharded rows, see
// core/internal/sharded_row_storage.h for the memory layout).
//
// Thread-safety: all methods are safe to call concurrently.
// Invariant: a lookup never returns (or pools) a half-written row.
// Mechanism (chosen with bench/concurrency_bench.cc; a table-wide
// reader/writer lock let a pusher halve lookup throughput): writers (pushes,
// AssignRows, UpdateSettings, the renorm of a max_norm lookup) serialise on
// mu_ and wrap each row they change in the row seqlock
// (core/internal/row_seqlock.h). Lookups take no lock: they snapshot the
// seqlock counters of their rows, run the SIMD kernel, and re-read the
// counters; a row that was written meanwhile is copied again under the
// seqlock (a pooled bag is recomputed). The exception: lookups on a max_norm
// table renormalise rows in place, i.e. write, so they take mu_.
// CopyRows and ReadOptimizerState take mu_ shared to exclude writers.
//
// Dynamic tables (spec.dynamic; core/internal/dynamic_row_storage.h): any
// int64 is a valid id. A lookup reads an id without a row as its initial
// value (RowInitializer; with max_norm, renormalised as a lookup would have
// made it; zeros with unseen_zeros) and never makes a row. A push reads the
// same value for such an id, steps it, and stores the result if the id is
// admitted (admit_after); ids that are not get nothing and stay at their
// initial value. Every push advances the table's step (optimizer_step(),
// for every optimizer: eviction's clock), and eviction and expiry happen
// inside pushes (and assigns) only, so replaying the log gives the same
// rows. Lookups follow DynamicRowStorage's Recheck protocol on top of the
// seqlock: a slot handed to another id meanwhile is re-read by id.
// A durable dynamic table needs the update log (its store holds snapshots).
class EmbeddingTable {
 public:
  // Builds a table. With `initial_values` (num_embeddings * embedding_dim
  // floats, row-major; nn.Embedding.from_pretrained) the rows are those
  // values, padding row included; otherwise the initializer fills them and the
  // padding row is zero.
  // InvalidArgument: bad spec, wrong number of values, a non-finite value.
  // ResourceExhausted: the memory cannot be allocated.
  // With options.store, the new table is recorded there before Create
  // returns, and every later change is written through it before it is
  // acknowledged. With options.log and no initial values, the new table is
  // one kCreate record in the log instead (its rows are a pure function of
  // the spec), and reaches the store at its first snapshot.
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Create(
      const TableSpec& spec, absl::Span<const float> initial_values, const TableOptions& options);
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Create(
      const TableSpec& spec, absl::Span<const float> initial_values = {},
      RowStore* store = nullptr) {
    return Create(spec, initial_values, TableOptions{store, nullptr});
  }

  // Rebuilds a table from its durable copy in options.store (rows, optimizer
  // state, version, step, vocabulary), which then takes its later changes.
  // DataLoss if a record has the wrong size or id, or rows are missing.
  // REQUIRES: options.store != nullptr.
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Restore(const StoredTable& meta,
                                                                 const TableOptions& options);
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> Restore(const StoredTable& meta,
                                                                 RowStore* store) {
    return Restore(meta, TableOptions{store, nullptr});
  }

  // Records this table (rows, state, version, step) in `store`, which takes
  // every later change from then on instead of any store the table had (an
  // import moves a table restored from another store); null keeps the table
  // in memory only from now on.
  absl::Status PersistTo(RowStore* store);
  // PersistTo in two halves (RowStore::StageTable / CommitTable): StageTo
  // writes the records (slow) and changes nothing visible; CommitTo publishes
  // them and sends later changes to `store`. The table must not change in
  // between (it is not yet reachable by requests).
  absl::StatusOr<std::string> StageTo(RowStore* store);
  absl::Status CommitTo(RowStore* store, const std::string& staged);
  // Later changes go to no store and no log: for a table that was replaced
  // or dropped while requests still hold it (its writes must not reach the
  // name's new durable copy).
  void DetachStore();

  // ---- The update log (core/table_durability.cc) ---------------------------
  // Writes the table's rows and optimizer state to the store in bulk as of a
  // known log position, without stopping lookups, and pausing writers only
  // while one shard is copied at a time (each shard is then as of its own
  // position, recorded in StoredTable::shard_positions); a dynamic table's
  // rows one piece (kDynamicCopyRows) at a time, all as of one position,
  // writers keeping aside the rows they change before the snapshot copied
  // them (DynamicRowStorage::BeginCopy). Returns the
  // position replay of this table must start after; the log before it is no
  // longer needed for this table. FailedPrecondition without a log or
  // after DetachStore (a dropped table is not written back).
  absl::StatusOr<LogPosition> Snapshot();
  // Applies the record at `position` as it was applied live: a pure function
  // of the rows, the optimizer state and the record (no clock, no thread
  // timing, no dispatched SIMD kernel), so that replay gives the same bytes.
  // Records at or before the restored snapshot's positions are skipped
  // (per shard for rows). For recovery, before the table is shared.
  // DataLoss (naming the table and position) for a record that does not fit
  // the table (bad id, wrong number of floats). With `applier`, a push's rows
  // of dense storage are queued there (applied by its workers, visible after
  // its Drain: core/internal/parallel_replay.h); the rest is applied here.
  absl::Status Replay(LogPosition position, const UpdateRecord& record,
                      internal::ParallelReplay* applier = nullptr);
  // Builds the table a kCreate record at `position` describes.
  static absl::StatusOr<std::unique_ptr<EmbeddingTable>> CreateFromLog(
      LogPosition position, const UpdateRecord& record, const TableOptions& options);
  int64_t generation() const;
  // Later changes go to `log` as records of incarnation `generation`; the
  // next StageTo/CommitTo records the table as of the log's end. For a table
  // not yet shared (the registry calls it before CommitTo).
  void SetLog(UpdateLog* log, int64_t generation);
  // Where replay of this table starts (after this position); 0 without a log.
  LogPosition replay_from() const;
  // The newest record of this table in the log (0: none).
  LogPosition last_position() const;
  // Waits until the record at `position` is durable (UpdateLog::WaitDurable);
  // OK at once for 0 or without a log.
  absl::Status WaitDurable(LogPosition position) const;

  // Copies rows [first, first + n) (dim floats each) into `out`, all read
  // with writers excluded. InvalidArgument if the range is out of bounds,
  // or for a dynamic table (which has no range: ReadStoredRows of its StoredIds).
  absl::Status CopyRows(int64_t first, int64_t n, float* out) const;
  // A dynamic table's rows of `ids` as they are (export's read): as Lookup
  // (an id without a row reads as its initial value, rows are never torn),
  // but a max_norm table's stored rows are not renormalised, so nothing is
  // written or logged, as CopyRows of a dense table.
  // REQUIRES: out.size() == ids.size() * dim(). InvalidArgument for a dense
  // table (CopyRows reads its ranges).
  absl::Status ReadStoredRows(absl::Span<const int64_t> ids, absl::Span<float> out);

  // Attaches one word per row (word-vector files). InvalidArgument if the
  // count differs from num_rows or a word repeats. Call before PersistTo,
  // and before the table is shared (the words are then read without a lock).
  absl::Status SetVocabulary(std::vector<std::string> words);
  bool has_vocabulary() const { return !vocabulary_.empty(); }
  // The ids of `words`; NotFound naming every unknown word (up to 10),
  // FailedPrecondition without a vocabulary.
  absl::StatusOr<std::vector<int64_t>> IdsForWords(absl::Span<const std::string> words) const;

  // Floats per durable record: the row, then its optimizer state
  // (RowFormat::record_floats).
  int64_t record_floats() const { return rows_->format().record_floats(); }

  // Bytes Create would allocate for `spec`, for admission checks; for a
  // dynamic table, what its max_rows rows can take (0 without max_rows: it
  // grows with its rows).
  // REQUIRES: spec passed NormalizeTableSpec.
  static int64_t EstimateBytes(const TableSpec& spec);

  EmbeddingTable(const EmbeddingTable&) = delete;
  EmbeddingTable& operator=(const EmbeddingTable&) = delete;

  // Normalised spec (padding_idx >= 0), with the current frozen flag and
  // optimizer hyper-parameters (UpdateSettings may change them).
  TableSpec spec() const;
  const std::string& name() const { return spec_.name; }
  int64_t dim() const { return spec_.embedding_dim; }
  // num_embeddings; rows stored for a dynamic table.
  int64_t num_rows() const;
  bool is_dynamic() const { return dynamic_ != nullptr; }
  // Set for dynamic tables only.
  std::optional<DynamicTableStats> dynamic_stats() const;
  // A dynamic table's ids with a row, least recently updated first (what
  // export streams); empty for a dense table.
  std::vector<int64_t> StoredIds() const;
  int num_shards() const { return rows_->num_shards(); }
  int64_t rows_per_shard() const { return rows_->rows_per_shard(); }
  // Bytes of the rows (not of the optimizer state).
  int64_t bytes_used() const { return rows_->row_bytes(); }
  // Bytes of the optimizer state beside the rows.
  int64_t optimizer_state_bytes() const { return rows_->state_bytes(); }
  // The optimizer's step count (pushes applied; 0 for SGD and row-wise Adagrad).
  int64_t optimizer_step() const;
  // Bumped by every call that changes rows (assign, push, renorm).
  int64_t version() const { return version_.load(std::memory_order_acquire); }

  // OK if every id is in [0, num_rows) (any id of a dynamic table); else
  // InvalidArgument naming the first bad id and its position. Lookups check ids themselves; this lets a caller
  // validate a multi-table request before changing anything.
  absl::Status CheckIds(absl::Span<const int64_t> ids) const;

  // F.embedding: out[i] = row(ids[i]). With max_norm, the referenced rows are
  // first renormalised in place (torch.embedding_renorm_).
  // REQUIRES: out.size() == ids.size() * dim().
  // InvalidArgument (nothing changed) if an id is out of [0, num_rows): the
  // message names the id and its position.
  absl::Status Lookup(absl::Span<const int64_t> ids, absl::Span<float> out);

  // F.embedding_bag with bags given by `bounds` (see BagBounds); padding_idx
  // entries are skipped; empty bags give zeros. `weights` is empty or one per
  // id, and only allowed with kSum.
  // REQUIRES: out.size() == (bounds.size() - 1) * dim(), bounds valid.
  // InvalidArgument (nothing changed): bad id (named with its position),
  // weights of the wrong length or with a mode other than kSum, non-finite
  // weights. A dynamic table pools runs of bags of about 64 MiB of rows at
  // a time, and refuses (ResourceExhausted) one bag of over 1 GiB of rows.
  absl::Status LookupPooled(absl::Span<const int64_t> ids, absl::Span<const int64_t> bounds,
                            PoolingMode mode, absl::Span<const float> weights,
                            absl::Span<float> out);

  // weight[ids[i]] = values[i*dim : (i+1)*dim], padding row included and on
  // frozen tables too. With duplicate ids the last one wins. Returns the new
  // version. InvalidArgument (nothing changed): bad id, wrong number of
  // values, non-finite value (each named with its position), a value the row
  // type cannot hold (float16 past 65504).
  absl::StatusOr<int64_t> AssignRows(absl::Span<const int64_t> ids, absl::Span<const float> values);

  // Applies one push of sparse gradients: grads[i*dim : (i+1)*dim] is the
  // gradient of the lookup output for ids[i] (ids in any order, duplicates
  // allowed). As PyTorch's backward + optimizer.step(): duplicates are summed
  // (and divided by their count with scale_grad_by_freq), padding_idx entries
  // are dropped (core/coalesce.h), then the optimizer steps the distinct rows
  // only (see core/optimizer.h).
  // The whole push is validated before anything changes:
  // FailedPrecondition: the table is frozen. InvalidArgument: a bad id, a
  // wrong number of grads, a NaN or Inf gradient (each named with its
  // position), or a step whose result (row or optimizer state) would not be
  // finite (e.g. finite 3e38 gradients). A push of only padding ids applies
  // nothing and does not advance the optimizer's step.
  //
  // Exactly-once (proto PushRequest.trainer): with a trainer and a sequence
  // > 0, a push whose sequence is not above the trainer's last applied one
  // changes nothing and answers duplicate (after the push it repeats is
  // durable). InvalidArgument for a bad trainer name; ResourceExhausted past
  // TrainerSequences::kMaxTrainers trainers.
  struct PushResult {
    int64_t version = 0;       // the table's version after the push
    int64_t rows_applied = 0;  // distinct non-padding rows stepped (and stored)
    bool duplicate = false;    // already applied: nothing changed
  };
  using PushOrigin = ::embedserve::PushOrigin;
  absl::StatusOr<PushResult> ApplyGradients(absl::Span<const int64_t> ids,
                                            absl::Span<const float> grads,
                                            const PushOrigin& origin = {});
  // OK for an origin ApplyGradients takes: no trainer, or a trainer name
  // (CheckTrainerName) with a sequence above 0; InvalidArgument naming what
  // is wrong otherwise. For a caller that checks a request before it looks
  // the table up.
  static absl::Status CheckPushOrigin(const PushOrigin& origin);
  // OK for a trainer name: 1 to 128 characters of [A-Za-z0-9_.:-].
  static absl::Status CheckTrainerName(absl::string_view trainer);

  // OK once this table applied `trainer`'s push `sequence` or a later one;
  // DeadlineExceeded naming the trainer, the sequence and the last applied
  // one if `deadline` passes first. Blocks the calling thread until then,
  // but never behind a push being applied (absl::InfinitePast() only reads).
  absl::Status WaitForSequence(absl::string_view trainer, uint64_t sequence,
                               absl::Time deadline) const;

  // What UpdateSettings may change; unset fields stay as they are.
  // `kind` and `initial_accumulator_value` are fixed at creation: asking
  // for another kind, or for any initial_accumulator_value, is an error.
  struct Settings {
    std::optional<bool> frozen{};
    std::optional<double> lr{}, lr_decay{}, eps{}, beta1{}, beta2{};
    std::optional<OptimizerKind> kind{};
    std::optional<double> initial_accumulator_value{};
  };
  // InvalidArgument (nothing changed) if the new values are invalid or ask
  // to change what is fixed at creation.
  absl::Status UpdateSettings(const Settings& settings);

  // Optimizer state of `ids`, for inspection and tests: one entry per state
  // slot ("sum" for Adagrad, "momentum" for row-wise Adagrad with one float
  // per id, "exp_avg" and "exp_avg_sq" for SparseAdam), each len(ids) * width
  // floats. InvalidArgument for a bad id.
  struct StateSlot {
    std::string name;
    int64_t width = 0;  // floats per id: dim, or 1 for per-row state
    std::vector<float> values;
  };
  absl::StatusOr<std::vector<StateSlot>> ReadOptimizerState(absl::Span<const int64_t> ids) const;

 private:
  EmbeddingTable(const TableSpec& spec, std::unique_ptr<RowStorage> rows,
                 std::shared_ptr<LookupParallelism> parallelism);
  absl::Status BadIdError(absl::Span<const int64_t> ids, int64_t position) const;
  // len(ids) * dim finite values for valid ids; InvalidArgument naming
  // `field` and the first bad position otherwise.
  absl::Status CheckRowValues(absl::Span<const int64_t> ids, absl::Span<const float> values,
                              absl::string_view field) const;
  // OK if every packed record (record_floats() each, for `ids`) is finite
  // and its row encodes finitely in the row type; else InvalidArgument
  // naming the id ("the <what> would make ... not finite").
  absl::Status CheckRecords(absl::Span<const int64_t> ids, absl::Span<const float> packed,
                            absl::string_view what) const;
  // Runs kernel() (returning kAllValid or a bad position) over the rows at
  // `slots` (the slots of `ids`): lock-free under the seqlock, or under mu_
  // with the renorm first on max_norm tables. `redo(positions)` recomputes
  // the outputs of the ids at those positions (rows that a writer touched
  // while the kernel ran).
  template <typename Kernel, typename Redo>
  absl::Status ReadRows(absl::Span<const int64_t> ids, absl::Span<const int64_t> slots,
                        Kernel kernel, Redo redo);
  // Runs piece(begin, end) over [0, n) on the lookup threads, or on the
  // caller; returns the first bad position (see LookupParallelism::Run).
  int64_t Split(int64_t n, int64_t work, absl::FunctionRef<int64_t(int64_t, int64_t)> piece);
  // Copies the row at `slot` (dim floats, decoded) consistently.
  void StableCopyRow(int64_t slot, float* dst) const;
  // The records of valid `ids`, packed (record_floats() each).
  std::vector<float> ReadRecords(absl::Span<const int64_t> ids) const;
  // REQUIRES: ids valid.
  absl::Status RenormReferenced(absl::Span<const int64_t> ids) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Makes new records of the distinct `ids` durable (with the version bumped
  // and `step` as the optimizer step), then publishes them under the
  // seqlock. Durable means: `logged` (its kind, ids and floats set by the
  // caller; the rest filled here) appended to the log, or without a log the
  // records written to the store. Nothing changes if that fails. Returns the
  // new version and the log position to WaitDurable on (0: none).
  struct Committed {
    int64_t version = 0;
    LogPosition position = 0;
    int64_t stored = 0;  // records stored (WriteRecords)
  };
  absl::StatusOr<Committed> Commit(UpdateRecord logged, absl::Span<const int64_t> ids,
                                   absl::Span<const float> packed, int64_t step,
                                   const PushOrigin& origin = {})
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  StoredTable Meta(int64_t version, int64_t step) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The records of `ids` after one optimizer step with the coalesced
  // gradients `sums` (dim floats per id) at step `step`, packed.
  std::vector<float> SteppedRecords(absl::Span<const int64_t> ids, absl::Span<const float> sums,
                                    int64_t step) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // What a write of records is, for a dynamic table's rules (a dense table
  // writes every kind the same).
  enum class WriteKind {
    kPush,     // an update by a push: admission applies
    kAssign,   // an update that stores every id (AssignRows)
    kInPlace,  // not an update (a max_norm renorm): rows the table has only,
               // the LRU order and row steps stay
  };
  static WriteKind WriteKindOf(UpdateRecord::Kind kind);
  // Writes packed records of distinct valid ids in memory under the seqlock.
  // A dynamic table makes rows for ids without one at table step `step`
  // (kPush and kAssign); returns how many records were stored (fewer than
  // ids.size() for ids a dynamic table did not admit).
  int64_t WriteRecords(absl::Span<const int64_t> ids, absl::Span<const float> packed,
                       WriteKind kind, int64_t step) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ---- Dynamic tables (core/dynamic_table.cc).
  // The record an id without a row reads as: its initial row (renormalised
  // with max_norm, zeros with unseen_zeros or for padding_idx), then the
  // format's initial optimizer state. `out` holds record_floats() floats.
  void InitialRecords(absl::Span<const int64_t> ids, float* out) const;
  // The row part only: ids.size() rows of dim floats, packed.
  void UnseenRows(absl::Span<const int64_t> ids, float* out) const;
  // Lookup / LookupPooled of a dynamic table.
  absl::Status LookupDynamic(absl::Span<const int64_t> ids, absl::Span<float> out);
  absl::Status LookupPooledDynamic(absl::Span<const int64_t> ids, absl::Span<const int64_t> bounds,
                                   PoolingMode mode, absl::Span<const float> weights,
                                   absl::Span<float> out);
  // Gathers rows of ids (misses: their initial rows) into `out` following the
  // Recheck protocol; with `locked` (mu_ held) no re-check is needed.
  void GatherDynamic(absl::Span<const int64_t> ids, float* out, bool locked);
  // Snapshot / restore of a dynamic table's rows (StoredTable::dynamic_rows).
  // Floats after a dynamic snapshot record's row record: the row's id, last
  // update step and order (DynamicRowStorage::CopiedRow), int64 each, as
  // raw bytes. (Snapshots written before the order have 4: id and step,
  // in the update order.)
  static constexpr int64_t kDynamicTrailerFloats = 6;
  // The most rows a snapshot copies per hold of mu_ (a table of fewer than
  // 16 times as many copies a 16th at a time).
  static constexpr int64_t kDynamicCopyRows = 16384;
  // Sets meta's dynamic_rows, floats_per_record, dynamic_admission and
  // dynamic_counters as of now: call with the copy's BeginCopy.
  void DescribeDynamic(StoredTable& meta) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Stages the copy that dynamic_->BeginCopy() started (with meta described
  // at the same moment) into `store`, taking `lock` (mu_) around each piece
  // it copies, or nullptr when the caller holds mu_ throughout. Internal
  // error (nothing staged) if the copy was ended or restarted meanwhile.
  // The caller ends the copy.
  absl::StatusOr<std::string> StageDynamic(RowStore& store, const StoredTable& meta,
                                           absl::Mutex* lock) const;
  // Publishes a snapshot's staged rows unless the table was dropped or
  // replaced meanwhile; returns where replay starts.
  absl::StatusOr<LogPosition> CommitSnapshot(RowStore* store, const StoredTable& meta,
                                             const std::string& staged)
      ABSL_LOCKS_EXCLUDED(mu_);
  static absl::Status LoadDynamic(RowStore& store, const StoredTable& meta,
                                  internal::DynamicRowStorage& rows);
  // The storage of a spec: dense sharded rows, or dynamic rows.
  static absl::StatusOr<std::unique_ptr<RowStorage>> MakeStorage(const TableSpec& spec);
  // Fixed at creation; frozen and the optimizer's hyper-parameters live in
  // the guarded fields below instead.
  const TableSpec spec_;
  // The rows' memory is fixed at creation. Contents: written only under mu_
  // and the seqlock; read lock-free by lookups (see the class comment).
  const std::unique_ptr<RowStorage> rows_;
  // rows_ when the table is dynamic, else null.
  internal::DynamicRowStorage* const dynamic_;
  // Initial rows of ids without one (dynamic tables).
  const RowInitializer initializer_;
  const std::shared_ptr<LookupParallelism> parallelism_;  // null: serial
  internal::RowSeqlock seqlock_;
  // Serialises writers; guards the settings below. Lookups never take it,
  // except on a max_norm table (they write).
  mutable absl::Mutex mu_;
  bool frozen_ ABSL_GUARDED_BY(mu_);
  OptimizerSpec optimizer_ ABSL_GUARDED_BY(mu_);
  int64_t step_ ABSL_GUARDED_BY(mu_) = 0;
  internal::TablePersistence persistence_ ABSL_GUARDED_BY(mu_);
  // Changed only under mu_ too (in the order of the pushes); its own lock
  // lets WaitForSequence read it without waiting behind a push being applied.
  mutable absl::Mutex trainers_mu_ ABSL_ACQUIRED_AFTER(mu_);
  internal::TrainerSequences trainers_ ABSL_GUARDED_BY(trainers_mu_);
  // One Snapshot at a time per table.
  absl::Mutex snapshot_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  // Set before the table is shared: read without a lock.
  internal::Vocabulary vocabulary_;
  std::atomic<int64_t> version_{0};
};

}  // namespace embedserve

#endif  // EMBEDSERVE_CORE_EMBEDDING_TABLE_H_
