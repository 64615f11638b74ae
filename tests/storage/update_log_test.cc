// FileUpdateLog on real files in a temp dir: round trips, numbering across
// reopen, rotation and drops, group commit, CopyTo, and failing closed after
// a failed write or sync. Torn tails, corruption and opening after a crash:
// update_log_recovery_test.cc.
#include "storage/update_log.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/update_log_files.h"

namespace embedserve {
namespace {

using ::embedserve::testing::AppendRange;
using ::embedserve::testing::IsOk;
using ::embedserve::testing::MustOpen;
using ::embedserve::testing::Options;
using ::embedserve::testing::Range;
using ::embedserve::testing::ReadAll;
using ::embedserve::testing::Rec;
using ::embedserve::testing::SegmentPaths;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::testing::AllOf;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

TEST(UpdateLogTest, EveryKindRoundTripsThroughReopen) {
  TempDir dir("update_log");
  TableSpec spec;
  spec.name = "tbl";
  spec.num_embeddings = 10;
  spec.embedding_dim = 4;
  spec.optimizer.kind = OptimizerKind::kAdagrad;
  spec.optimizer.lr = 0.5;
  spec.initializer.seed = 1234;
  const std::vector<int64_t> ids = {3, 1};
  const std::vector<float> floats = {1, 2, 3, 4, 5, 6, 7, 8};
  const UpdateRecord::Kind kinds[] = {UpdateRecord::Kind::kCreate, UpdateRecord::Kind::kPush,
                                      UpdateRecord::Kind::kWriteRecords,
                                      UpdateRecord::Kind::kSettings, UpdateRecord::Kind::kDrop};
  {
    auto log = MustOpen(Options(dir.path()));
    for (int i = 0; i < 5; ++i) {
      UpdateRecord r;
      r.kind = kinds[i];
      r.table = "tbl";
      r.generation = 7;
      r.version = 100 + i;
      r.step = 200 + i;
      r.trainer = i == 1 ? "trainer-a" : "";
      r.trainer_sequence = i == 1 ? 77 : 0;
      r.ids = ids;
      r.floats = floats;
      r.spec = &spec;
      EXPECT_EQ(*log->Append(r), static_cast<LogPosition>(i + 1));
    }
  }
  auto log = MustOpen(Options(dir.path()));
  EXPECT_EQ(log->last_position(), 5u);
  int seen = 0;
  ASSERT_THAT(log->Read(0,
                        [&](LogPosition p, const UpdateRecord& r) {
                          const int i = static_cast<int>(p) - 1;
                          EXPECT_EQ(r.kind, kinds[i]);
                          EXPECT_EQ(r.table, "tbl");
                          EXPECT_EQ(r.generation, 7);
                          EXPECT_EQ(r.version, 100 + i);
                          EXPECT_EQ(r.step, 200 + i);
                          EXPECT_EQ(r.trainer, i == 1 ? "trainer-a" : "");
                          EXPECT_EQ(r.trainer_sequence, i == 1 ? 77u : 0u);
                          EXPECT_THAT(r.ids, ElementsAreArray(ids));
                          EXPECT_THAT(r.floats, ElementsAreArray(floats));
                          const bool has_spec = r.kind == UpdateRecord::Kind::kCreate ||
                                                r.kind == UpdateRecord::Kind::kSettings;
                          EXPECT_EQ(r.spec != nullptr, has_spec);
                          if (has_spec) {
                            EXPECT_EQ(r.spec->name, "tbl");
                            EXPECT_EQ(r.spec->optimizer.kind, OptimizerKind::kAdagrad);
                            EXPECT_EQ(r.spec->optimizer.lr, 0.5);
                            EXPECT_EQ(r.spec->initializer.seed, 1234u);
                          }
                          ++seen;
                          return absl::OkStatus();
                        }),
              IsOk());
  EXPECT_EQ(seen, 5);
}

TEST(UpdateLogTest, PositionsRunOnAcrossReopenAndRotation) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 300;  // a few records a segment
  {
    auto log = MustOpen(o);
    AppendRange(*log, 1, 20);
    EXPECT_GT(log->Stats().segments, 3);
  }
  auto log = MustOpen(o);
  EXPECT_EQ(log->last_position(), 20u);
  AppendRange(*log, 21, 30);
  EXPECT_EQ(ReadAll(*log), Range(1, 30));
  EXPECT_EQ(ReadAll(*log, 17), Range(18, 30));
  const UpdateLogStats s = log->Stats();
  EXPECT_EQ(s.first_position, 1u);
  EXPECT_EQ(s.last_position, 30u);
  EXPECT_EQ(s.appends, 10);
  int64_t bytes = 0;
  for (const std::string& p : SegmentPaths(dir.path())) bytes += std::filesystem::file_size(p);
  EXPECT_EQ(s.bytes, bytes);
  EXPECT_EQ(s.segments, static_cast<int64_t>(SegmentPaths(dir.path()).size()));
}

TEST(UpdateLogTest, DropThroughRemovesWholeSegmentsOnly) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 200;
  auto log = MustOpen(o);
  AppendRange(*log, 1, 30);
  const int64_t before = log->Stats().segments;
  ASSERT_THAT(log->DropThrough(14), IsOk());
  const UpdateLogStats s = log->Stats();
  EXPECT_LT(s.segments, before);
  EXPECT_GT(s.first_position, 1u);
  EXPECT_LE(s.first_position, 15u);  // 15 on is kept
  EXPECT_EQ(ReadAll(*log, 14), Range(15, 30));
  EXPECT_EQ(ReadAll(*log, s.first_position - 1), Range(s.first_position, 30));
  EXPECT_THAT(log->Read(s.first_position - 2, [](LogPosition, const UpdateRecord&) {
    return absl::OkStatus();
  }),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("dropped")));
  log.reset();
  log = MustOpen(o);
  EXPECT_EQ(log->Stats().first_position, s.first_position);
  EXPECT_EQ(ReadAll(*log, 14), Range(15, 30));
  AppendRange(*log, 31, 31);
}

