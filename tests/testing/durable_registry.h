#ifndef EMBEDSERVE_TESTS_TESTING_DURABLE_REGISTRY_H_
#define EMBEDSERVE_TESTS_TESTING_DURABLE_REGISTRY_H_

// One data directory as the server opens it: a real RocksDbStore in
// dir/db and a real FileUpdateLog in dir/log, with a TableRegistry over
// both. Destroying it and making another on the same directory is a
// restart (call Recover() to load the tables: snapshots, then the log).

#include <cstdint>
#include <memory>
#include <string>

#include "core/table_registry.h"
#include "gtest/gtest.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::testing {

class Durable {
 public:
  explicit Durable(const std::string& dir, int64_t segment_bytes = 1 << 20) {
    auto store = RocksDbStore::Open({dir + "/db", /*sync=*/false});
    EXPECT_THAT(store, IsOk());
    store_ = *std::move(store);
    UpdateLogOptions o;
    o.dir = dir + "/log";
    o.segment_bytes = segment_bytes;
    auto log = FileUpdateLog::Open(o);
    EXPECT_THAT(log, IsOk());
    log_ = *std::move(log);
    store_->SetUpdateLog(log_.get());
    registry_ = std::make_unique<TableRegistry>(0, store_.get());
    registry_->SetUpdateLog(log_.get());
  }
  absl::StatusOr<int> Recover() { return registry_->LoadFromStore(); }
  TableRegistry& registry() { return *registry_; }
  FileUpdateLog& log() { return *log_; }
  // The table, or null (with a test failure) if there is none.
  std::shared_ptr<EmbeddingTable> Get(const std::string& name) {
    auto t = registry_->Get(name);
    EXPECT_THAT(t, IsOk());
    return t.ok() ? *t : nullptr;
  }

 private:
  // Declared in this order so that the registry goes first, then the log,
  // then the store.
  std::unique_ptr<RocksDbStore> store_;
  std::unique_ptr<FileUpdateLog> log_;
  std::unique_ptr<TableRegistry> registry_;
};

}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_DURABLE_REGISTRY_H_
