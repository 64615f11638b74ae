// EmbeddingTable: how a table is made, restored and kept durable (the store
// and the update log). The lookups and changes are in embedding_table.cc.

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/embedding_table.h"
#include "core/initializer.h"
#include "core/internal/parallel_replay.h"
#include "core/internal/sharded_row_storage.h"

namespace embedserve {

int64_t EmbeddingTable::EstimateBytes(const TableSpec& spec) {
  if (spec.dynamic) {
    // What max_rows rows can take: the row, its optimizer state, and about
    // 64 bytes of id index and slot metadata (DescribeTable reports the
    // real figures); 0 when it has no limit.
    const RowFormat f = RowFormat::For(spec);
    const int64_t per_row =
        f.row_bytes + static_cast<int64_t>(sizeof(float)) * (f.element_slots * f.dim + f.row_slots) + 64;
    return spec.dynamic->max_rows * per_row;
  }
  return internal::ShardedRowStorage::EstimateBytes(spec);
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Create(
    const TableSpec& raw_spec, absl::Span<const float> initial_values,
    const TableOptions& options) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  if (spec.dynamic) {
    if (!initial_values.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "table '", spec.name, "' is dynamic: it takes no initial values (assign rows by id)"));
    }
    if (options.store != nullptr && options.log == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("dynamic table '", spec.name,
                       "' needs the update log to be durable (the server runs with "
                       "--update_log=false)"));
    }
  }
  if (!initial_values.empty()) RETURN_IF_ERROR(CheckInitialValues(spec, initial_values));
  ASSIGN_OR_RETURN(std::unique_ptr<RowStorage> rows, MakeStorage(spec));
  if (!spec.dynamic) FillInitialRows(spec, initial_values, *rows, options.parallelism.get());
  std::unique_ptr<EmbeddingTable> table(
      new EmbeddingTable(spec, std::move(rows), options.parallelism));
  if (options.store == nullptr) return table;
  if (options.log != nullptr && initial_values.empty()) {
    // One record: the rows are a pure function of the spec.
    absl::MutexLock lock(&table->mu_);
    table->persistence_.Attach(options.store);
    table->persistence_.AttachLog(options.log, options.generation, 0);
    UpdateRecord logged;
    logged.kind = UpdateRecord::Kind::kCreate;
    logged.table = spec.name;
    logged.spec = &spec;
    ASSIGN_OR_RETURN(const LogPosition position, table->persistence_.Append(logged));
    table->persistence_.set_replay_from(position - 1);
    return table;
  }
  table->SetLog(options.log, options.generation);
  RETURN_IF_ERROR(table->PersistTo(options.store));
  return table;
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::CreateFromLog(
    LogPosition position, const UpdateRecord& record, const TableOptions& options) {
  if (record.spec == nullptr) {
    return absl::DataLossError(absl::StrCat("update log record ", position, " creates table '",
                                            record.table, "' without a spec"));
  }
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(*record.spec));
  ASSIGN_OR_RETURN(std::unique_ptr<RowStorage> rows, MakeStorage(spec));
  if (!spec.dynamic) FillInitialRows(spec, {}, *rows, options.parallelism.get());
  std::unique_ptr<EmbeddingTable> table(
      new EmbeddingTable(spec, std::move(rows), options.parallelism));
  absl::MutexLock lock(&table->mu_);
  table->persistence_.Attach(options.store);
  table->persistence_.AttachLog(options.log, record.generation, position - 1);
  table->persistence_.set_last_position(position);
  return table;
}

