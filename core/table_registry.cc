#include "core/table_registry.h"

#include <algorithm>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace embedserve {

absl::StatusOr<std::shared_ptr<EmbeddingTable>> TableRegistry::Create(
    const TableSpec& raw_spec, absl::Span<const float> initial_values) {
  ASSIGN_OR_RETURN(TableSpec spec, NormalizeTableSpec(raw_spec));
  const int64_t bytes = EmbeddingTable::EstimateBytes(spec);
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
  absl::StatusOr<std::unique_ptr<EmbeddingTable>> table =
      EmbeddingTable::Create(spec, initial_values, TableOptions{store_, parallelism_});
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

absl::Status TableRegistry::Swap(std::unique_ptr<EmbeddingTable> table,
                                 std::shared_ptr<EmbeddingTable>* out) {
  const std::string name = table->name();
  // Every row goes to disk before the lock: lookups of every table need the
  // lock (Get), and a 1 GiB table takes seconds to write. Under the lock,
  // one atomic metadata write switches the stored table to the new rows, so
  // a crash leaves the old table or the new one, never neither.
  std::string staged;
  if (store_ != nullptr) {
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
  std::shared_ptr<EmbeddingTable> shared = std::move(table);
  tables_[name] = shared;
  if (out != nullptr) *out = shared;
  return absl::OkStatus();
}

absl::Status TableRegistry::CreateCheckpoint(absl::string_view name) {
  if (store_ == nullptr) {
    return absl::FailedPreconditionError("checkpoints need a data directory (--data_dir)");
  }
  return store_->CreateCheckpoint(name);
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
  ASSIGN_OR_RETURN(std::vector<StoredTable> stored, checkpoint->ListTables());
  std::vector<const StoredTable*> chosen;
  for (const std::string& want : tables) {
    auto it = std::find_if(stored.begin(), stored.end(),
                           [&](const StoredTable& t) { return t.spec.name == want; });
    if (it == stored.end()) {
      return absl::NotFoundError(absl::StrCat("checkpoint '", name, "' has no table '", want, "'"));
    }
    chosen.push_back(&*it);
  }
  if (tables.empty()) {
    for (const StoredTable& t : stored) chosen.push_back(&t);
  }
  // Build every table first: a bad checkpoint changes nothing.
  std::vector<std::unique_ptr<EmbeddingTable>> built;
  for (const StoredTable* meta : chosen) {
    ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> t,
                     EmbeddingTable::Restore(*meta, TableOptions{checkpoint.get(), parallelism_}));
    built.push_back(std::move(t));
  }
  std::vector<std::shared_ptr<EmbeddingTable>> out;
  for (auto& t : built) {
    std::shared_ptr<EmbeddingTable> shared;
    RETURN_IF_ERROR(Swap(std::move(t), &shared));  // moves it off the checkpoint
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
  if (store_ != nullptr) RETURN_IF_ERROR(store_->DropTable(name));
  it->second->DetachStore();
  reserved_bytes_ -= EmbeddingTable::EstimateBytes(it->second->spec());
  tables_.erase(it);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<EmbeddingTable>> TableRegistry::Get(absl::string_view name) const {
  absl::ReaderMutexLock lock(&mu_);
  auto it = tables_.find(name);
  if (it == tables_.end() || it->second == nullptr) {
    return absl::NotFoundError(absl::StrCat("no table named '", name, "'"));
  }
  return it->second;
}

absl::StatusOr<int> TableRegistry::LoadFromStore() {
  if (store_ == nullptr) return 0;
  ASSIGN_OR_RETURN(std::vector<StoredTable> stored, store_->ListTables());
  for (const StoredTable& meta : stored) {
    ASSIGN_OR_RETURN(std::unique_ptr<EmbeddingTable> table,
                     EmbeddingTable::Restore(meta, TableOptions{store_, parallelism_}));
    absl::MutexLock lock(&mu_);
    reserved_bytes_ += EmbeddingTable::EstimateBytes(table->spec());
    tables_[meta.spec.name] = std::move(table);
  }
  return static_cast<int>(stored.size());
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
