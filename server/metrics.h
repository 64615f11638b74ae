#ifndef EMBEDSERVE_SERVER_METRICS_H_
#define EMBEDSERVE_SERVER_METRICS_H_

// Metrics in Prometheus' text exposition format, version 0.0.4
// (https://prometheus.io/docs/instrumenting/exposition_formats/). Debian 12
// has no C++ Prometheus client, so this is the little of one embedserve
// needs: metric families built at scrape time by collectors, and a renderer.
// Hot-path counting happens elsewhere (server/internal/sharded_counters.h,
// server/server_metrics.h); collectors only read those.

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace embedserve {

enum class MetricType { kCounter, kGauge, kHistogram };

// Label name -> value, in the order they are rendered.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// One labelled value of a counter or gauge.
struct MetricSample {
  MetricLabels labels;
  double value = 0;
};

// One labelled histogram. `counts[i]` is the number of observations in
// bucket i alone (not cumulative): (bounds[i-1], bounds[i]] for i <
// bounds.size(), and above the last bound for i == bounds.size().
// REQUIRES: bounds strictly increasing and finite; counts.size() ==
// bounds.size() + 1.
struct HistogramSample {
  MetricLabels labels;
  std::vector<double> bounds;
  std::vector<uint64_t> counts;
  double sum = 0;
};

// A metric family: one # HELP and # TYPE, then its samples (counter and
// gauge: `samples`; histogram: `histograms`, each rendered as cumulative
// _bucket{le=...} lines ending with le="+Inf", then _sum and _count).
// REQUIRES: `name` matches [a-zA-Z_:][a-zA-Z0-9_:]*, label names match
// [a-zA-Z_][a-zA-Z0-9_]* and are not "le" in a histogram; a counter's name
// ends in _total (promtool's lint). Label values and `help` may hold any
// bytes: they are escaped.
struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kGauge;
  std::vector<MetricSample> samples;
  std::vector<HistogramSample> histograms;
};

// Renders families in the text format, in the order given.
std::string RenderMetricsText(absl::Span<const MetricFamily> families);

// The text format's escapes: in a label value \ " and newline become \\ \"
// and \n; in HELP text \ and newline become \\ and \n.
std::string EscapeLabelValue(absl::string_view value);
std::string EscapeHelp(absl::string_view help);
// A sample value: integers (up to 2^53) without exponent or fraction, so
// that large counters keep every digit; NaN, +Inf, -Inf as Prometheus spells
// them; otherwise the shortest text that reads back as the same double.
std::string FormatMetricValue(double value);

// The content type of RenderMetricsText's output.
inline constexpr absl::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

// Collectors registered once, called on every scrape.
//
// Thread-safe. Collectors run on the scraping thread, one scrape at a time;
// they must not block for long (they read counters, /proc and RocksDB
// properties) and must stay valid until the registry is destroyed.
class MetricsRegistry {
 public:
  // Appends this collector's families to *out.
  using Collector = std::function<void(std::vector<MetricFamily>* out)>;

  void AddCollector(Collector collector) ABSL_LOCKS_EXCLUDED(mu_);
  // Calls every collector in the order added and renders what they gave.
  std::string Scrape() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  std::vector<Collector> collectors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace embedserve

#endif  // EMBEDSERVE_SERVER_METRICS_H_