absl::StatusOr<std::unique_ptr<EmbeddingTable>> EmbeddingTable::Restore(
    const StoredTable& meta, const TableOptions& options) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(meta.spec));
  ASSIGN_OR_RETURN(std::unique_ptr<RowStorage> rows, MakeStorage(spec));
  if (spec.dynamic) {
    RETURN_IF_ERROR(LoadDynamic(*options.store, meta,
                                static_cast<internal::DynamicRowStorage&>(*rows)));
  } else {
    RETURN_IF_ERROR(internal::TablePersistence::Load(*options.store, meta, *rows));
  }
  std::unique_ptr<EmbeddingTable> table(
      new EmbeddingTable(spec, std::move(rows), options.parallelism));
  if (!meta.vocabulary.empty()) RETURN_IF_ERROR(table->SetVocabulary(meta.vocabulary));
  if (!spec.dynamic && !meta.shard_positions.empty() &&
      static_cast<int>(meta.shard_positions.size()) != table->num_shards()) {
    return absl::DataLossError(absl::StrCat("table '", spec.name, "' is stored with ",
                                            meta.shard_positions.size(),
                                            " shard positions for ", table->num_shards(),
                                            " shards"));
  }
  absl::MutexLock lock(&table->mu_);
  table->step_ = meta.step;
  table->version_.store(meta.version);
  {
    absl::MutexLock trainers(&table->trainers_mu_);
    table->trainers_.Restore(meta.trainer_sequences);
  }
  table->persistence_.Attach(options.store);
  // Without a log too: the generation and position stay in the metadata the
  // table writes, so that a later start with the log skips what the stored
  // rows already have.
  table->persistence_.AttachLog(options.log, meta.generation, meta.log_position);
  table->persistence_.shard_positions() = meta.shard_positions;
  for (LogPosition p : meta.shard_positions) table->persistence_.set_last_position(p);
  return table;
}

void EmbeddingTable::SetLog(UpdateLog* log, int64_t generation) {
  absl::MutexLock lock(&mu_);
  persistence_.AttachLog(log, generation, 0);
}

