// Dynamic tables with a data directory (a real RocksDbStore and
// FileUpdateLog in a scratch directory, as the server opens them), against
// the same calls on a memory-only registry: restart must give exactly the
// tables the server had (issue 14: replay is a pure function of the rows
// and the log; issue 15: admission counts, eviction order, expiry steps and
// statistics survive a restart).
//
// Input: as dynamic_request_fuzz (fuzz/dynamic_fuzz_common.h: tables,
// format, per-call properties), with two pseudo-calls besides the methods:
//   Snapshot  TableRegistry::SnapshotTables (rows written out in bulk, the
//             log before them dropped), as the snapshot scheduler does;
//   Restart   the registry, log and store closed and opened again on the
//             same directory (LoadFromStore: snapshots, then the log).
// Each input runs twice from the same tables: on the durable registry
// (pseudo-calls applied) and on a memory-only one (pseudo-calls skipped).
// Properties, besides those of every call and the sanitizers':
//  - a snapshot and a restart succeed;
//  - both runs answer every call with the same bytes and end with the same
//    tables (ListTables' answer; each dynamic table's ids in eviction order
//    and rows as stored).
// A restart here follows a clean close: what a kill -9 adds (a torn last
// record) is update_log_fuzz's and the fault tests' part.

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>

#include "fuzz/dynamic_fuzz_common.h"
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
constexpr int kCallKinds = fz::kNumMethods + 2;

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
// there is one), removed at exit.
const std::string& ScratchDir() {
  static const std::string* dir = [] {
    std::error_code ec;
    std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "";
    if (base.empty()) base = std::filesystem::temp_directory_path(ec).string();
    std::string pattern = base + "/dynamic_durable_fuzz.XXXXXX";
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
  int index = 0;
  for (const fz::CallInput& call : fz::SplitCalls(data, size)) {
    const int kind = call.method % kCallKinds;
    transcript += "\n#" + std::to_string(index) + " ";
    if (kind == kSnapshot) {
      if (durable) {
        auto done = node->registry->SnapshotTables();
        if (!done.ok()) fz::Fail("snapshot failed: " + done.status().ToString());
      }
    } else if (kind == kRestart) {
      if (durable) {
        const std::string state = fz::FinalState(*node->service, *node->registry);
        checker.reset();
        node.reset();
        node = std::make_unique<Node>(dir);
        fz::ExpectSame(state, fz::FinalState(*node->service, *node->registry),
                       "a restart changed the tables");
        checker = std::make_unique<fz::CallChecker>(*node->service);
      }
    } else {
      transcript += checker->Call(*node->service, fz::kMethods[kind], call.request, index);
    }
    ++index;
  }
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
