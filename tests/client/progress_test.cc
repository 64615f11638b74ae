#include "client/internal/progress.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace embedserve::internal {
namespace {

// A Progress on a string, timed by a clock the test moves.
class ProgressTest : public ::testing::Test {
 protected:
  Progress Make(bool tty) {
    return Progress("export t", "rows", &out_, tty, [this] { return now_; });
  }
  void Advance(absl::Duration d) { now_ += d; }
  std::string Take() {
    std::string s = out_.str();
    out_.str("");
    return s;
  }

  std::ostringstream out_;
  absl::Time now_ = absl::UnixEpoch();
};

TEST_F(ProgressTest, LogLinesAtMostEveryTwoSeconds) {
  Progress p = Make(/*tty=*/false);
  Advance(absl::Seconds(1));
  p.Update(100, 1000);
  EXPECT_EQ(Take(), "") << "within 2 s of the start";
  Advance(absl::Seconds(1));
  p.Update(200, 1000);
  EXPECT_EQ(Take(), "export t: 200/1000 rows (20%), 100 rows/s, ETA 8s\n");
  Advance(absl::Milliseconds(1999));
  p.Update(300, 1000);
  EXPECT_EQ(Take(), "") << "within 2 s of the last line";
  Advance(absl::Milliseconds(1));
  p.Update(400, 1000);
  EXPECT_EQ(Take(), "export t: 400/1000 rows (40%), 100 rows/s, ETA 6s\n");
}

TEST_F(ProgressTest, DoneReportsTheLastCountAtOnce) {
  Progress p = Make(/*tty=*/false);
  Advance(absl::Milliseconds(500));
  p.Update(1000, 1000);
  EXPECT_EQ(Take(), "");
  p.Done();
  EXPECT_EQ(Take(), "export t: 1000/1000 rows (100%), 2e+03 rows/s, ETA 0s\n");
}

TEST_F(ProgressTest, DoneWithoutUpdatesSaysNothing) {
  Progress p = Make(/*tty=*/false);
  p.Done();
  EXPECT_EQ(Take(), "");
}

TEST_F(ProgressTest, UnknownOrZeroTotalsReadAsComplete) {
  Progress p = Make(/*tty=*/false);
  Advance(absl::Seconds(2));
  p.Update(50, -1);  // a stream that cannot seek
  EXPECT_EQ(Take(), "export t: 50/-1 rows (100%), 25 rows/s, ETA 0s\n");
  Progress empty = Make(/*tty=*/false);
  empty.Update(0, 0);  // an empty table
  empty.Done();
  EXPECT_EQ(Take(), "export t: 0/0 rows (100%), 0 rows/s, ETA 0s\n");
}

TEST_F(ProgressTest, TerminalBarRedrawsInPlace) {
  Progress p = Make(/*tty=*/true);
  Advance(absl::Milliseconds(99));
  p.Update(10, 100);
  EXPECT_EQ(Take(), "");
  Advance(absl::Milliseconds(1));
  p.Update(50, 100);
  EXPECT_EQ(Take(), "\rexport t [###############               ]  50% 500 rows/s ETA 0s ");
  Advance(absl::Milliseconds(100));
  p.Update(100, 100);
  p.Done();
  EXPECT_EQ(Take(),
            "\rexport t [##############################] 100% 500 rows/s ETA 0s "
            "\rexport t [##############################] 100% 500 rows/s ETA 0s \n");
}

TEST_F(ProgressTest, BarStaysFullPastItsTotal) {
  Progress p = Make(/*tty=*/true);
  Advance(absl::Seconds(1));
  p.Update(150, 100);  // a file that grew while it was read
  EXPECT_EQ(Take(), "\rexport t [##############################] 150% 150 rows/s ETA 0s ");
}

}  // namespace
}  // namespace embedserve::internal
