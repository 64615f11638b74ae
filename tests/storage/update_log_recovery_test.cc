// FileUpdateLog opening what a crash or a damaged disk left: the torn-tail
// rule at every byte of the last record (cut off, appending goes on after
// it), corruption anywhere else reported as DataLoss (never skipped), a
// crash between DropThrough's deletes, read-only opens, leftover temporaries.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/update_log.h"
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
using ::embedserve::testing::ReadFile;
using ::embedserve::testing::SegmentPaths;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::embedserve::testing::WriteFile;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Cutting the last record's frame at every byte (as a crash mid-append
// does) leaves the earlier records, and appending goes on after them.
TEST(UpdateLogRecoveryTest, TornTailAtEveryByteIsCutOff) {
  TempDir dir("update_log");
  int64_t last_start = 0;
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 2);
    last_start = log->Stats().bytes;
    AppendRange(*log, 3, 3);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  const std::string whole = ReadFile(seg);
  for (int64_t cut = last_start; cut < static_cast<int64_t>(whole.size()); ++cut) {
    SCOPED_TRACE(cut);
    WriteFile(seg, whole.substr(0, cut));
    auto log = MustOpen(Options(dir.path()));
    ASSERT_NE(log, nullptr);
    EXPECT_EQ(log->last_position(), 2u);
    EXPECT_EQ(static_cast<int64_t>(std::filesystem::file_size(seg)), last_start);
    AppendRange(*log, 3, 3);
    EXPECT_EQ(ReadAll(*log), Range(1, 3));
  }
}

TEST(UpdateLogRecoveryTest, FlippedByteInTheLastRecordIsATornTail) {
  TempDir dir("update_log");
  int64_t last_start = 0;
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 2);
    last_start = log->Stats().bytes;
    AppendRange(*log, 3, 3);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  std::string bytes = ReadFile(seg);
  bytes[last_start + 40] ^= 0x10;
  WriteFile(seg, bytes);
  auto log = MustOpen(Options(dir.path()));
  EXPECT_EQ(log->last_position(), 2u);
  AppendRange(*log, 3, 4);
  EXPECT_EQ(ReadAll(*log), Range(1, 4));
}

TEST(UpdateLogRecoveryTest, ZerosAfterTheLastRecordAreATornTail) {
  TempDir dir("update_log");
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 2);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  WriteFile(seg, ReadFile(seg) + std::string(4096, '\0'));
  auto log = MustOpen(Options(dir.path()));
  EXPECT_EQ(log->last_position(), 2u);
  AppendRange(*log, 3, 3);
  EXPECT_EQ(ReadAll(*log), Range(1, 3));
}

TEST(UpdateLogRecoveryTest, FlippedByteInAMiddleRecordIsDataLoss) {
  TempDir dir("update_log");
  int64_t second = 0;
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 1);
    second = log->Stats().bytes;
    AppendRange(*log, 2, 3);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  std::string bytes = ReadFile(seg);
  bytes[second + 60] ^= 0x01;  // in record 2's trainer sequence
  WriteFile(seg, bytes);
  EXPECT_THAT(FileUpdateLog::Open(Options(dir.path())),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr(seg), HasSubstr("checksum mismatch"),
                             HasSubstr("byte offset " + std::to_string(second)),
                             HasSubstr("position 2"), HasSubstr("table 'tbl'"))));
  UpdateLogOptions ro = Options(dir.path());
  ro.read_only = true;
  EXPECT_THAT(FileUpdateLog::Open(ro), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("position 2")));
}

