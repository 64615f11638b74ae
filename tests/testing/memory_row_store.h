#ifndef EMBEDSERVE_TESTS_TESTING_MEMORY_ROW_STORE_H_
#define EMBEDSERVE_TESTS_TESTING_MEMORY_ROW_STORE_H_

// A RowStore in memory, for core tests that need the port without RocksDB:
// tables are maps of id -> record; `fail_writes` makes every write fail
// with Unavailable (nothing stored). Checkpoints are not kept
// (Unimplemented). Thread-safe.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/row_store.h"

namespace embedserve::testing {

class MemoryRowStore final : public RowStore {
 public:
  struct Table {
    StoredTable meta;
    std::map<int64_t, std::vector<float>> records;
  };

  bool fail_writes = false;

  // The stored copy of `name` (empty meta and no records if there is none).
  Table Get(const std::string& name) {
    absl::MutexLock lock(&mu_);
    auto it = tables_.find(name);
    return it == tables_.end() ? Table{} : it->second;
  }
  // Puts a table as an offline job would (records given whole).
  void Put(Table table) {
    absl::MutexLock lock(&mu_);
    tables_[table.meta.spec.name] = std::move(table);
  }

  absl::Status CreateCheckpoint(absl::string_view) override { return Unimplemented(); }
  absl::StatusOr<std::vector<CheckpointInfo>> ListCheckpoints() override { return Unimplemented(); }
  absl::StatusOr<std::unique_ptr<RowStore>> OpenCheckpoint(absl::string_view) override {
    return Unimplemented();
  }
  absl::Status CreateTable(const StoredTable& meta,
                           const std::function<void(int64_t, float*)>& record) override {
    absl::StatusOr<std::string> staged = StageTable(meta, record);
    if (!staged.ok()) return staged.status();
    return CommitTable(meta, *staged);
  }
  absl::StatusOr<std::string> StageTable(
      const StoredTable& meta, const std::function<void(int64_t, float*)>& record) override {
    if (fail_writes) return Failed();
    Table t{meta, {}};
    for (int64_t id = 0; id < meta.spec.num_embeddings; ++id) {
      std::vector<float> r(meta.floats_per_record);
      record(id, r.data());
      t.records[id] = std::move(r);
    }
    absl::MutexLock lock(&mu_);
    const std::string handle = absl::StrCat("staged-", ++next_stage_);
    staged_[handle] = std::move(t);
    return handle;
  }
  absl::Status CommitTable(const StoredTable& meta, const std::string& staged) override {
    absl::MutexLock lock(&mu_);
    auto it = staged_.find(staged);
    if (it == staged_.end()) return absl::NotFoundError("no such staged table");
    if (fail_writes) {
      staged_.erase(it);
      return Failed();
    }
    Table t = std::move(it->second);
    staged_.erase(it);
    t.meta = meta;
    tables_[meta.spec.name] = std::move(t);
    return absl::OkStatus();
  }
  void AbortTable(const std::string& staged) override {
    absl::MutexLock lock(&mu_);
    staged_.erase(staged);
  }
  absl::Status DropTable(absl::string_view name) override {
    if (fail_writes) return Failed();
    absl::MutexLock lock(&mu_);
    tables_.erase(std::string(name));
    return absl::OkStatus();
  }
  absl::Status PutRecords(const StoredTable& meta, absl::Span<const int64_t> ids,
                          absl::Span<const float> packed) override {
    if (fail_writes) return Failed();
    absl::MutexLock lock(&mu_);
    Table& t = tables_[meta.spec.name];
    SetMeta(t, meta);
    for (size_t i = 0; i < ids.size(); ++i) {
      const float* r = packed.data() + i * meta.floats_per_record;
      t.records[ids[i]].assign(r, r + meta.floats_per_record);
    }
    return absl::OkStatus();
  }
  absl::Status PutMeta(const StoredTable& meta) override {
    if (fail_writes) return Failed();
    absl::MutexLock lock(&mu_);
    SetMeta(tables_[meta.spec.name], meta);
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<StoredTable>> ListTables() override {
    absl::MutexLock lock(&mu_);
    std::vector<StoredTable> out;
    for (const auto& [name, t] : tables_) out.push_back(t.meta);
    return out;
  }
  absl::Status ReadRecords(
      const StoredTable& meta,
      const std::function<absl::Status(int64_t, absl::Span<const float>)>& visit) override {
    const Table t = Get(meta.spec.name);
    for (const auto& [id, r] : t.records) {
      absl::Status s = visit(id, r);
      if (!s.ok()) return s;
    }
    return absl::OkStatus();
  }

 private:
  static absl::Status Unimplemented() {
    return absl::UnimplementedError("MemoryRowStore keeps no checkpoints");
  }
  static absl::Status Failed() { return absl::UnavailableError("MemoryRowStore: writes fail"); }
  // As RocksDbStore: later metadata writes leave the vocabulary as it was.
  static void SetMeta(Table& t, const StoredTable& meta) {
    std::vector<std::string> words = std::move(t.meta.vocabulary);
    t.meta = meta;
    t.meta.vocabulary = std::move(words);
  }

  absl::Mutex mu_;
  std::map<std::string, Table> tables_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Table> staged_ ABSL_GUARDED_BY(mu_);
  int next_stage_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_MEMORY_ROW_STORE_H_