TEST(UpdateLogTest, DroppingEverythingKeepsTheNumbering) {
  TempDir dir("update_log");
  TempDir copies("update_log_copy");
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 5);
    ASSERT_THAT(log->CopyTo(copies.Path("c")), IsOk());  // closes the active segment
    ASSERT_THAT(log->DropThrough(5), IsOk());
    const UpdateLogStats s = log->Stats();
    EXPECT_EQ(s.segments, 1);
    EXPECT_EQ(s.first_position, 0u);
    EXPECT_EQ(s.last_position, 5u);
    EXPECT_TRUE(ReadAll(*log, 5).empty());
  }
  auto log = MustOpen(Options(dir.path()));
  EXPECT_EQ(log->last_position(), 5u);
  EXPECT_THAT(log->Read(0, [](LogPosition, const UpdateRecord&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  AppendRange(*log, 6, 7);
  EXPECT_EQ(ReadAll(*log, 5), Range(6, 7));
}

TEST(UpdateLogTest, ConcurrentAppendersShareSyncs) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.sync = true;
  o.segment_bytes = 64 << 10;  // rotations during the run too
  auto log = MustOpen(o);
  constexpr int kThreads = 8, kPerThread = 100;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        Rec rec(1, absl::StrCat("t", t));
        rec.ids[0] = t * 1000 + i;
        absl::StatusOr<LogPosition> p = log->Append(rec.View());
        ASSERT_THAT(p, IsOk());
        ASSERT_THAT(log->WaitDurable(*p), IsOk());
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const UpdateLogStats s = log->Stats();
  EXPECT_EQ(s.appends, kThreads * kPerThread);
  EXPECT_GT(s.syncs, 0);
  EXPECT_LE(s.syncs, s.appends);
  std::printf("8 threads, %d appends: %lld syncs\n", kThreads * kPerThread,
              static_cast<long long>(s.syncs));
  log.reset();
  log = MustOpen(o);
  std::set<int64_t> seen;
  ASSERT_THAT(log->Read(0,
                        [&](LogPosition, const UpdateRecord& r) {
                          EXPECT_EQ(r.table, absl::StrCat("t", r.ids[0] / 1000));
                          EXPECT_TRUE(seen.insert(r.ids[0]).second);
                          return absl::OkStatus();
                        }),
              IsOk());
  EXPECT_EQ(seen.size(), static_cast<size_t>(kThreads * kPerThread));
}

// Deterministic group commit: one sync covers every record appended before
// it started, and appends go on while it runs.
TEST(UpdateLogTest, OneSyncCoversEveryWaiterAndAppendsGoOnDuringIt) {
  TempDir dir("update_log");
  absl::Notification in_sync, release;
  std::atomic<int> syncs{0};
  UpdateLogOptions o = Options(dir.path());
  o.sync = true;
  o.sync_for_test = [&](int fd) {
    if (syncs.fetch_add(1) == 0) {
      in_sync.Notify();
      release.WaitForNotification();
    }
    return ::fdatasync(fd);
  };
  auto log = MustOpen(o);
  AppendRange(*log, 1, 3);
  std::thread leader([&] { EXPECT_THAT(log->WaitDurable(3), IsOk()); });
  in_sync.WaitForNotification();
  AppendRange(*log, 4, 4);  // would deadlock if the sync blocked appends
  std::vector<std::thread> waiters;
  for (LogPosition p : {1, 2, 3}) {
    waiters.emplace_back([&, p] { EXPECT_THAT(log->WaitDurable(p), IsOk()); });
  }
  release.Notify();
  leader.join();
  for (std::thread& t : waiters) t.join();
  EXPECT_EQ(syncs.load(), 1);
  EXPECT_EQ(log->Stats().syncs, 1);
  EXPECT_THAT(log->WaitDurable(4), IsOk());
  EXPECT_EQ(log->Stats().syncs, 2);
  EXPECT_THAT(log->WaitDurable(5), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("5")));
}