absl::Status EmbeddingTable::PersistTo(RowStore* store) {
  if (store == nullptr) {
    DetachStore();
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(std::string staged, StageTo(store));
  absl::Status committed = CommitTo(store, staged);
  store->DropReplaced();  // after mu_: dropping the old copy is slow
  return committed;
}

absl::StatusOr<std::string> EmbeddingTable::StageTo(RowStore* store) {
  absl::MutexLock lock(&mu_);
  StoredTable meta = Meta(version_.load(), step_);
  if (dynamic_ != nullptr) {
    if (persistence_.log() == nullptr) {
      return absl::FailedPreconditionError(absl::StrCat(
          "dynamic table '", spec_.name, "' needs the update log to be durable"));
    }
    DescribeDynamic(meta);
    RETURN_IF_ERROR(dynamic_->BeginCopy());
    absl::StatusOr<std::string> staged = StageDynamic(*store, meta, nullptr);
    dynamic_->EndCopy();
    return staged;
  }
  return internal::TablePersistence::Stage(*store, meta, *rows_);
}

absl::Status EmbeddingTable::CommitTo(RowStore* store, const std::string& staged) {
  absl::MutexLock lock(&mu_);
  // The vocabulary is written once, with the table; later writes (Meta)
  // leave it out.
  StoredTable meta = Meta(version_.load(), step_);
  meta.vocabulary = vocabulary_.words();
  // As StageTo staged them (the table must not change in between).
  if (dynamic_ != nullptr) DescribeDynamic(meta);
  UpdateLog* log = persistence_.log();
  if (log != nullptr) {
    // The table is not shared yet: no record of its generation precedes the
    // log's end, so its rows are as of there.
    meta.log_position = log->last_position();
    meta.shard_positions.clear();
  }
  RETURN_IF_ERROR(persistence_.Commit(*store, meta, staged));
  if (log != nullptr) {
    persistence_.set_replay_from(meta.log_position);
    persistence_.set_last_position(meta.log_position);
  }
  return absl::OkStatus();
}

void EmbeddingTable::DetachStore() {
  absl::MutexLock lock(&mu_);
  persistence_.Attach(nullptr);
}

StoredTable EmbeddingTable::Meta(int64_t version, int64_t step) const {
  StoredTable meta;
  meta.spec = spec_;
  meta.spec.frozen = frozen_;
  meta.spec.optimizer = optimizer_;
  meta.version = version;
  meta.step = step;
  meta.floats_per_record = record_floats();
  meta.generation = persistence_.generation();
  meta.log_position = persistence_.replay_from();
  {
    absl::ReaderMutexLock trainers(&trainers_mu_);
    meta.trainer_sequences = trainers_.Entries();
  }
  // With a log the store holds snapshots, read back whole at a restart:
  // about 64 KiB of consecutive records per value, so that a restore reads
  // few large values instead of one per row.
  if (persistence_.log() != nullptr) {
    meta.rows_per_value = std::max<int64_t>(1, (int64_t{64} << 10) / (record_floats() * 4));
  }
  return meta;
}

int64_t EmbeddingTable::generation() const {
  absl::ReaderMutexLock lock(&mu_);
  return persistence_.generation();
}

LogPosition EmbeddingTable::replay_from() const {
  absl::ReaderMutexLock lock(&mu_);
  return persistence_.replay_from();
}

LogPosition EmbeddingTable::last_position() const {
  absl::ReaderMutexLock lock(&mu_);
  return persistence_.last_position();
}

absl::Status EmbeddingTable::WaitDurable(LogPosition position) const {
  if (position == 0) return absl::OkStatus();
  UpdateLog* log;
  {
    absl::ReaderMutexLock lock(&mu_);
    log = persistence_.log();
  }
  // A detached table's records were appended while it was attached; the log
  // outlives every table.
  return log == nullptr ? absl::OkStatus() : log->WaitDurable(position);
}

// ---- Snapshots ---------------------------------------------------------------

absl::StatusOr<LogPosition> EmbeddingTable::Snapshot() {
  absl::MutexLock one_at_a_time(&snapshot_mu_);
  StoredTable meta;
  RowStore* store;
  {
    absl::MutexLock lock(&mu_);
    store = persistence_.store();
    if (persistence_.log() == nullptr || store == nullptr) {
      return absl::FailedPreconditionError(
          absl::StrCat("table '", spec_.name, "' has no update log to snapshot"));
    }
    // Settings, version, step and trainer numbers as of here; replay
    // starts after it.
    meta = Meta(version_.load(), step_);
    meta.log_position = persistence_.last_position();
    meta.vocabulary = vocabulary_.words();
    // A dynamic table's rows as of the same position, every one (rows move
    // between slots and in the LRU order, so not shard by shard): a copy
    // that pushes go on beside, keeping aside the rows they change first
    // (DynamicRowStorage::BeginCopy), copied a piece per hold of mu_.
    if (dynamic_ != nullptr) {
      DescribeDynamic(meta);
      RETURN_IF_ERROR(dynamic_->BeginCopy());
    }
  }
  if (dynamic_ != nullptr) {
    absl::StatusOr<std::string> staged = StageDynamic(*store, meta, &mu_);
    {
      absl::MutexLock lock(&mu_);
      dynamic_->EndCopy();
    }
    if (!staged.ok()) return staged.status();
    return CommitSnapshot(store, meta, *staged);
  }
  // Rows are copied one shard at a time under mu_ (writers pause for one
  // shard's copy, lookups not at all) as StageTable asks for them in id
  // order; each shard is then as of its own position.
  const int64_t rf = record_floats();
  const int64_t per_shard = rows_->rows_per_shard();
  std::vector<LogPosition> positions(rows_->num_shards(), meta.log_position);
  std::vector<float> shard;
  int64_t copied = -1;
  auto record = [&](int64_t id, float* dst) {
    const int64_t s = id / per_shard;
    if (s != copied) {
      const int64_t first = s * per_shard;
      const int64_t n = std::min(per_shard, spec_.num_embeddings - first);
      shard.resize(n * rf);
      absl::MutexLock lock(&mu_);
      for (int64_t r = 0; r < n; ++r) {
        rows_->ReadRecord(rows_->SlotOf(first + r), shard.data() + r * rf);
      }
      positions[s] = persistence_.last_position();
      copied = s;
    }
    std::memcpy(dst, shard.data() + (id - copied * per_shard) * rf, rf * sizeof(float));
  };
  ASSIGN_OR_RETURN(const std::string staged, store->StageTable(meta, record));
  meta.shard_positions = positions;
  return CommitSnapshot(store, meta, staged);
}

absl::StatusOr<LogPosition> EmbeddingTable::CommitSnapshot(RowStore* store,
                                                           const StoredTable& meta,
                                                           const std::string& staged) {
  {
    absl::MutexLock lock(&mu_);
    if (persistence_.store() != store || persistence_.log() == nullptr) {
      // Dropped or replaced meanwhile: its rows must not come back.
      store->AbortTable(staged);
      return absl::FailedPreconditionError(
          absl::StrCat("table '", spec_.name, "' was dropped or replaced during its snapshot"));
    }
    RETURN_IF_ERROR(store->CommitTable(meta, staged));
    persistence_.set_replay_from(meta.log_position);
  }
  // The copy this one replaced goes after mu_: pushes do not wait for its
  // files to be deleted (~0.2 s for 256 MiB here).
  store->DropReplaced();
  return meta.log_position;
}

// ---- Replay --------------------------------------------------------------------

absl::Status EmbeddingTable::Replay(LogPosition position, const UpdateRecord& r,
                                    internal::ParallelReplay* applier) {
  absl::MutexLock lock(&mu_);
  if (position <= persistence_.replay_from()) return absl::OkStatus();
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("update log record ", position, " for table '",
                                            spec_.name, "' ", why));
  };
  const int64_t dim = spec_.embedding_dim;
  const int64_t per_id = r.kind == UpdateRecord::Kind::kPush ? dim : record_floats();
  // Table-wide state: as it was after the record.
  switch (r.kind) {
    case UpdateRecord::Kind::kSettings: {
      if (r.spec == nullptr) return bad("has no settings");
      if (!r.ids.empty() || !r.floats.empty()) return bad("changes settings and rows at once");
      // What UpdateSettings lets change, and nothing else: another
      // optimizer's step would read state the rows have no room for.
      if (r.spec->optimizer.kind != optimizer_.kind ||
          r.spec->optimizer.initial_accumulator_value != optimizer_.initial_accumulator_value) {
        return bad("changes the optimizer's kind or initial accumulator, fixed at creation");
      }
      absl::StatusOr<OptimizerSpec> next = NormalizeOptimizerSpec(r.spec->optimizer);
      if (!next.ok()) return bad(absl::StrCat("has bad settings: ", next.status().message()));
      frozen_ = r.spec->frozen;
      optimizer_ = *next;
      break;
    }
    case UpdateRecord::Kind::kPush:
    case UpdateRecord::Kind::kWriteRecords:
    case UpdateRecord::Kind::kRenorm:
      if (static_cast<int64_t>(r.floats.size()) != static_cast<int64_t>(r.ids.size()) * per_id) {
        return bad(absl::StrCat("has ", r.floats.size(), " floats for ", r.ids.size(), " ids"));
      }
      if (!CheckIds(r.ids).ok()) return bad("names an id out of range");
      break;
    default:
      return bad("is not a change of a table's rows or settings");
  }
  // Rows: only the shards whose snapshot predates the record (all of them,
  // past the newest shard position: then the record is used in place).
  if (!r.ids.empty()) {
    const std::vector<LogPosition>& shards = persistence_.shard_positions();
    const bool every_shard =
        std::all_of(shards.begin(), shards.end(), [&](LogPosition s) { return position > s; });
    absl::Span<const int64_t> ids = r.ids;
    absl::Span<const float> floats = r.floats;
    std::vector<int64_t> some_ids;
    std::vector<float> some_floats;
    if (!every_shard) {
      const int64_t per_shard = rows_->rows_per_shard();
      for (size_t i = 0; i < r.ids.size(); ++i) {
        if (position <= shards[r.ids[i] / per_shard]) continue;
        some_ids.push_back(r.ids[i]);
        some_floats.insert(some_floats.end(), r.floats.begin() + i * per_id,
                           r.floats.begin() + (i + 1) * per_id);
      }
      ids = some_ids;
      floats = some_floats;
    }
    if (r.kind == UpdateRecord::Kind::kPush && applier != nullptr &&
        rows_->rows_per_shard() > 0) {
      // Dense rows: stepped by the applier's workers, in log order per row
      // (as SteppedRecords would: the scalars are those of this record).
      applier->Push(*rows_, optimizer_.kind,
                    ComputeStepScalars(optimizer_, std::max<int64_t>(r.step, 1)), ids, floats,
                    every_shard ? r.pin : nullptr);  // else ids are this call's copies
    } else if (r.kind == UpdateRecord::Kind::kPush) {
      WriteRecords(ids, SteppedRecords(ids, floats, r.step), WriteKind::kPush, r.step);
    } else {
      WriteRecords(ids, floats, WriteKindOf(r.kind), r.step);
    }
  }
  if (!r.trainer.empty()) {
    absl::MutexLock trainers(&trainers_mu_);
    trainers_.Applied(r.trainer, r.trainer_sequence);
  }
  step_ = std::max(step_, r.step);
  version_.store(std::max(version_.load(), r.version));
  persistence_.set_last_position(position);
  return absl::OkStatus();
}

}  // namespace embedserve
