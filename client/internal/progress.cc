#include "client/internal/progress.h"

#include <unistd.h>

#include <algorithm>
#include <iostream>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace embedserve::internal {

Progress::Progress(std::string label, std::string unit)
    : Progress(std::move(label), std::move(unit), &std::cerr, isatty(STDERR_FILENO),
               [] { return absl::Now(); }) {}

Progress::Progress(std::string label, std::string unit, std::ostream* out, bool tty,
                   std::function<absl::Time()> now)
    : label_(std::move(label)),
      unit_(std::move(unit)),
      out_(out),
      tty_(tty),
      now_(std::move(now)),
      start_(now_()),
      last_(start_) {}

void Progress::Update(int64_t done, int64_t total) {
  updated_ = true;
  done_ = done;
  total_ = total;
  const absl::Time now = now_();
  if (now - last_ < (tty_ ? absl::Milliseconds(100) : absl::Seconds(2))) return;
  Report(now);
}

void Progress::Done() {
  if (!updated_) return;
  Report(now_());
  if (tty_) *out_ << "\n";
}

void Progress::Report(absl::Time now) {
  last_ = now;
  const double secs = std::max(1e-6, absl::ToDoubleSeconds(now - start_));
  const double rate = static_cast<double>(done_) / secs;
  const double left = static_cast<double>(std::max<int64_t>(total_ - done_, 0));
  const double eta = rate > 0 && total_ > 0 ? left / rate : 0;
  const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 1;
  if (tty_) {
    const int width = 30;
    // A file that grew during an import can pass its total: the bar stays full.
    const int filled = std::clamp(static_cast<int>(frac * width), 0, width);
    *out_ << absl::StrFormat("\r%s [%s%s] %3.0f%% %.3g %s/s ETA %.0fs ", label_,
                             std::string(filled, '#'), std::string(width - filled, ' '), 100 * frac,
                             rate, unit_, eta)
          << std::flush;
  } else {
    *out_ << absl::StrFormat("%s: %d/%d %s (%.0f%%), %.3g %s/s, ETA %.0fs\n", label_, done_, total_,
                             unit_, 100 * frac, rate, unit_, eta);
  }
}

}  // namespace embedserve::internal