TEST(UpdateLogTest, CopyToReadsExactlyUpToTheReturnedPosition) {
  TempDir dir("update_log");
  TempDir copies("update_log_copy");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 400;
  auto log = MustOpen(o);
  AppendRange(*log, 1, 10);
  absl::StatusOr<LogPosition> copied = log->CopyTo(copies.Path("c"));
  ASSERT_THAT(copied, IsOk());
  EXPECT_EQ(*copied, 10u);
  EXPECT_THAT(log->CopyTo(copies.Path("c")), StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));
  AppendRange(*log, 11, 15);
  EXPECT_EQ(ReadAll(*log), Range(1, 15));

  UpdateLogOptions ro = Options(copies.Path("c"));
  ro.read_only = true;
  auto copy = MustOpen(ro);
  EXPECT_EQ(copy->last_position(), 10u);
  EXPECT_EQ(ReadAll(*copy), Range(1, 10));
  EXPECT_THAT(copy->Append(Rec(11).View()), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  copy.reset();
  auto writable = MustOpen(Options(copies.Path("c")));
  AppendRange(*writable, 11, 12);  // numbering goes on in the copy
  EXPECT_EQ(ReadAll(*writable), Range(1, 12));
  EXPECT_EQ(ReadAll(*log), Range(1, 15));  // the original is untouched
}

