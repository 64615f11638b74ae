#include "server/server_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/hash/hash.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/enum_names.h"
#include "core/gather.h"

#ifndef EMBEDSERVE_VERSION
#define EMBEDSERVE_VERSION "unknown"
#endif

namespace embedserve {
namespace {

constexpr const char* kCodeNames[ServiceMetrics::kNumCodes] = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

constexpr auto BoundsNs() {
  std::array<int64_t, ServiceMetrics::kLatencyBounds.size()> ns{};
  for (size_t i = 0; i < ns.size(); ++i) {
    ns[i] = static_cast<int64_t>(ServiceMetrics::kLatencyBounds[i] * 1e9 + 0.5);
  }
  return ns;
}
constexpr auto kBoundsNs = BoundsNs();

constexpr char kOtherTable[] = "(other)";

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void AddSingle(std::vector<MetricFamily>* out, std::string name, std::string help, double value,
               MetricType type = MetricType::kGauge) {
  MetricFamily f = Family(std::move(name), std::move(help), type);
  f.samples.push_back({{}, value});
  out->push_back(std::move(f));
}

}  // namespace

ServiceMetrics::ServiceMetrics(std::vector<std::string> methods, size_t shards)
    : methods_(std::move(methods)),
      rpcs_(methods_.size() * kNumCodes * kCellsPerPair, shards),
      rows_(2 * (kMaxTables + 1), shards),
      slots_(new std::atomic<const TableEntry*>[kSlots]) {
  for (size_t i = 0; i < kSlots; ++i) slots_[i].store(nullptr, std::memory_order_relaxed);
}

ServiceMetrics::~ServiceMetrics() = default;

void ServiceMetrics::RecordRpc(int method, int code, std::chrono::nanoseconds elapsed) {
  if (code < 0 || code >= kNumCodes) code = 2;  // UNKNOWN
  const int64_t ns = elapsed.count();
  size_t bucket = 0;
  while (bucket < kBoundsNs.size() && ns > kBoundsNs[bucket]) ++bucket;
  const size_t base = (static_cast<size_t>(method) * kNumCodes + code) * kCellsPerPair;
  rpcs_.Add(base + bucket, 1);
  rpcs_.Add(base + kCellsPerPair - 1, static_cast<uint64_t>(ns > 0 ? ns : 0));
}

int ServiceMetrics::TableIndex(absl::string_view table) {
  const size_t hash = absl::Hash<absl::string_view>{}(table);
  for (size_t i = 0; i < kSlots; ++i) {
    const TableEntry* e = slots_[(hash + i) & (kSlots - 1)].load(std::memory_order_acquire);
    if (e == nullptr) break;
    if (e->name == table) return e->index;
  }
  return InsertTable(table, hash);
}

int ServiceMetrics::InsertTable(absl::string_view table, size_t hash) {
  absl::MutexLock lock(&mu_);
  // Names past kMaxTables are remembered too (as "(other)"), so that they
  // stay lock-free, until the hash table is 3/4 full; after that their
  // counts still land in "(other)", through this lock.
  if (tables_.size() >= kSlots / 4 * 3) return kMaxTables;
  for (size_t i = 0; i < kSlots; ++i) {
    std::atomic<const TableEntry*>& slot = slots_[(hash + i) & (kSlots - 1)];
    const TableEntry* e = slot.load(std::memory_order_relaxed);
    if (e != nullptr) {
      if (e->name == table) return e->index;  // another thread inserted it meanwhile
      continue;
    }
    const int index = tables_.size() < static_cast<size_t>(kMaxTables)
                          ? static_cast<int>(tables_.size())
                          : kMaxTables;
    tables_.push_back(std::make_unique<TableEntry>(TableEntry{std::string(table), index}));
    slot.store(tables_.back().get(), std::memory_order_release);
    return index;
  }
  return kMaxTables;
}

void ServiceMetrics::Collect(std::vector<MetricFamily>* out) const {
  MetricFamily requests =
      Family("embedserve_rpc_requests_total",
             "RPCs answered, by method and gRPC status code (a stream counts once, when it ends).",
             MetricType::kCounter);
  MetricFamily latency =
      Family("embedserve_rpc_duration_seconds",
             "Time from a call's arrival at the service to its answer; for a stream, its lifetime.",
             MetricType::kHistogram);
  const std::vector<double> bounds(kLatencyBounds.begin(), kLatencyBounds.end());
  for (size_t m = 0; m < methods_.size(); ++m) {
    for (int c = 0; c < kNumCodes; ++c) {
      const size_t base = (m * kNumCodes + c) * kCellsPerPair;
      HistogramSample h;
      h.counts.resize(kLatencyBounds.size() + 1);
      uint64_t total = 0;
      for (size_t b = 0; b < h.counts.size(); ++b) total += h.counts[b] = rpcs_.Sum(base + b);
      if (total == 0) continue;
      h.labels = {{"method", methods_[m]}, {"code", kCodeNames[c]}};
      h.bounds = bounds;
      h.sum = static_cast<double>(rpcs_.Sum(base + kCellsPerPair - 1)) * 1e-9;
      requests.samples.push_back({h.labels, static_cast<double>(total)});
      latency.histograms.push_back(std::move(h));
    }
  }
  out->push_back(std::move(requests));
  out->push_back(std::move(latency));

  MetricFamily looked_up = Family("embedserve_table_rows_looked_up_total",
                                  "Rows gathered for Lookup and LookupPooled answers (ids of "
                                  "successful requests), by table.",
                                  MetricType::kCounter);
  MetricFamily pushed = Family(
      "embedserve_table_rows_pushed_total",
      "Gradient rows (ids) of pushes applied, unary and streamed, by table.", MetricType::kCounter);
  auto add = [&](const std::string& name, int index) {
    looked_up.samples.push_back({{{"table", name}}, static_cast<double>(rows_.Sum(2 * index))});
    pushed.samples.push_back({{{"table", name}}, static_cast<double>(rows_.Sum(2 * index + 1))});
  };
  {
    absl::MutexLock lock(&mu_);
    for (const auto& e : tables_) {
      if (e->index < kMaxTables) add(e->name, e->index);
    }
  }
  if (rows_.Sum(2 * kMaxTables) + rows_.Sum(2 * kMaxTables + 1) > 0) add(kOtherTable, kMaxTables);
  out->push_back(std::move(looked_up));
  out->push_back(std::move(pushed));
}

void CollectTableMetrics(const TableRegistry& registry, std::vector<MetricFamily>* out) {
  const std::vector<std::shared_ptr<EmbeddingTable>> tables = registry.List();
  AddSingle(out, "embedserve_tables", "Tables served.", static_cast<double>(tables.size()));
  MetricFamily rows = Family(
      "embedserve_table_rows",
      "Rows of the table: num_embeddings, or the rows a dynamic table stores.", MetricType::kGauge);
  MetricFamily bytes =
      Family("embedserve_table_memory_bytes",
             "Memory the table's rows and optimizer state take, bytes.", MetricType::kGauge);
  MetricFamily version =
      Family("embedserve_table_version", "The table's version: bumped by every change of its rows.",
             MetricType::kGauge);
  MetricFamily removed =
      Family("embedserve_dynamic_table_rows_removed_total",
             "Rows a dynamic table removed: reason evicted (max_rows, least recently updated) "
             "or expired (ttl_steps).",
             MetricType::kCounter);
  for (const auto& t : tables) {
    const MetricLabels labels = {{"table", t->name()}};
    rows.samples.push_back({labels, static_cast<double>(t->num_rows())});
    bytes.samples.push_back({labels, static_cast<double>(t->bytes_used())});
    version.samples.push_back({labels, static_cast<double>(t->version())});
    if (const std::optional<DynamicTableStats> d = t->dynamic_stats()) {
      removed.samples.push_back(
          {{{"table", t->name()}, {"reason", "evicted"}}, static_cast<double>(d->rows_evicted)});
      removed.samples.push_back(
          {{{"table", t->name()}, {"reason", "expired"}}, static_cast<double>(d->rows_expired)});
    }
  }
  out->push_back(std::move(rows));
  out->push_back(std::move(bytes));
  out->push_back(std::move(version));
  if (!removed.samples.empty()) out->push_back(std::move(removed));
}

void CollectUpdateLogMetrics(const UpdateLogStats& s, std::vector<MetricFamily>* out) {
  const auto d = [](auto v) { return static_cast<double>(v); };
  AddSingle(out, "embedserve_update_log_bytes",
            "Bytes of the update log's segment files on disk; a snapshot drops whole segments.",
            d(s.bytes), MetricType::kGauge);
  AddSingle(out, "embedserve_update_log_segments", "Segment files of the update log.",
            d(s.segments), MetricType::kGauge);
  AddSingle(out, "embedserve_update_log_first_position",
            "Oldest record the update log keeps (0: none).", d(s.first_position),
            MetricType::kGauge);
  AddSingle(out, "embedserve_update_log_last_position", "Newest record of the update log.",
            d(s.last_position), MetricType::kGauge);
  AddSingle(out, "embedserve_update_log_appended_records_total",
            "Records appended to the update log since start (one per acknowledged change).",
            d(s.appends), MetricType::kCounter);
  AddSingle(out, "embedserve_update_log_syncs_total",
            "fdatasyncs of the update log since start (--durability=sync; group commit shares "
            "one among concurrent changes).",
            d(s.syncs), MetricType::kCounter);
}

void CollectStoreMetrics(const StoreStats& s, std::vector<MetricFamily>* out) {
  const auto d = [](int64_t v) { return static_cast<double>(v); };
  const MetricType kCounter = MetricType::kCounter, kGauge = MetricType::kGauge;
  AddSingle(out, "embedserve_rocksdb_write_stopped",
            "1 while RocksDB stops writes (too many memtables or L0 files, or pending "
            "compaction bytes over the hard limit), else 0.",
            s.write_stopped ? 1 : 0);
  AddSingle(out, "embedserve_rocksdb_delayed_write_rate_bytes_per_second",
            "The rate RocksDB holds writes to while it delays them (a write stall); 0 when "
            "writes are not delayed.",
            d(s.delayed_write_rate));
  AddSingle(out, "embedserve_rocksdb_write_stall_seconds_total",
            "Time writes spent stalled (delayed or stopped) since the store was opened.",
            d(s.write_stall_micros) * 1e-6, kCounter);
  AddSingle(out, "embedserve_rocksdb_wal_written_bytes_total",
            "Bytes written to the write-ahead log since the store was opened.",
            d(s.wal_bytes_written), kCounter);
  AddSingle(out, "embedserve_rocksdb_wal_syncs_total",
            "fsyncs of the write-ahead log since the store was opened (--durability=sync).",
            d(s.wal_syncs), kCounter);
  AddSingle(out, "embedserve_rocksdb_wal_files", "Live write-ahead log files.", d(s.wal_files),
            kGauge);
  AddSingle(out, "embedserve_rocksdb_wal_files_bytes", "Bytes of the live write-ahead log files.",
            d(s.wal_files_bytes), kGauge);
  AddSingle(out, "embedserve_rocksdb_running_compactions", "Compactions running now.",
            d(s.running_compactions));
  AddSingle(out, "embedserve_rocksdb_running_flushes", "Memtable flushes running now.",
            d(s.running_flushes));
  AddSingle(out, "embedserve_rocksdb_compactions_pending",
            "Column families (one per table) that wait for a compaction.",
            d(s.compactions_pending));
  AddSingle(out, "embedserve_rocksdb_pending_compaction_bytes",
            "Bytes RocksDB estimates compaction must rewrite to bring every level under its "
            "target size; writes stall when it grows past the soft limit.",
            d(s.pending_compaction_bytes));
  AddSingle(out, "embedserve_rocksdb_sst_files_bytes", "Bytes of all SST files, all versions.",
            d(s.sst_files_bytes));
  AddSingle(out, "embedserve_rocksdb_memtable_bytes",
            "Bytes of the memtables (active, unflushed and pinned).", d(s.memtable_bytes));
  AddSingle(out, "embedserve_rocksdb_background_errors_total",
            "Background errors (failed flushes or compactions) since the store was opened.",
            d(s.background_errors), kCounter);
}

void CollectProcessMetrics(std::vector<MetricFamily>* out) {
  // /proc/self/stat, fields after the command name (which may hold spaces
  // and parentheses, hence the last ')').
  std::ifstream stat_file("/proc/self/stat");
  std::stringstream stat_text;
  stat_text << stat_file.rdbuf();
  const std::string stat = stat_text.str();
  const size_t paren = stat.rfind(')');
  if (paren != std::string::npos) {
    // Field 3 (state) is fields[0]; field N is fields[N - 3].
    const std::vector<absl::string_view> fields =
        absl::StrSplit(absl::string_view(stat).substr(paren + 1), ' ', absl::SkipEmpty());
    auto field = [&](size_t n) -> double {
      double v = 0;
      if (n - 3 < fields.size() && absl::SimpleAtod(fields[n - 3], &v)) return v;
      return 0;
    };
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    AddSingle(out, "process_cpu_seconds_total", "User and system CPU time spent, seconds.",
              (field(14) + field(15)) / ticks, MetricType::kCounter);
    AddSingle(out, "process_resident_memory_bytes", "Resident memory (RSS), bytes.",
              field(24) * page);
    AddSingle(out, "process_virtual_memory_bytes", "Virtual memory size, bytes.", field(23));
    AddSingle(out, "process_threads", "Threads of the process.", field(20));
    double boot = 0;
    std::ifstream proc_stat("/proc/stat");
    for (std::string line; std::getline(proc_stat, line);) {
      if (line.rfind("btime ", 0) == 0 && absl::SimpleAtod(line.substr(6), &boot)) break;
    }
    if (boot > 0) {
      AddSingle(out, "process_start_time_seconds",
                "Start time of the process since the Unix epoch, seconds.",
                boot + field(22) / ticks);
    }
  }
  if (DIR* dir = opendir("/proc/self/fd"); dir != nullptr) {
    int open = 0;
    const int own = dirfd(dir);
    while (const dirent* e = readdir(dir)) {
      int fd;
      if (absl::SimpleAtoi(e->d_name, &fd) && fd != own) ++open;
    }
    closedir(dir);
    AddSingle(out, "process_open_fds", "Open file descriptors.", open);
  }
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    AddSingle(out, "process_max_fds", "The limit of open file descriptors (RLIMIT_NOFILE).",
              limit.rlim_cur == RLIM_INFINITY ? -1 : static_cast<double>(limit.rlim_cur));
  }
}

void CollectBuildInfo(std::vector<MetricFamily>* out) {
#if defined(__clang__)
  const std::string compiler = absl::StrCat("clang ", __clang_version__);
#elif defined(__GNUC__)
  const std::string compiler = absl::StrCat("gcc ", __VERSION__);
#else
  const std::string compiler = "unknown";
#endif
  MetricFamily f = Family("embedserve_build_info",
                          "Always 1; the labels say which build runs and which gather kernels "
                          "(SIMD level) it dispatched to.",
                          MetricType::kGauge);
  f.samples.push_back({{{"version", EMBEDSERVE_VERSION},
                        {"compiler", compiler},
                        {"simd", std::string(Name(ActiveKernels().level))}},
                       1});
  out->push_back(std::move(f));
}

}  // namespace embedserve
