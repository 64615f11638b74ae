// Dynamic tables with a data directory (a real RocksDbStore and
// FileUpdateLog in a scratch directory, as the server opens them), against
// the same calls on a memory-only registry: restart must give exactly the
// tables the server had (issue 14: replay is a pure function of the rows
// and the log; issue 15: admission counts, eviction order, expiry steps and
// statistics survive a restart).
//
// Input: as dynamic_request_fuzz (fuzz/dynamic_fuzz_common.h: tables,
// format, per-call properties), with five pseudo-calls besides the methods:
//   Snapshot  TableRegistry::SnapshotTables (rows written out in bulk, the
//             log before them dropped), as the snapshot scheduler does;
//   Restart   the registry, log and store closed and opened again on the
//             same directory (LoadFromStore: snapshots, then the log);
//   Crash     a Restart with what a kill -9 in the middle of an append
//             leaves at the end of the last log segment: a strict prefix
//             of a frame (the first frame of that segment, cut to a length
//             taken from the call's bytes), or zeros where the segment has
//             no frame yet (a file extended but never written). The torn
//             record was never acknowledged, so the restart must drop it
//             and give the tables as they were; a later append must not
//             leave it in the middle of the log (later restarts must work);
//   Checkpoint  CreateCheckpoint ("c0", "c1", ...), noting each table's
//             contents (TableImage: rows, ids in eviction order, optimizer
//             state, counters);
//   Restore   RestoreCheckpoint of every table of a checkpoint made before
//             (the call's first byte picks which; no call when there is
//             none): the checkpoint's tables must be as noted, the others
//             unchanged. The memory-only run cannot follow a restore, so
//             the two runs are compared up to the first one; the durable
//             run goes on, its restarts still checked.
// Each input runs twice from the same tables: on the durable registry
// (pseudo-calls applied) and on a memory-only one (pseudo-calls skipped).
// Properties, besides those of every call and the sanitizers':
//  - snapshots, restarts, checkpoints and restores succeed;
//  - both runs answer every call with the same bytes and end with the same
//    tables (fz::FinalState: ListTables' answer, then each table's ids in
//    eviction order, rows as stored and optimizer state).
// A restart follows a clean close (RocksDB's own files are whole); torn
// log records beyond Crash's are update_log_fuzz's part, and a real kill -9
// is the fault tests'.

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "fuzz/dynamic_fuzz_common.h"
#include "storage/internal/log_record_codec.h"
#include "storage/internal/log_segment.h"
#include "storage/rocksdb_store.h"
#include "storage/update_log.h"

namespace {

namespace fz = embedserve::fuzz;
using embedserve::EmbeddingServiceImpl;
using embedserve::FileUpdateLog;
using embedserve::RocksDbStore;
using embedserve::TableRegistry;

constexpr int kSnapshot = fz::kNumMethods;
constexpr int kRestart = fz::kNumMethods + 1;
constexpr int kCrash = fz::kNumMethods + 2;
constexpr int kCheckpoint = fz::kNumMethods + 3;
constexpr int kRestore = fz::kNumMethods + 4;
constexpr int kCallKinds = fz::kNumMethods + 5;

// One server's tables: over a data directory, or in memory (dir empty).
// Destroyed in the server's order: service, registry, log, store.
struct Node {
  explicit Node(const std::string& dir) {
    if (!dir.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(dir, ec);
      if (ec) fz::Fail("cannot make " + dir + ": " + ec.message());
      auto opened = RocksDbStore::Open({dir + "/db", /*sync=*/false});
      if (!opened.ok()) fz::Fail("cannot open the store: " + opened.status().ToString());
      store = *std::move(opened);
      embedserve::UpdateLogOptions o;
      o.dir = dir + "/log";
      o.segment_bytes = 16 << 10;  // small: records cross segments
      o.min_free_bytes = 0;
      auto log_opened = FileUpdateLog::Open(o);
      if (!log_opened.ok()) fz::Fail("cannot open the log: " + log_opened.status().ToString());
      log = *std::move(log_opened);
      store->SetUpdateLog(log.get());
    }
    registry = std::make_shared<TableRegistry>(fz::kTableBytes, store.get());
    if (log != nullptr) {
      registry->SetUpdateLog(log.get());
      auto loaded = registry->LoadFromStore();
      if (!loaded.ok()) fz::Fail("restart failed: " + loaded.status().ToString());
    }
    service = std::make_unique<EmbeddingServiceImpl>(registry, embedserve::RequestLimits{});
  }
  ~Node() {
    service.reset();
    registry.reset();
    log.reset();
    store.reset();
  }
  std::unique_ptr<RocksDbStore> store;
  std::unique_ptr<FileUpdateLog> log;
  std::shared_ptr<TableRegistry> registry;
  std::unique_ptr<EmbeddingServiceImpl> service;
};

// A scratch directory for this process's data directories (tmpfs where
// there is one), removed at exit. Its name carries the process id; those
// of processes that are gone (an input that crashed: no exit handler ran)
// are removed first.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::error_code ec;
    std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "";
    if (base.empty()) base = std::filesystem::temp_directory_path(ec).string();
    const std::string prefix = "dynamic_durable_fuzz.";
    for (const auto& entry : std::filesystem::directory_iterator(base, ec)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind(prefix, 0) != 0) continue;
      const long pid = std::strtol(name.c_str() + prefix.size(), nullptr, 10);
      if (pid > 0 && kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
        std::error_code ignored;
        std::filesystem::remove_all(entry.path(), ignored);
      }
    }
    std::string pattern = base + "/" + prefix + std::to_string(getpid()) + ".XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) fz::Fail("cannot make a scratch directory");
    auto* d = new std::string(pattern);
    std::atexit([] {
      std::error_code ignored;
      std::filesystem::remove_all(ScratchDir(), ignored);
    });
    return d;
  }();
  return *dir;
}