TEST(UpdateLogTest, FailsClosedAfterAFailedWrite) {
  TempDir dir("update_log");
  int writes = 0;
  UpdateLogOptions o = Options(dir.path());
  o.write_for_test = [&](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    if (++writes == 3) return ::pwrite(fd, buf, n / 2, off);  // short: half the frame lands
    if (writes == 4) {
      errno = EIO;
      return -1;
    }
    return ::pwrite(fd, buf, n, off);
  };
  auto log = MustOpen(o);
  AppendRange(*log, 1, 2);
  const int64_t good = log->Stats().bytes;
  EXPECT_THAT(log->Append(Rec(3).View()),
              StatusIs(absl::StatusCode::kInternal, AllOf(HasSubstr("write"), HasSubstr("Input/output error"))));
  EXPECT_THAT(log->Append(Rec(3).View()),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("failed closed"), HasSubstr("Input/output error"))));
  EXPECT_THAT(log->WaitDurable(2), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_EQ(log->last_position(), 2u);
  EXPECT_EQ(writes, 4);  // nothing was written after the failure
  const std::string seg = SegmentPaths(dir.path()).at(0);
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(seg)), good);  // partial frame taken back
  log.reset();
  log = MustOpen(Options(dir.path()));
  AppendRange(*log, 3, 3);
  EXPECT_EQ(ReadAll(*log), Range(1, 3));
}

TEST(UpdateLogTest, AFullDiskRefusesTheRecordAndLaterOnesSucceed) {
  TempDir dir("update_log");
  int writes = 0;
  UpdateLogOptions o = Options(dir.path());
  o.write_for_test = [&](int fd, const void* buf, size_t n, off_t off) -> ssize_t {
    if (++writes == 3) {
      ::pwrite(fd, buf, n / 2, off);  // half the frame lands, then the disk is full
      errno = ENOSPC;
      return -1;
    }
    return ::pwrite(fd, buf, n, off);
  };
  auto log = MustOpen(o);
  AppendRange(*log, 1, 2);
  const int64_t good = log->Stats().bytes;
  EXPECT_THAT(log->Append(Rec(3).View()),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("No space left")));
  EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(SegmentPaths(dir.path()).at(0))), good);
  AppendRange(*log, 3, 4);  // room again: the log goes on where it was
  EXPECT_THAT(log->WaitDurable(4), IsOk());
  log.reset();
  EXPECT_EQ(ReadAll(*MustOpen(Options(dir.path()))), Range(1, 4));
}

// An async log syncs each segment it closes, and the header of each one it
// starts, off the append path: after a power loss an older segment has lost
// no tail that a newer one kept, and an append never waits for the disk
// (a rotation's sync waited 0.1-0.3 s while a snapshot wrote its files).
TEST(UpdateLogTest, AnAsyncLogSyncsSegmentsInTheBackground) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.sync = false;
  o.segment_bytes = 1;  // a segment per record
  absl::Mutex mu;
  std::set<std::string> synced;
  std::set<std::thread::id> syncing_threads;
  o.sync_for_test = [&](int fd) {
    char path[64];
    std::snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    std::string target(4096, '\0');
    const ssize_t n = ::readlink(path, target.data(), target.size());
    absl::MutexLock lock(&mu);
    if (n > 0) synced.insert(std::filesystem::path(target.substr(0, n)).filename());
    syncing_threads.insert(std::this_thread::get_id());
    return 0;
  };
  {
    auto log = MustOpen(o);
    AppendRange(*log, 1, 5);  // closes the segments of records 1 to 4
    EXPECT_THAT(log->WaitDurable(5), IsOk());  // async: does not sync
  }  // the destructor waits for the syncer
  const std::vector<std::string> paths = SegmentPaths(dir.path());
  ASSERT_EQ(paths.size(), 5u);
  absl::MutexLock lock(&mu);
  // Every segment but the first (created at Open, durably), the last one
  // too: its header, by the syncer.
  for (size_t i = 1; i < paths.size(); ++i) {
    EXPECT_TRUE(synced.contains(std::filesystem::path(paths[i]).filename())) << paths[i];
  }
  EXPECT_FALSE(syncing_threads.empty());
  EXPECT_FALSE(syncing_threads.contains(std::this_thread::get_id()));
}

