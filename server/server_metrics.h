#ifndef EMBEDSERVE_SERVER_SERVER_METRICS_H_
#define EMBEDSERVE_SERVER_SERVER_METRICS_H_

// What embedserve exposes on --metrics_address (README, Metrics): the
// service's own counters (RPCs, rows per table) and the figures read at
// scrape time (tables, RocksDB, the process, the build).

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "core/table_registry.h"
#include "server/internal/sharded_counters.h"
#include "server/metrics.h"
#include "storage/rocksdb_store.h"

namespace embedserve {

// Counters the service bumps on its hot path: per RPC method and gRPC status
// code, a latency histogram (its _count is the request count); per table,
// rows looked up and rows pushed. Every add lands in the calling thread's
// shard (internal::ShardedCounters): lookups on different cores never write
// the same cache line. Collect sums the shards.
//
// Thread-safe.
class ServiceMetrics {
 public:
  // Histogram bucket upper bounds, seconds (+Inf is implied).
  static constexpr std::array<double, 16> kLatencyBounds = {
      25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3,
      10e-3, 25e-3, 50e-3,  100e-3, 250e-3, 1,    2.5,    10};
  // Distinct table names counted; the rows of tables named after that are
  // counted under table="(other)" (not a valid table name).
  static constexpr int kMaxTables = 1024;
  static constexpr int kNumCodes = 17;  // gRPC status codes 0..16

  // `methods`: the RPC names, indexed by the `method` argument of RecordRpc.
  // `shards`: copies of the counters (internal::ShardedCounters); 0 =
  // automatic, 1 = every thread adds to the same copy (for benchmarks).
  explicit ServiceMetrics(std::vector<std::string> methods, size_t shards = 0);
  ~ServiceMetrics();

  // One call answered with status `code` (a grpc::StatusCode; out of range
  // counts as UNKNOWN) after `elapsed`. REQUIRES: method < methods.size().
  void RecordRpc(int method, int code, std::chrono::nanoseconds elapsed);
  // Rows gathered for a lookup answer, and gradient rows applied, of `table`.
  void AddRowsLookedUp(absl::string_view table, int64_t rows) {
    rows_.Add(2 * TableIndex(table), static_cast<uint64_t>(rows));
  }
  void AddRowsPushed(absl::string_view table, int64_t rows) {
    rows_.Add(2 * TableIndex(table) + 1, static_cast<uint64_t>(rows));
  }

  // Appends embedserve_rpc_requests_total, embedserve_rpc_duration_seconds
  // (only method/code pairs seen so far), embedserve_table_rows_looked_up_total
  // and embedserve_table_rows_pushed_total (every table name seen so far;
  // a dropped table keeps its series until restart, as counters should).
  void Collect(std::vector<MetricFamily>* out) const;

 private:
  static constexpr size_t kCellsPerPair = kLatencyBounds.size() + 2;  // buckets, +Inf, sum (ns)
  struct TableEntry {
    std::string name;
    int index;
  };
  static constexpr size_t kSlots = 2 * kMaxTables;  // open addressing, load <= 1/2

  // The dense index of `table`'s counters. Lock-free when the name has been
  // seen before (an insert-only hash table of atomic pointers); the first
  // sight of a name takes mu_.
  int TableIndex(absl::string_view table);
  int InsertTable(absl::string_view table, size_t hash) ABSL_LOCKS_EXCLUDED(mu_);

  const std::vector<std::string> methods_;
  internal::ShardedCounters rpcs_;                           // [method][code][kCellsPerPair]
  internal::ShardedCounters rows_;                           // [table index][looked up, pushed]
  std::unique_ptr<std::atomic<const TableEntry*>[]> slots_;  // kSlots
  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<TableEntry>> tables_ ABSL_GUARDED_BY(mu_);  // by index
};

// Scrape-time collectors (each appends its families).
//
// embedserve_tables, and per table embedserve_table_rows,
// embedserve_table_memory_bytes and embedserve_table_version.
void CollectTableMetrics(const TableRegistry& registry, std::vector<MetricFamily>* out);
// embedserve_rocksdb_*: write stalls, the WAL, compactions, file sizes.
void CollectStoreMetrics(const StoreStats& stats, std::vector<MetricFamily>* out);
// The update log's figures (embedserve_update_log_*): bytes and segments on
// disk, the positions kept, records appended and fsyncs since start.
void CollectUpdateLogMetrics(const UpdateLogStats& stats, std::vector<MetricFamily>* out);
// process_*: resident and virtual memory, threads, open and maximum file
// descriptors, CPU seconds, start time (from /proc/self).
void CollectProcessMetrics(std::vector<MetricFamily>* out);
// embedserve_build_info{version,compiler,simd} 1, simd being the gather
// kernels in use.
void CollectBuildInfo(std::vector<MetricFamily>* out);

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_SERVER_METRICS_H_
