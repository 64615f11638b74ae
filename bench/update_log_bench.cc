// Appending push-sized records (256 ids x dim 64 floats, as a coalesced
// push of 256 rows) to FileUpdateLog on a real disk, next to the raw writes
// it is made of, in the same run:
//
//   BM_RawWrite              pwrite of the same frame bytes, no log (baseline)
//   BM_AsyncAppend           Append to an async log
//   BM_RawWriteSync          pwrite + fdatasync per record, one thread (baseline)
//   BM_SyncAppend/threads:N  Append + WaitDurable from N threads (group commit)
//
// Counters: records/s (items_per_second), bytes/s (frame bytes), and for
// the logs syncs_per_record. Segments are dropped as the run goes (as
// snapshots would), so the disk use stays bounded. The directory is made
// under $UPDATE_LOG_BENCH_DIR (default /var/tmp: not tmpfs, check with df).
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "storage/internal/log_record_codec.h"
#include "storage/update_log.h"

namespace embedserve {
namespace {

constexpr int64_t kIds = 256, kDim = 64;

struct PushRecord {
  PushRecord() : ids(kIds), floats(kIds * kDim, 0.001f) {
    for (int64_t i = 0; i < kIds; ++i) ids[i] = i * 7919;
  }
  UpdateRecord View() const {
    UpdateRecord r;
    r.kind = UpdateRecord::Kind::kPush;
    r.table = "bench";
    r.generation = 1;
    r.trainer = "trainer-0";
    r.ids = ids;
    r.floats = floats;
    return r;
  }
  std::vector<int64_t> ids;
  std::vector<float> floats;
};

int64_t FrameBytes() {
  std::string frame;
  (void)internal::EncodeFrame(1, PushRecord().View(), &frame);
  return static_cast<int64_t>(frame.size());
}

std::string MakeDir() {
  const char* root = getenv("UPDATE_LOG_BENCH_DIR");
  std::string tmpl = std::string(root ? root : "/var/tmp") + "/update_log_bench.XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) abort();
  return tmpl;
}

void Raw(benchmark::State& state, bool sync) {
  const std::string dir = MakeDir();
  const std::string path = dir + "/raw";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0644);
  std::string frame;
  (void)internal::EncodeFrame(1, PushRecord().View(), &frame);
  int64_t at = 0;
  for (auto _ : state) {
    if (::pwrite(fd, frame.data(), frame.size(), at) != static_cast<ssize_t>(frame.size())) {
      state.SkipWithError("pwrite failed");
      break;
    }
    at += static_cast<int64_t>(frame.size());
    if (sync) ::fdatasync(fd);
    if (at >= (int64_t{64} << 20)) {  // stay within one segment's worth
      ::ftruncate(fd, 0);
      at = 0;
    }
  }
  ::close(fd);
  std::filesystem::remove_all(dir);
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(frame.size()));
}

void BM_RawWrite(benchmark::State& state) { Raw(state, false); }
void BM_RawWriteSync(benchmark::State& state) { Raw(state, true); }

// One log shared by the threads of a run; thread 0 opens and closes it
// (the library's barriers at the loop's start and end order that).
std::unique_ptr<FileUpdateLog> g_log;
std::string g_dir;

void Log(benchmark::State& state, bool sync) {
  if (state.thread_index() == 0) {
    g_dir = MakeDir();
    UpdateLogOptions o;
    o.dir = g_dir;
    o.sync = sync;
    auto log = FileUpdateLog::Open(o);
    if (!log.ok()) abort();
    g_log = *std::move(log);
  }
  const PushRecord rec;
  const UpdateRecord view = rec.View();
  for (auto _ : state) {
    absl::StatusOr<LogPosition> p = g_log->Append(view);
    if (!p.ok() || !g_log->WaitDurable(*p).ok()) {
      state.SkipWithError("append failed");
      break;
    }
    if (*p % 2048 == 0) (void)g_log->DropThrough(*p - 1);  // bounded disk use
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * FrameBytes());
  if (state.thread_index() == 0) {
    const UpdateLogStats s = g_log->Stats();
    state.counters["syncs_per_record"] =
        static_cast<double>(s.syncs) / static_cast<double>(s.appends > 0 ? s.appends : 1);
    g_log.reset();
    std::filesystem::remove_all(g_dir);
  }
}

void BM_AsyncAppend(benchmark::State& state) { Log(state, false); }
void BM_SyncAppend(benchmark::State& state) { Log(state, true); }

BENCHMARK(BM_RawWrite)->UseRealTime();
BENCHMARK(BM_AsyncAppend)->UseRealTime();
BENCHMARK(BM_RawWriteSync)->UseRealTime();
BENCHMARK(BM_SyncAppend)->Threads(1)->Threads(4)->Threads(8)->UseRealTime();

}  // namespace
}  // namespace embedserve

BENCHMARK_MAIN();