// What a power loss may leave of an async rotation's segment, whose header
// was not synced yet: an empty file, or a zeroed header. Open takes it as
// an empty last segment (its records, never synced, are a torn tail) and
// the log goes on from the segment before it. A header with other bytes is
// damage, not a torn tail.
TEST(UpdateLogTest, ALastSegmentWhoseHeaderNeverReachedTheDiskIsEmpty) {
  for (const std::string& left : {std::string(), std::string(24, '\0'), std::string(7, '\0'),
                                  std::string(24, '\x5a')}) {
    SCOPED_TRACE(left.size());
    TempDir dir("update_log");
    UpdateLogOptions o = Options(dir.path());
    o.segment_bytes = 1;  // a segment per record
    AppendRange(*MustOpen(o), 1, 3);
    const std::vector<std::string> paths = SegmentPaths(dir.path());
    ASSERT_EQ(paths.size(), 3u);
    {
      std::ofstream out(paths.back(), std::ios::binary | std::ios::trunc);
      out.write(left.data(), static_cast<std::streamsize>(left.size()));
    }
    absl::StatusOr<std::unique_ptr<FileUpdateLog>> log = FileUpdateLog::Open(o);
    if (!left.empty() && left[0] == '\x5a') {
      EXPECT_THAT(log, StatusIs(absl::StatusCode::kDataLoss, HasSubstr(paths.back())));
      continue;
    }
    ASSERT_THAT(log, IsOk());
    EXPECT_EQ((*log)->last_position(), 2u);
    AppendRange(**log, 3, 4);
    log->reset();
    EXPECT_EQ(ReadAll(*MustOpen(o)), Range(1, 4));
  }
}

TEST(UpdateLogTest, FailsClosedAfterAFailedSync) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.sync = true;
  o.sync_for_test = [](int) {
    errno = EIO;
    return -1;
  };
  auto log = MustOpen(o);
  AppendRange(*log, 1, 1);
  EXPECT_THAT(log->WaitDurable(1), StatusIs(absl::StatusCode::kInternal, HasSubstr("fdatasync")));
  EXPECT_THAT(log->WaitDurable(1), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  EXPECT_THAT(log->Append(Rec(2).View()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("fdatasync")));
}

TEST(UpdateLogTest, FullDiskIsResourceExhaustedAndNotFatal) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.min_free_bytes = int64_t{1} << 60;  // more than any disk has free
  auto log = MustOpen(o);
  for (int i = 0; i < 2; ++i) {  // refused each time, never failed closed
    EXPECT_THAT(log->Append(Rec(1).View()),
                StatusIs(absl::StatusCode::kResourceExhausted,
                         AllOf(HasSubstr("bytes free"), HasSubstr("1152921504606846976"))));
  }
  EXPECT_EQ(log->Stats().appends, 0);
  EXPECT_EQ(log->last_position(), 0u);
}

TEST(UpdateLogTest, UnencodableRecordIsInvalidArgumentAndNotFatal) {
  TempDir dir("update_log");
  auto log = MustOpen(Options(dir.path()));
  UpdateRecord r;
  r.kind = UpdateRecord::Kind::kCreate;  // without a spec
  EXPECT_THAT(log->Append(r), StatusIs(absl::StatusCode::kInvalidArgument, ::testing::_));
  AppendRange(*log, 1, 1);
}

TEST(UpdateLogTest, ReadStopsAtTheVisitorsError) {
  TempDir dir("update_log");
  auto log = MustOpen(Options(dir.path()));
  AppendRange(*log, 1, 5);
  std::vector<LogPosition> seen;
  EXPECT_THAT(log->Read(1,
                        [&](LogPosition p, const UpdateRecord&) {
                          seen.push_back(p);
                          return p == 3 ? absl::AbortedError("enough") : absl::OkStatus();
                        }),
              StatusIs(absl::StatusCode::kAborted, HasSubstr("enough")));
  EXPECT_EQ(seen, Range(2, 3));
}

}  // namespace
}  // namespace embedserve