// Appends to the last segment of the log in `log_dir` what a crash in the
// middle of an append leaves (see Crash above); `how`'s first two bytes
// pick the length.
void TearLog(const std::string& log_dir, absl::string_view how) {
  namespace si = embedserve::internal;
  const absl::StatusOr<std::vector<embedserve::LogPosition>> firsts =
      si::ListSegments(log_dir, /*remove_temporaries=*/false);
  if (!firsts.ok() || firsts->empty()) fz::Fail("no log segment in " + log_dir);
  const std::string path = log_dir + "/" + si::SegmentFileName(firsts->back());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  constexpr size_t kHeader = si::kSegmentHeaderBytes;
  const size_t pick =
      how.size() >= 2 ? static_cast<uint8_t>(how[0]) | size_t{static_cast<uint8_t>(how[1])} << 8
                      : size_t{0xffff};
  std::string torn;
  if (bytes.size() >= kHeader + si::kFrameHeaderBytes) {
    uint32_t length = 0;  // the frame's first field: its payload's length
    std::memcpy(&length, bytes.data() + kHeader, sizeof(length));
    const size_t frame =
        std::min<size_t>(si::kFrameHeaderBytes + size_t{length}, bytes.size() - kHeader);
    torn = bytes.substr(kHeader, 1 + pick % (frame - 1));  // 1 .. frame - 1 bytes
  } else {
    torn.assign(1 + pick % 64, '\0');
  }
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << torn;
  if (!out) fz::Fail("cannot append to " + path);
}

// Runs the input on fresh tables, durable (in a new data directory) or in
// memory; returns the transcript of answers and the final state.
std::string Run(const uint8_t* data, size_t size, bool durable) {
  const std::string dir = durable ? ScratchDir() + "/data" : "";
  if (durable) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  auto node = std::make_unique<Node>(dir);
  fz::Reset(*node->registry);
  auto checker = std::make_unique<fz::CallChecker>(*node->service);
  std::string transcript;
  // Checkpoints made so far, each with its tables' images (durable only).
  using Images = std::map<std::string, std::string>;
  std::vector<std::pair<std::string, Images>> checkpoints;
  std::optional<std::string> compared;  // the transcript as of the first restore
  int index = 0;
  for (const fz::CallInput& call : fz::SplitCalls(data, size)) {
    const int kind = call.method % kCallKinds;
    transcript += "\n#" + std::to_string(index) + " ";
    if (kind == kSnapshot) {
      if (durable) {
        auto done = node->registry->SnapshotTables();
        if (!done.ok()) fz::Fail("snapshot failed: " + done.status().ToString());
      }
    } else if (kind == kRestart || kind == kCrash) {
      if (durable) {
        const std::string state = fz::FinalState(*node->service, *node->registry);
        checker.reset();
        node.reset();
        if (kind == kCrash) TearLog(dir + "/log", call.request);
        node = std::make_unique<Node>(dir);
        fz::ExpectSame(state, fz::FinalState(*node->service, *node->registry),
                       "a restart changed the tables");
        checker = std::make_unique<fz::CallChecker>(*node->service);
      }
    } else if (kind == kCheckpoint) {
      const std::string name = "c" + std::to_string(checkpoints.size());
      Images images;
      if (durable) {
        auto made = node->registry->CreateCheckpoint(name);
        if (!made.ok()) fz::Fail("checkpoint failed: " + made.status().ToString());
        for (const auto& table : node->registry->List()) {
          images[table->name()] = fz::TableImage(*node->service, *table);
        }
      }
      checkpoints.push_back({name, std::move(images)});
    } else if (kind == kRestore) {
      if (checkpoints.empty()) continue;  // nothing to restore: no call
      // From here on the memory-only run cannot follow: compare up to here.
      if (!durable) return transcript;
      if (!compared.has_value()) compared = transcript;
      const auto& [name, images] =
          checkpoints[(call.request.empty() ? 0 : static_cast<uint8_t>(call.request[0])) %
                      checkpoints.size()];
      Images others;
      for (const auto& table : node->registry->List()) {
        if (images.count(table->name()) == 0) {
          others[table->name()] = fz::TableImage(*node->service, *table);
        }
      }
      auto done = node->registry->RestoreCheckpoint(name, {});
      if (!done.ok()) fz::Fail("restore of " + name + " failed: " + done.status().ToString());
      Images now;
      for (const auto& table : node->registry->List()) {
        now[table->name()] = fz::TableImage(*node->service, *table);
      }
      for (const auto& [table, image] : images) {
        if (now.count(table) == 0) fz::Fail("restore of " + name + " left out table " + table);
        fz::ExpectSame(image, now[table], "restore of " + name + " gave " + table + " otherwise");
      }
      for (const auto& [table, image] : others) {
        if (now.count(table) == 0) fz::Fail("restore of " + name + " dropped table " + table);
        fz::ExpectSame(image, now[table], "restore of " + name + " changed " + table);
      }
      checker = std::make_unique<fz::CallChecker>(*node->service);
    } else {
      transcript += checker->Call(*node->service, fz::kMethods[kind], call.request, index);
    }
    ++index;
  }
  if (compared.has_value()) return *compared;
  return transcript + fz::FinalState(*node->service, *node->registry);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool initialised = [] {
    grpc_init();
    return true;
  }();
  (void)initialised;
  const std::string memory = Run(data, size, /*durable=*/false);
  const std::string durable = Run(data, size, /*durable=*/true);
  fz::ExpectSame(memory, durable, "the durable tables answered differently from memory-only ones");
  return 0;
}