TEST(UpdateLogRecoveryTest, BadRecordInAnEarlierSegmentIsDataLoss) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 200;
  {
    auto log = MustOpen(o);
    AppendRange(*log, 1, 10);
  }
  const std::vector<std::string> segs = SegmentPaths(dir.path());
  ASSERT_GE(segs.size(), 3u);
  // The last byte of the first segment: the end of its last record, which
  // would be a torn tail in the last segment.
  // Open checks a closed segment's header only; reading it finds the damage.
  std::string bytes = ReadFile(segs[0]);
  bytes.back() ^= 0x01;
  WriteFile(segs[0], bytes);
  {
    auto log = MustOpen(o);
    EXPECT_THAT(log->Read(0, [](LogPosition, const UpdateRecord&) { return absl::OkStatus(); }),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(segs[0]), HasSubstr("checksum"))));
  }
  // Cut short instead: also DataLoss.
  WriteFile(segs[0], ReadFile(segs[0]).substr(0, bytes.size() - 5));
  {
    auto log = MustOpen(o);
    EXPECT_THAT(log->Read(0, [](LogPosition, const UpdateRecord&) { return absl::OkStatus(); }),
                StatusIs(absl::StatusCode::kDataLoss, HasSubstr(segs[0])));
  }
  // A damaged header is found at Open.
  bytes = ReadFile(segs[1]);
  bytes[3] ^= 0x01;
  WriteFile(segs[1], bytes);
  EXPECT_THAT(FileUpdateLog::Open(o), StatusIs(absl::StatusCode::kDataLoss, HasSubstr(segs[1])));
}

TEST(UpdateLogRecoveryTest, ALargeSegmentIsReadWholeAndDamageInItIsDataLoss) {
  // Segments of 4 MiB and more are read through a mapping (a restart's
  // path): every record comes back, and a flipped byte in a record in the
  // middle is DataLoss naming the segment, the position and the table.
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 5 << 20;
  std::vector<int64_t> ids(10000);
  std::vector<float> floats(ids.size() * 4);
  {
    auto log = MustOpen(o);
    for (int n = 1; n <= 80; ++n) {  // 240 KB each: several segments
      for (size_t i = 0; i < ids.size(); ++i) ids[i] = n * 100000 + static_cast<int64_t>(i);
      for (size_t i = 0; i < floats.size(); ++i) floats[i] = n + 0.5f * static_cast<float>(i);
      UpdateRecord r;
      r.kind = UpdateRecord::Kind::kPush;
      r.table = "big";
      r.generation = 1;
      r.ids = ids;
      r.floats = floats;
      ASSERT_THAT(log->Append(r), IsOk());
    }
  }
  const std::vector<std::string> segs = SegmentPaths(dir.path());
  ASSERT_GE(segs.size(), 2u);
  ASSERT_GE(std::filesystem::file_size(segs[0]), size_t{5} << 20);
  auto read_all = [&](FileUpdateLog& log, std::vector<LogPosition>* seen) {
    return log.Read(0, [&](LogPosition p, const UpdateRecord& r) {
      EXPECT_EQ(r.ids.size(), 10000u);
      EXPECT_EQ(r.ids[9999], static_cast<int64_t>(p) * 100000 + 9999) << "position " << p;
      EXPECT_EQ(r.floats[39999], static_cast<float>(p) + 0.5f * 39999) << "position " << p;
      seen->push_back(p);
      return absl::OkStatus();
    });
  };
  {
    auto log = MustOpen(o);
    std::vector<LogPosition> seen;
    ASSERT_THAT(read_all(*log, &seen), IsOk());
    EXPECT_EQ(seen, Range(1, 80));
  }
  std::string bytes = ReadFile(segs[0]);
  bytes[bytes.size() / 2] ^= 0x10;  // a float of a record in the middle
  WriteFile(segs[0], bytes);
  {
    auto log = MustOpen(o);
    std::vector<LogPosition> seen;
    EXPECT_THAT(read_all(*log, &seen),
                StatusIs(absl::StatusCode::kDataLoss,
                         AllOf(HasSubstr(segs[0]), HasSubstr("checksum mismatch"),
                               HasSubstr("(position " + std::to_string(seen.size() + 1)),
                               HasSubstr("table 'big'"))));
    EXPECT_GE(seen.size(), 5u);  // the records before it were read
  }
}

