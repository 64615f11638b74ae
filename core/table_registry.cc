#include "core/table_registry.h"

#include <algorithm>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "core/internal/parallel_replay.h"

namespace embedserve {

absl::StatusOr<std::shared_ptr<EmbeddingTable>> TableRegistry::Create(
    const TableSpec& raw_spec, absl::Span<const float> initial_values) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  const int64_t bytes = EmbeddingTable::EstimateBytes(spec);
  if (spec.dynamic && spec.dynamic->max_rows == 0 && max_total_bytes_ > 0) {
    // Pushes of new ids would grow it past the limit: the limit must bound
    // it when it is made.
    return absl::InvalidArgumentError(absl::StrCat(
        "dynamic table '", spec.name, "' needs max_rows on a server with a table memory limit (",
        max_total_bytes_, " bytes; its rows count against it), or a server without one "
        "(--max_table_bytes=0)"));
  }
  {
    absl::MutexLock lock(&mu_);
    if (tables_.contains(spec.name)) {
      return absl::AlreadyExistsError(absl::StrCat("table '", spec.name, "' already exists"));
    }
    if (max_total_bytes_ > 0 && reserved_bytes_ + bytes > max_total_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("table '", spec.name, "' needs ", bytes,
                                                       " bytes; ", reserved_bytes_, " of the ",
                                                       max_total_bytes_, " byte limit are in use"));
    }
    tables_.emplace(spec.name, nullptr);
    reserved_bytes_ += bytes;
  }
  absl::MutexLock creating(&create_mu_);
  absl::StatusOr<std::unique_ptr<EmbeddingTable>> table = EmbeddingTable::Create(
      spec, initial_values, TableOptions{store_, parallelism_, log_, NextGeneration()});
  absl::MutexLock lock(&mu_);
  if (!table.ok()) {
    tables_.erase(spec.name);
    reserved_bytes_ -= bytes;
    return table.status();
  }
  std::shared_ptr<EmbeddingTable> shared = *std::move(table);
  tables_[spec.name] = shared;
  return shared;
}

absl::StatusOr<std::shared_ptr<EmbeddingTable>> TableRegistry::Load(
    const TableSpec& raw_spec, absl::Span<const float> values, std::vector<std::string> vocabulary,
    bool replace) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  const int64_t bytes = EmbeddingTable::EstimateBytes(spec);
  {
    absl::ReaderMutexLock lock(&mu_);
    if (!replace && tables_.contains(spec.name)) {
      return absl::AlreadyExistsError(absl::StrCat("table '", spec.name, "' already exists"));
    }
    // The old table stays until the swap, so both must fit for a moment.
    if (max_total_bytes_ > 0 && reserved_bytes_ + bytes > max_total_bytes_) {
      return absl::ResourceExhaustedError(absl::StrCat("table '", spec.name, "' needs ", bytes,
                                                       " bytes; ", reserved_bytes_, " of the ",
                                                       max_total_bytes_, " byte limit are in use"));
    }
  }
  ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> table,
                   EmbeddingTable::Create(spec, values, TableOptions{nullptr, parallelism_}));
  if (!vocabulary.empty()) RETURN_IF_ERROR(table->SetVocabulary(std::move(vocabulary)));
  if (!replace && Get(spec.name).ok()) {
    return absl::AlreadyExistsError(absl::StrCat("table '", spec.name, "' already exists"));
  }
  std::shared_ptr<EmbeddingTable> shared;
  RETURN_IF_ERROR(Swap(std::move(table), &shared));
  return shared;
}

absl::Status TableRegistry::Swap(std::shared_ptr<EmbeddingTable> table,
                                 std::shared_ptr<EmbeddingTable>* out) {
  const std::string name = table->name();
  // Every row goes to disk before the lock: lookups of every table need the
  // lock (Get), and a 1 GiB table takes seconds to write. Under the lock,
  // one atomic metadata write switches the stored table to the new rows, so
  // a crash leaves the old table or the new one, never neither.
  std::string staged;
  if (store_ != nullptr) {
    if (log_ != nullptr) table->SetLog(log_, NextGeneration());
    ASSIGN_OR_RETURN(staged, table->StageTo(store_));
  }
  absl::MutexLock lock(&mu_);
  auto it = tables_.find(name);
  if (it != tables_.end() && it->second == nullptr) {
    if (store_ != nullptr) store_->AbortTable(staged);
    return absl::AlreadyExistsError(absl::StrCat("table '", name, "' is being created"));
  }
  const bool exists = it != tables_.end();
  if (store_ != nullptr) RETURN_IF_ERROR(table->CommitTo(store_, staged));
  if (exists) {
    it->second->DetachStore();  // requests in flight on it write nowhere durable
    reserved_bytes_ -= EmbeddingTable::EstimateBytes(it->second->spec());
  }
  reserved_bytes_ += EmbeddingTable::EstimateBytes(table->spec());
  std::shared_ptr<EmbeddingTable> shared = std::move(table);  // not yet shared with anyone
  tables_[name] = shared;
  if (out != nullptr) *out = shared;
  return absl::OkStatus();
}

