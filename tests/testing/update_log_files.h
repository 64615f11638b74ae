#ifndef EMBEDSERVE_TESTS_TESTING_UPDATE_LOG_FILES_H_
#define EMBEDSERVE_TESTS_TESTING_UPDATE_LOG_FILES_H_

// FileUpdateLog on real files, for tests/storage/update_log_test.cc and
// update_log_recovery_test.cc: Rec(n), a record whose contents follow from n;
// Options(dir) without a free-space reserve; appending and reading back
// ranges of Rec(n) at position n; the segment files and their bytes.
//   auto log = MustOpen(Options(dir.path()));
//   AppendRange(*log, 1, 3);
//   EXPECT_EQ(ReadAll(*log), Range(1, 3));

#include <cstdint>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/internal/log_segment.h"
#include "storage/update_log.h"
#include "tests/testing/status_matchers.h"

namespace embedserve::testing {

// A record to append, owning what its view points at.
struct Rec {
  explicit Rec(int64_t n, std::string table = "tbl") : table(std::move(table)) {
    for (int64_t i = 0; i < n % 5 + 1; ++i) ids.push_back(n * 10 + i);
    for (int64_t i = 0; i < 3 * static_cast<int64_t>(ids.size()); ++i) floats.push_back(n + 0.25f * i);
  }
  UpdateRecord View() const {
    UpdateRecord r;
    r.kind = UpdateRecord::Kind::kPush;
    r.table = table;
    r.generation = 1;
    r.version = static_cast<int64_t>(ids[0]);
    r.trainer = "tr";
    r.trainer_sequence = static_cast<uint64_t>(ids[0]);
    r.ids = ids;
    r.floats = floats;
    return r;
  }
  std::string table;
  std::vector<int64_t> ids;
  std::vector<float> floats;
};

inline UpdateLogOptions Options(const std::string& dir) {
  UpdateLogOptions o;
  o.dir = dir;
  o.min_free_bytes = 0;
  return o;
}

inline std::unique_ptr<FileUpdateLog> MustOpen(const UpdateLogOptions& o) {
  absl::StatusOr<std::unique_ptr<FileUpdateLog>> log = FileUpdateLog::Open(o);
  EXPECT_THAT(log, IsOk());
  return log.ok() ? std::move(*log) : nullptr;
}

// Appends Rec(n) for n in [from, to], checking the positions.
inline void AppendRange(FileUpdateLog& log, int64_t from, int64_t to) {
  for (int64_t n = from; n <= to; ++n) {
    absl::StatusOr<LogPosition> p = log.Append(Rec(n).View());
    ASSERT_THAT(p, IsOk());
    ASSERT_EQ(*p, static_cast<LogPosition>(n));
  }
}

// The positions Read(after) visits, checking each record is Rec(position).
inline std::vector<LogPosition> ReadAll(FileUpdateLog& log, LogPosition after = 0) {
  std::vector<LogPosition> seen;
  absl::Status s = log.Read(after, [&](LogPosition p, const UpdateRecord& r) {
    const Rec want(static_cast<int64_t>(p));
    EXPECT_EQ(r.table, "tbl");
    EXPECT_THAT(r.ids, ::testing::ElementsAreArray(want.ids)) << "position " << p;
    EXPECT_THAT(r.floats, ::testing::ElementsAreArray(want.floats)) << "position " << p;
    EXPECT_EQ(r.trainer_sequence, static_cast<uint64_t>(want.ids[0]));
    seen.push_back(p);
    return absl::OkStatus();
  });
  EXPECT_THAT(s, IsOk());
  return seen;
}

inline std::vector<LogPosition> Range(LogPosition from, LogPosition to) {
  std::vector<LogPosition> v;
  for (LogPosition p = from; p <= to; ++p) v.push_back(p);
  return v;
}

inline std::vector<std::string> SegmentPaths(const std::string& dir) {
  absl::StatusOr<std::vector<LogPosition>> firsts = internal::ListSegments(dir, false);
  EXPECT_THAT(firsts, IsOk());
  std::vector<std::string> paths;
  for (LogPosition f : *firsts) paths.push_back(dir + "/" + internal::SegmentFileName(f));
  return paths;
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
inline void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}


}  // namespace embedserve::testing

#endif  // EMBEDSERVE_TESTS_TESTING_UPDATE_LOG_FILES_H_
