// The update log's files: segment names, durable creation, link-or-copy,
// and ScanSegment's window (after, through) and its torn-tail rule on a
// segment written by hand.
#include "storage/internal/log_segment.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/internal/log_record_codec.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/temp_dir.h"

namespace embedserve::internal {
namespace {

using ::embedserve::testing::IsOk;
using ::embedserve::testing::StatusIs;
using ::embedserve::testing::TempDir;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(LogSegmentTest, NamesRoundTrip) {
  EXPECT_EQ(SegmentFileName(42), "log-00000000000000000042.seg");
  LogPosition first = 0;
  EXPECT_TRUE(ParseSegmentFileName("log-18446744073709551615.seg", &first));
  EXPECT_EQ(first, ~LogPosition{0});
  for (const char* bad : {"log-42.seg", "log-0000000000000000004x.seg",
                          "log-00000000000000000042.seg.tmp", "x-00000000000000000042.seg",
                          "log-99999999999999999999.seg"}) {
    EXPECT_FALSE(ParseSegmentFileName(bad, &first)) << bad;
  }
}

// A segment starting at `first` with records first..first+n-1, each with
// one id (its position).
std::string Segment(LogPosition first, int n) {
  std::string bytes = EncodeSegmentHeader(first), frame;
  for (int i = 0; i < n; ++i) {
    const int64_t id = static_cast<int64_t>(first) + i;
    UpdateRecord r;
    r.table = "t";
    r.ids = absl::MakeConstSpan(&id, 1);
    EXPECT_THAT(EncodeFrame(first + i, r, &frame), IsOk());
    bytes += frame;
  }
  return bytes;
}

class ScanTest : public ::testing::Test {
 protected:
  absl::StatusOr<SegmentScan> Scan(const std::string& bytes, ScanOptions o) {
    std::ofstream(path_, std::ios::binary | std::ios::trunc) << bytes;
    const int fd = ::open(path_.c_str(), O_RDONLY);
    o.path = path_;
    o.end = static_cast<int64_t>(bytes.size());
    absl::StatusOr<SegmentScan> scan = ScanSegment(fd, o);
    ::close(fd);
    return scan;
  }
  TempDir dir_{"log_segment"};
  std::string path_ = dir_.Path(SegmentFileName(5));
};

TEST_F(ScanTest, VisitsTheWindowAndStopsAfterThrough) {
  std::vector<LogPosition> seen;
  const std::function<absl::Status(LogPosition, const UpdateRecord&)> visit =
      [&](LogPosition p, const UpdateRecord& r) {
        EXPECT_EQ(r.ids[0], static_cast<int64_t>(p));
        seen.push_back(p);
        return absl::OkStatus();
      };
  ScanOptions o;
  o.expect_first = 5;
  o.after = 6;
  o.through = 8;
  o.visit = &visit;
  absl::StatusOr<SegmentScan> scan = Scan(Segment(5, 6), o);
  ASSERT_THAT(scan, IsOk());
  EXPECT_THAT(seen, ElementsAre(7, 8));
  EXPECT_EQ(scan->next, 9u);
  o.expect_first = 4;
  EXPECT_THAT(Scan(Segment(5, 6), o),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("starts at position 5, expected 4")));
}

// A segment of 4 MiB and more is read through a mapping: its records pin
// it (UpdateRecord::pin), so that their ids and floats can be used after
// the scan is over (parallel replay queues them without a copy); a small
// segment is read into a reused buffer and pins nothing.
TEST_F(ScanTest, RecordsOfAMappedSegmentPinTheirBytesPastTheScan) {
  std::string bytes = EncodeSegmentHeader(5), frame;
  const int64_t per_record = 200'000;  // 1.6 MB of ids each: 3 records, 4.8 MB
  for (int i = 0; i < 3; ++i) {
    std::vector<int64_t> ids(per_record);
    for (int64_t j = 0; j < per_record; ++j) ids[j] = i * per_record + j;
    UpdateRecord r;
    r.table = "t";
    r.ids = ids;
    ASSERT_THAT(EncodeFrame(5 + i, r, &frame), IsOk());
    bytes += frame;
  }
  ASSERT_GE(bytes.size(), size_t{4} << 20);
  std::vector<std::shared_ptr<const void>> pins;
  std::vector<absl::Span<const int64_t>> kept;
  const std::function<absl::Status(LogPosition, const UpdateRecord&)> visit =
      [&](LogPosition, const UpdateRecord& r) {
        pins.push_back(r.pin);
        kept.push_back(r.ids);
        return absl::OkStatus();
      };
  ScanOptions o;
  o.visit = &visit;
  ASSERT_THAT(Scan(bytes, o), IsOk());  // the file is closed, the buffer gone
  ASSERT_EQ(kept.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    ASSERT_NE(pins[i], nullptr) << i;
    ASSERT_EQ(kept[i].size(), static_cast<size_t>(per_record));
    int64_t wrong = 0;
    for (int64_t j = 0; j < per_record; ++j) wrong += kept[i][j] != i * per_record + j;
    EXPECT_EQ(wrong, 0) << "record " << i;
  }
  pins.clear();
  ASSERT_THAT(Scan(Segment(5, 3), o), IsOk());
  ASSERT_EQ(pins.size(), 3u);
  for (const auto& pin : pins) EXPECT_EQ(pin, nullptr);
}

TEST_F(ScanTest, TornTailOnlyInTheLastSegment) {
  const std::string whole = Segment(5, 3);
  const std::string cut = whole.substr(0, whole.size() - 1);
  ScanOptions o;
  o.last_segment = true;
  absl::StatusOr<SegmentScan> scan = Scan(cut, o);
  ASSERT_THAT(scan, IsOk());
  EXPECT_EQ(scan->next, 7u);
  EXPECT_EQ(scan->good_bytes, static_cast<int64_t>(Segment(5, 2).size()));
  EXPECT_THAT(scan->torn, HasSubstr("runs past the end"));
  o.last_segment = false;
  EXPECT_THAT(Scan(cut, o), StatusIs(absl::StatusCode::kDataLoss,
                                     HasSubstr("position 7, table 't' by its unchecked header")));
}

TEST_F(ScanTest, WrongPositionWithAGoodCrcIsDataLoss) {
  std::string bytes = Segment(5, 1);
  std::string frame;
  UpdateRecord r;
  r.table = "t";
  ASSERT_THAT(EncodeFrame(9, r, &frame), IsOk());  // 6 expected
  ScanOptions o;
  o.last_segment = true;  // not a torn tail: its CRC matches
  EXPECT_THAT(Scan(bytes + frame, o),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("carries position 9")));
}

TEST(LogSegmentFilesTest, CreateSegmentIsDurableAndExclusive) {
  TempDir dir("log_segment");
  absl::StatusOr<int> fd = CreateSegment(dir.path(), 7);
  ASSERT_THAT(fd, IsOk());
  ::close(*fd);
  const std::string path = dir.Path(SegmentFileName(7));
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), {});
  EXPECT_EQ(bytes, EncodeSegmentHeader(7));
  EXPECT_THAT(CreateSegment(dir.path(), 7), StatusIs(absl::StatusCode::kAlreadyExists, ::testing::_));
  EXPECT_THAT(ListSegments(dir.path(), true), IsOk());
  EXPECT_THAT(*ListSegments(dir.path(), true), ElementsAre(7));
  ASSERT_THAT(SyncLinkOrCopy(path, dir.Path("copy.seg")), IsOk());
  EXPECT_EQ(std::filesystem::hard_link_count(path), 2u);
  EXPECT_THAT(SyncLinkOrCopy(dir.Path("absent"), dir.Path("x")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("absent")));
}

}  // namespace
}  // namespace embedserve::internal