absl::StatusOr<CheckpointInfo> TableRegistry::CreateCheckpoint(absl::string_view name) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("checkpoints need a data directory (--data_dir)");
  }
  // The store's copy of every changed table first; the store saves the log
  // beside it, which brings each table to the moment of the checkpoint.
  RETURN_IF_ERROR(SnapshotTables().status());
  RETURN_IF_ERROR(store_->CreateCheckpoint(name));
  ASSIGN_OR_RETURN(std::vector<CheckpointInfo> all, store_->ListCheckpoints());
  for (CheckpointInfo& c : all) {
    if (c.name == name) return std::move(c);
  }
  return absl::InternalError(
      absl::StrCat("checkpoint '", name, "' was created but is not listed"));
}

absl::StatusOr<std::vector<CheckpointInfo>> TableRegistry::ListCheckpoints() {
  if (store_ == nullptr) return std::vector<CheckpointInfo>();
  return store_->ListCheckpoints();
}

absl::StatusOr<std::vector<std::shared_ptr<EmbeddingTable>>> TableRegistry::RestoreCheckpoint(
    absl::string_view name, absl::Span<const std::string> tables) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("checkpoints need a data directory (--data_dir)");
  }
  ASSIGN_OR_RETURN(std::unique_ptr<RowStore> checkpoint, store_->OpenCheckpoint(name));
  ASSIGN_OR_RETURN(std::unique_ptr<UpdateLog> checkpoint_log, store_->OpenCheckpointLog(name));
  ASSIGN_OR_RETURN(std::vector<StoredTable> stored, checkpoint->ListTables());
  for (const std::string& want : tables) {
    auto it = std::find_if(stored.begin(), stored.end(),
                           [&](const StoredTable& t) { return t.spec.name == want; });
    if (it == stored.end()) {
      return absl::NotFoundError(absl::StrCat("checkpoint '", name, "' has no table '", want, "'"));
    }
  }
  // Build every table first (the checkpoint's snapshots, then its log): a
  // bad checkpoint changes nothing.
  absl::flat_hash_map<std::string, std::shared_ptr<EmbeddingTable>> built;
  for (const StoredTable& meta : stored) {
    if (!tables.empty() && std::find(tables.begin(), tables.end(), meta.spec.name) == tables.end()) {
      continue;
    }
    ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> t,
                     EmbeddingTable::Restore(meta, TableOptions{checkpoint.get(), parallelism_,
                                                                checkpoint_log.get()}));
    built[meta.spec.name] = std::move(t);
  }
  if (checkpoint_log != nullptr) {
    RETURN_IF_ERROR(Replay(*checkpoint, *checkpoint_log, built, /*store_writable=*/false));
  }
  std::vector<std::string> names;
  for (const auto& [n, t] : built) {
    if (tables.empty() || std::find(tables.begin(), tables.end(), n) != tables.end()) {
      names.push_back(n);
    }
  }
  std::sort(names.begin(), names.end());
  std::vector<std::shared_ptr<EmbeddingTable>> out;
  for (const std::string& n : names) {
    std::shared_ptr<EmbeddingTable> shared;
    RETURN_IF_ERROR(Swap(std::move(built[n]), &shared));  // moves it off the checkpoint
    out.push_back(std::move(shared));
  }
  return out;
}

absl::Status TableRegistry::Drop(absl::string_view name) {
  absl::MutexLock lock(&mu_);
  auto it = tables_.find(name);
  if (it == tables_.end() || it->second == nullptr) {
    return absl::NotFoundError(absl::StrCat("no table named '", name, "'"));
  }
  LogPosition dropped = 0;
  if (log_ != nullptr) {
    // Logged first: replay then drops it even if the store's copy is
    // still there after a crash.
    UpdateRecord logged;
    logged.kind = UpdateRecord::Kind::kDrop;
    logged.table = name;
    logged.generation = it->second->generation();
    ASSIGN_OR_RETURN(dropped, log_->Append(logged));
  }
  it->second->DetachStore();
  if (store_ != nullptr) {
    absl::Status s = store_->DropTable(name);
    // With a log, the drop is durable once logged (replay drops what the
    // store still has), and a table never snapshotted has no stored copy.
    if (!s.ok() && log_ == nullptr) return s;
  }
  reserved_bytes_ -= EmbeddingTable::EstimateBytes(it->second->spec());
  tables_.erase(it);
  return dropped == 0 ? absl::OkStatus() : log_->WaitDurable(dropped);
}

