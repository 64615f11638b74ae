#include "server/metrics.h"

#include <charconv>
#include <cmath>

#include "absl/strings/str_cat.h"

namespace embedserve {
namespace {

const char* TypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// name{a="x",b="y"} value\n; `extra` is one more label (a histogram's le)
// rendered last.
void AppendSample(std::string* out, absl::string_view name, const MetricLabels& labels,
                  const std::pair<absl::string_view, absl::string_view>* extra, double value) {
  out->append(name.data(), name.size());
  if (!labels.empty() || extra != nullptr) {
    out->push_back('{');
    bool first = true;
    auto label = [&](absl::string_view key, absl::string_view val) {
      if (!first) out->push_back(',');
      first = false;
      absl::StrAppend(out, key, "=\"", EscapeLabelValue(val), "\"");
    };
    for (const auto& [key, val] : labels) label(key, val);
    if (extra != nullptr) label(extra->first, extra->second);
    out->push_back('}');
  }
  absl::StrAppend(out, " ", FormatMetricValue(value), "\n");
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string EscapeHelp(absl::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  constexpr double kExact = 9007199254740992.0;  // 2^53
  if (value == std::trunc(value) && std::fabs(value) <= kExact) {
    return absl::StrCat(static_cast<int64_t>(value));
  }
  char buf[64];
  // Shortest round trip in %g style (as Go's FormatFloat(v, 'g', -1) of the
  // Prometheus clients): 0.0005, 2.5e-05.
  const auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::general);
  return std::string(buf, end);
}

std::string RenderMetricsText(absl::Span<const MetricFamily> families) {
  std::string out;
  for (const MetricFamily& f : families) {
    absl::StrAppend(&out, "# HELP ", f.name, " ", EscapeHelp(f.help), "\n");
    absl::StrAppend(&out, "# TYPE ", f.name, " ", TypeName(f.type), "\n");
    if (f.type != MetricType::kHistogram) {
      for (const MetricSample& s : f.samples)
        AppendSample(&out, f.name, s.labels, nullptr, s.value);
      continue;
    }
    const std::string bucket = absl::StrCat(f.name, "_bucket");
    for (const HistogramSample& h : f.histograms) {
      uint64_t cumulative = 0;
      for (size_t i = 0; i < h.counts.size(); ++i) {
        cumulative += h.counts[i];
        const std::string le = i < h.bounds.size() ? FormatMetricValue(h.bounds[i]) : "+Inf";
        const std::pair<absl::string_view, absl::string_view> extra("le", le);
        AppendSample(&out, bucket, h.labels, &extra, static_cast<double>(cumulative));
      }
      AppendSample(&out, absl::StrCat(f.name, "_sum"), h.labels, nullptr, h.sum);
      AppendSample(&out, absl::StrCat(f.name, "_count"), h.labels, nullptr,
                   static_cast<double>(cumulative));
    }
  }
  return out;
}

void MetricsRegistry::AddCollector(Collector collector) {
  absl::MutexLock lock(&mu_);
  collectors_.push_back(std::move(collector));
}

std::string MetricsRegistry::Scrape() const {
  std::vector<MetricFamily> families;
  {
    // Held while collecting: one scrape at a time, and collectors are
    // never called concurrently with themselves.
    absl::MutexLock lock(&mu_);
    for (const Collector& c : collectors_) c(&families);
  }
  return RenderMetricsText(families);
}

}  // namespace embedserve