TEST(UpdateLogRecoveryTest, MissingMiddleSegmentIsDataLoss) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 200;
  {
    auto log = MustOpen(o);
    AppendRange(*log, 1, 10);
  }
  const std::vector<std::string> segs = SegmentPaths(dir.path());
  ASSERT_GE(segs.size(), 3u);
  std::filesystem::remove(segs[1]);
  auto log = MustOpen(o);
  EXPECT_THAT(log->Read(0, [](LogPosition, const UpdateRecord&) { return absl::OkStatus(); }),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr(segs[2]), HasSubstr("missing"))));
}

// A damaged length field must not be read as a huge allocation nor, when a
// good record follows it, as a torn tail.
TEST(UpdateLogRecoveryTest, CorruptLengthIsDataLossNotATornTail) {
  TempDir dir("update_log");
  int64_t second = 0;
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 1);
    second = log->Stats().bytes;
    AppendRange(*log, 2, 3);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  std::string bytes = ReadFile(seg);
  const uint32_t huge = 0xFFFFFFF8u;
  std::memcpy(bytes.data() + second, &huge, 4);
  WriteFile(seg, bytes);
  EXPECT_THAT(FileUpdateLog::Open(Options(dir.path())),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("frame length 4294967288 runs past"), HasSubstr("position 2"),
                             HasSubstr("record 3 follows"))));
}

// DropThrough deletes oldest first: a crash after deleting some opens.
TEST(UpdateLogRecoveryTest, CrashBetweenDeletesOpens) {
  TempDir dir("update_log");
  UpdateLogOptions o = Options(dir.path());
  o.segment_bytes = 200;
  {
    auto log = MustOpen(o);
    AppendRange(*log, 1, 20);
  }
  const std::vector<std::string> segs = SegmentPaths(dir.path());
  ASSERT_GE(segs.size(), 4u);
  std::filesystem::remove(segs[0]);
  auto log = MustOpen(o);
  const LogPosition first = log->Stats().first_position;
  EXPECT_GT(first, 1u);
  EXPECT_EQ(ReadAll(*log, first - 1), Range(first, 20));
  AppendRange(*log, 21, 21);
}

TEST(UpdateLogRecoveryTest, ReadOnlyReadsUpToATornTailAndChangesNothing) {
  TempDir dir("update_log");
  {
    auto log = MustOpen(Options(dir.path()));
    AppendRange(*log, 1, 3);
  }
  const std::string seg = SegmentPaths(dir.path()).at(0);
  const std::string cut = ReadFile(seg).substr(0, std::filesystem::file_size(seg) - 3);
  WriteFile(seg, cut);
  UpdateLogOptions ro = Options(dir.path());
  ro.read_only = true;
  auto log = MustOpen(ro);
  EXPECT_EQ(ReadAll(*log), Range(1, 2));
  EXPECT_EQ(ReadFile(seg), cut);
  EXPECT_THAT(log->DropThrough(1), StatusIs(absl::StatusCode::kFailedPrecondition, ::testing::_));
  ro.dir = dir.Path("absent");
  EXPECT_THAT(FileUpdateLog::Open(ro), StatusIs(absl::StatusCode::kNotFound, ::testing::_));
  EXPECT_FALSE(std::filesystem::exists(ro.dir));
}

TEST(UpdateLogRecoveryTest, OpenCreatesTheDirectoryAndRemovesTemporaries) {
  TempDir dir("update_log");
  const std::string nested = dir.Path("a/b");
  {
    auto log = MustOpen(Options(nested));
    AppendRange(*log, 1, 1);
  }
  WriteFile(nested + "/log-00000000000000000002.seg.tmp", "half a header");
  auto log = MustOpen(Options(nested));
  EXPECT_FALSE(std::filesystem::exists(nested + "/log-00000000000000000002.seg.tmp"));
  AppendRange(*log, 2, 2);
  EXPECT_EQ(ReadAll(*log), Range(1, 2));
}

}  // namespace
}  // namespace embedserve