absl::StatusOr<std::shared_ptr<EmbeddingTable>> TableRegistry::Get(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = tables_.find(name);
  if (it == tables_.end() || it->second == nullptr) {
    return absl::NotFoundError(absl::StrCat("no table named '", name, "'"));
  }
  return it->second;
}

int64_t TableRegistry::NextGeneration() {
  absl::MutexLock lock(&mu_);
  return next_generation_++;
}

absl::StatusOr<int> TableRegistry::LoadFromStore() {
  if (store_ == nullptr) return 0;
  const absl::Time start = absl::Now();
  ASSIGN_OR_RETURN(std::vector<StoredTable> stored, store_->ListTables());
  absl::flat_hash_map<std::string, std::shared_ptr<EmbeddingTable>> tables;
  for (const StoredTable& meta : stored) {
    ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> table,
                     EmbeddingTable::Restore(meta, TableOptions{store_, parallelism_, log_}));
    if (log_ == nullptr && meta.rows_per_value > 1) {
      // A snapshot (runs of records per value) takes no per-row writes:
      // store it again one record per row.
      RETURN_IF_ERROR(table->PersistTo(store_));
    }
    tables[meta.spec.name] = std::move(table);
  }
  const absl::Time restored = absl::Now();
  int64_t records = 0;
  if (log_ != nullptr) {
    RETURN_IF_ERROR(Replay(*store_, *log_, tables, /*store_writable=*/true, &records));
  }
  absl::MutexLock lock(&mu_);
  load_times_ = LoadTimes{restored - start, absl::Now() - restored, records};
  for (auto& [name, table] : tables) {
    reserved_bytes_ += EmbeddingTable::EstimateBytes(table->spec());
    next_generation_ = std::max(next_generation_, table->generation() + 1);
    tables_[name] = std::move(table);
  }
  return static_cast<int>(tables.size());
}

absl::Status TableRegistry::Replay(
    RowStore& store, UpdateLog& log,
    absl::flat_hash_map<std::string, std::shared_ptr<EmbeddingTable>>& tables,
    bool store_writable, int64_t* records_read) {
  // From the oldest position a table needs; with no table, every record
  // kept (creates not yet snapshotted).
  // Every record kept, each table skipping those its snapshot has.
  // (SnapshotTables drops records only where no table needs them: a table
  // whose snapshot predates the first record kept had none after it.)
  const LogPosition first = log.Stats().first_position;
  const LogPosition after = first == 0 ? log.last_position() : first - 1;
  int64_t max_generation = 0;
  int64_t records = 0;
  // Pushes into dense rows are applied by workers while this thread reads
  // and checks the log (core/internal/parallel_replay.h); every other
  // record waits for them first (a create or drop replaces a table, an
  // assign or a dynamic table's push writes rows serially).
  internal::ParallelReplay applier(
      static_cast<int>(std::clamp<unsigned>(std::thread::hardware_concurrency(), 1, 8)));
  absl::Status s = log.Read(after, [&](LogPosition position, const UpdateRecord& r) {
    ++records;
    max_generation = std::max(max_generation, r.generation);
    if (r.kind != UpdateRecord::Kind::kPush) applier.Drain();
    auto it = tables.find(r.table);
    EmbeddingTable* table = it == tables.end() ? nullptr : it->second.get();
    switch (r.kind) {
      case UpdateRecord::Kind::kCreate: {
        // A snapshot of this incarnation (or a later one) has it already.
        if (table != nullptr && table->generation() >= r.generation) return absl::OkStatus();
        ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> made,
                         EmbeddingTable::CreateFromLog(
                             position, r, TableOptions{&store, parallelism_, &log, r.generation}));
        tables[std::string(r.table)] = std::move(made);
        return absl::OkStatus();
      }
      case UpdateRecord::Kind::kDrop:
        if (table == nullptr || table->generation() > r.generation) return absl::OkStatus();
        tables.erase(it);
        // The drop may have been logged but not yet reached the store.
        if (!store_writable) return absl::OkStatus();
        if (absl::Status d = store.DropTable(r.table); !d.ok() && !absl::IsNotFound(d)) return d;
        return absl::OkStatus();
      default:
        if (table == nullptr || table->generation() != r.generation) return absl::OkStatus();
        return table->Replay(position, r, &applier);
    }
  });
  applier.Drain();  // before the tables are shared, or dropped on an error
  if (records_read != nullptr) *records_read = records;
  if (!s.ok()) {
    return absl::Status(s.code(), absl::StrCat("replaying the update log: ", s.message()));
  }
  absl::MutexLock lock(&mu_);
  next_generation_ = std::max(next_generation_, max_generation + 1);
  return absl::OkStatus();
}

