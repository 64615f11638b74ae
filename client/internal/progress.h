#ifndef EMBEDSERVE_CLIENT_INTERNAL_PROGRESS_H_
#define EMBEDSERVE_CLIENT_INTERNAL_PROGRESS_H_

// Progress of a long transfer (embedctl import and export), for a person at
// a terminal or for a log.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>

#include "absl/time/time.h"

namespace embedserve::internal {

// Reports `done` of `total` units with the rate and the time left. On a
// terminal: one bar redrawn in place ('\r'), at most every 100 ms, e.g.
//   export user [###############               ]  50% 2.1e+05 rows/s ETA 0s
// Otherwise (logs, CI): a plain line at most every 2 s, e.g.
//   export user: 50000/100000 rows (50%), 2.1e+05 rows/s, ETA 0s
// Done reports the last count at once, so the last line of a log is the
// final count.
//
// Not thread-safe.
class Progress {
 public:
  // Reports on stderr, as a bar if stderr is a terminal. The transfer
  // starts now.
  Progress(std::string label, std::string unit);
  // Reports on `out`, as a bar if `tty`, timed by `now` (tests).
  Progress(std::string label, std::string unit, std::ostream* out, bool tty,
           std::function<absl::Time()> now);

  // `done` of `total` units so far (total -1 when unknown); reported if
  // the last report is old enough. The signature of TransferProgress.
  void Update(int64_t done, int64_t total);
  // The transfer ended: reports the last Update now (nothing if there was
  // none) and ends the bar's line.
  void Done();

 private:
  void Report(absl::Time now);

  const std::string label_;
  const std::string unit_;
  std::ostream* const out_;
  const bool tty_;
  const std::function<absl::Time()> now_;
  const absl::Time start_;
  absl::Time last_;  // of the last report, or start_
  bool updated_ = false;
  int64_t done_ = 0, total_ = 0;
};

}  // namespace embedserve::internal

#endif  // EMBEDSERVE_CLIENT_INTERNAL_PROGRESS_H_