absl::Status TableRegistry::CheckLogInSnapshots(RowStore& store, UpdateLog& log) {
  const LogPosition first = log.Stats().first_position;
  if (first == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(const std::vector<StoredTable> tables, store.ListTables());
  LogPosition pending = 0;
  std::string pending_table;
  const absl::Status read = log.Read(first - 1, [&](LogPosition p, const UpdateRecord& r) {
    const auto it = std::find_if(tables.begin(), tables.end(),
                                 [&](const StoredTable& t) { return t.spec.name == r.table; });
    const StoredTable* t = it == tables.end() ? nullptr : &*it;
    bool needed;
    switch (r.kind) {
      case UpdateRecord::Kind::kCreate:  // as Replay: unless that generation is stored
        needed = t == nullptr || t->generation < r.generation;
        break;
      case UpdateRecord::Kind::kDrop:
        needed = t != nullptr && t->generation <= r.generation;
        break;
      default:  // as EmbeddingTable::Replay: after the table's or a shard's position
        needed = t != nullptr && t->generation == r.generation &&
                 (p > t->log_position ||
                  std::any_of(t->shard_positions.begin(), t->shard_positions.end(),
                              [p](LogPosition s) { return p > s; }));
    }
    if (!needed) return absl::OkStatus();
    pending = p;
    pending_table = std::string(r.table);
    return absl::CancelledError("found");  // stops the read
  });
  if (!read.ok() && !absl::IsCancelled(read)) return read;
  if (pending == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat("update log record ", pending, " (table '",
                                                    pending_table, "'), in no snapshot"));
}

absl::StatusOr<int> TableRegistry::SnapshotTables() {
  if (log_ == nullptr) return 0;
  int written = 0;
  for (const std::shared_ptr<EmbeddingTable>& table : List()) {
    if (table->last_position() <= table->replay_from()) continue;  // nothing new
    absl::StatusOr<LogPosition> s = table->Snapshot();
    // A table dropped meanwhile is no error; any other failure is.
    if (!s.ok() && !absl::IsFailedPrecondition(s.status())) return s.status();
    if (s.ok()) ++written;
  }
  // Every record at or before the oldest position a live table replays
  // from is no longer needed. A table with no record after its snapshot
  // needs none at all: its snapshot is exact as of any later position, so
  // an idle table does not hold the log back (replay starts it at the first
  // record kept).
  absl::MutexLock no_creates(&create_mu_);
  LogPosition keep_after = log_->last_position();
  for (const std::shared_ptr<EmbeddingTable>& table : List()) {
    const LogPosition from = table->replay_from();
    if (table->last_position() > from) keep_after = std::min(keep_after, from);
  }
  RETURN_IF_ERROR(log_->DropThrough(keep_after));
  return written;
}

absl::StatusOr<int> TableRegistry::ImportFrom(RowStore& source) {
  ASSIGN_OR_RETURN(std::vector<StoredTable> stored, source.ListTables());
  int imported = 0;
  for (const StoredTable& meta : stored) {
    if (Get(meta.spec.name).ok()) {
      return absl::AlreadyExistsError(
          absl::StrCat("cannot import table '", meta.spec.name, "': the name is taken"));
    }
    ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> table,
                     EmbeddingTable::Restore(meta, TableOptions{&source, parallelism_}));
    if (log_ != nullptr) table->SetLog(log_, NextGeneration());
    RETURN_IF_ERROR(table->PersistTo(store_));  // never writes to the source
    absl::MutexLock lock(&mu_);
    reserved_bytes_ += EmbeddingTable::EstimateBytes(table->spec());
    tables_[meta.spec.name] = std::move(table);
    ++imported;
  }
  return imported;
}

std::vector<std::shared_ptr<EmbeddingTable>> TableRegistry::List() const {
  std::vector<std::shared_ptr<EmbeddingTable>> out;
  {
    absl::ReaderMutexLock lock(&mu_);
    for (const auto& [name, table] : tables_) {
      if (table != nullptr) out.push_back(table);
    }
  }
  std::sort(out.begin(), out.end(),
            [](const auto& a, const auto& b) { return a->name() < b->name(); });
  return out;
}

}  // namespace embedserve
