#include "server/metrics.h"

#include <chrono>
#include <cmath>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/internal/sharded_counters.h"
#include "server/server_metrics.h"

namespace embedserve {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
}

TEST(MetricsTextTest, CounterAndGaugeHaveHelpTypeAndLabels) {
  MetricFamily counter{"demo_requests_total", "Requests.", MetricType::kCounter, {}, {}};
  counter.samples.push_back({{{"method", "Lookup"}, {"code", "OK"}}, 3});
  counter.samples.push_back({{{"method", "Lookup"}, {"code", "NOT_FOUND"}}, 1});
  MetricFamily gauge{"demo_tables", "Tables.", MetricType::kGauge, {{{}, 2}}, {}};
  const MetricFamily families[] = {counter, gauge};
  EXPECT_THAT(
      Lines(RenderMetricsText(families)),
      ElementsAre("# HELP demo_requests_total Requests.", "# TYPE demo_requests_total counter",
                  "demo_requests_total{method=\"Lookup\",code=\"OK\"} 3",
                  "demo_requests_total{method=\"Lookup\",code=\"NOT_FOUND\"} 1",
                  "# HELP demo_tables Tables.", "# TYPE demo_tables gauge", "demo_tables 2"));
}

TEST(MetricsTextTest, LabelValuesAndHelpAreEscaped) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeLabelValue("plain {} ,= text"), "plain {} ,= text");
  // HELP escapes backslash and newline only; a quote stays.
  EXPECT_EQ(EscapeHelp("say \"hi\"\\now\nnext"), "say \"hi\"\\\\now\\nnext");
  MetricFamily f{"demo_gauge", "Line one\nline two \\ end", MetricType::kGauge, {}, {}};
  f.samples.push_back({{{"table", "we\"ird\\na\nme"}}, 1});
  const std::string text = RenderMetricsText({f});
  EXPECT_THAT(Lines(text), ElementsAre("# HELP demo_gauge Line one\\nline two \\\\ end",
                                       "# TYPE demo_gauge gauge",
                                       "demo_gauge{table=\"we\\\"ird\\\\na\\nme\"} 1"));
}

TEST(MetricsTextTest, HistogramBucketsAreCumulativeAndEndWithInf) {
  MetricFamily f{"demo_seconds", "Latency.", MetricType::kHistogram, {}, {}};
  HistogramSample h;
  h.labels = {{"method", "Lookup"}};
  h.bounds = {0.001, 0.01, 1};
  h.counts = {2, 0, 5, 1};  // per bucket, not cumulative
  h.sum = 3.25;
  f.histograms.push_back(h);
  EXPECT_THAT(Lines(RenderMetricsText({f})),
              ElementsAre("# HELP demo_seconds Latency.", "# TYPE demo_seconds histogram",
                          "demo_seconds_bucket{method=\"Lookup\",le=\"0.001\"} 2",
                          "demo_seconds_bucket{method=\"Lookup\",le=\"0.01\"} 2",
                          "demo_seconds_bucket{method=\"Lookup\",le=\"1\"} 7",
                          "demo_seconds_bucket{method=\"Lookup\",le=\"+Inf\"} 8",
                          "demo_seconds_sum{method=\"Lookup\"} 3.25",
                          "demo_seconds_count{method=\"Lookup\"} 8"));
}

TEST(MetricsTextTest, HistogramWithoutLabelsHasOnlyLe) {
  MetricFamily f{"h", "H.", MetricType::kHistogram, {}, {}};
  f.histograms.push_back({{}, {0.5}, {0, 0}, 0});
  EXPECT_THAT(Lines(RenderMetricsText({f})),
              ElementsAre("# HELP h H.", "# TYPE h histogram", "h_bucket{le=\"0.5\"} 0",
                          "h_bucket{le=\"+Inf\"} 0", "h_sum 0", "h_count 0"));
}

TEST(MetricsTextTest, ValuesKeepEveryDigit) {
  EXPECT_EQ(FormatMetricValue(0), "0");
  EXPECT_EQ(FormatMetricValue(-3), "-3");
  EXPECT_EQ(FormatMetricValue(123456789012345.0), "123456789012345");  // no 1.23457e+14
  EXPECT_EQ(FormatMetricValue(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(FormatMetricValue(0.1), "0.1");
  EXPECT_EQ(FormatMetricValue(2.5e-05), "2.5e-05");
  EXPECT_EQ(FormatMetricValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatMetricValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatMetricValue(std::nan("")), "NaN");
  const double third = 1.0 / 3;
  EXPECT_EQ(std::stod(FormatMetricValue(third)), third);  // round-trips
}

TEST(MetricsRegistryTest, CallsCollectorsInOrderOnEveryScrape) {
  MetricsRegistry registry;
  int scrapes = 0;
  registry.AddCollector([&](std::vector<MetricFamily>* out) {
    ++scrapes;
    out->push_back({"first_total", "F.", MetricType::kCounter, {{{}, double(scrapes)}}, {}});
  });
  registry.AddCollector([](std::vector<MetricFamily>* out) {
    out->push_back({"second", "S.", MetricType::kGauge, {{{}, 7}}, {}});
  });
  EXPECT_THAT(registry.Scrape(), HasSubstr("first_total 1\n# HELP second S."));
  EXPECT_THAT(registry.Scrape(), HasSubstr("first_total 2\n"));
}

TEST(ShardedCountersTest, SumsExactlyOverThreadsAndShards) {
  // Two shards for nine threads: threads share shards, and only atomic adds
  // keep every count.
  internal::ShardedCounters counters(/*cells=*/13, /*shards=*/2);
  EXPECT_EQ(counters.shards(), 2u);
  constexpr int kThreads = 9, kAdds = 200000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&counters, t] {
      for (int i = 0; i < kAdds; ++i) {
        counters.Add(12, 1);
        counters.Add(t % 3, 2);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(counters.Sum(12), uint64_t{kThreads} * kAdds);
  for (int c = 0; c < 3; ++c) EXPECT_EQ(counters.Sum(c), uint64_t{3} * kAdds * 2);
  for (int c = 3; c < 12; ++c) EXPECT_EQ(counters.Sum(c), 0u);
}

TEST(ShardedCountersTest, ShardCountIsAPowerOfTwo) {
  EXPECT_EQ(internal::ShardedCounters(1, 5).shards(), 8u);
  const size_t automatic = internal::ShardedCounters(1).shards();
  EXPECT_GE(automatic, 4u);
  EXPECT_LE(automatic, 64u);
  EXPECT_EQ(automatic & (automatic - 1), 0u);
}

// The value of the sample of `family` whose text form (name{labels}) is
// `series` in a rendered scrape; -1 if absent.
double Value(const std::string& text, const std::string& series) {
  for (const std::string& line : Lines(text)) {
    if (absl::StartsWith(line, series + " ")) return std::stod(line.substr(series.size() + 1));
  }
  return -1;
}

std::string Render(const ServiceMetrics& m) {
  std::vector<MetricFamily> families;
  m.Collect(&families);
  return RenderMetricsText(families);
}

TEST(ServiceMetricsTest, CountsCallsPerMethodAndCodeInTheRightBuckets) {
  ServiceMetrics m({"Lookup", "PushGradients"});
  using std::chrono::microseconds;
  m.RecordRpc(0, 0, microseconds(20));          // <= 25 us
  m.RecordRpc(0, 0, microseconds(25));          // <= 25 us (le is inclusive)
  m.RecordRpc(0, 0, microseconds(700));         // <= 1 ms
  m.RecordRpc(0, 5, microseconds(30));          // NOT_FOUND, <= 50 us
  m.RecordRpc(1, 0, std::chrono::seconds(30));  // past the last bound: +Inf only
  m.RecordRpc(1, 99, microseconds(1));          // not a code: UNKNOWN
  const std::string text = Render(m);
  EXPECT_EQ(Value(text, R"(embedserve_rpc_requests_total{method="Lookup",code="OK"})"), 3);
  EXPECT_EQ(Value(text, R"(embedserve_rpc_requests_total{method="Lookup",code="NOT_FOUND"})"), 1);
  EXPECT_EQ(Value(text, R"(embedserve_rpc_requests_total{method="PushGradients",code="OK"})"), 1);
  EXPECT_EQ(Value(text, R"(embedserve_rpc_requests_total{method="PushGradients",code="UNKNOWN"})"),
            1);
  // Pairs never seen are not rendered.
  EXPECT_EQ(Value(text, R"(embedserve_rpc_requests_total{method="Lookup",code="INTERNAL"})"), -1);
  const std::string ok = R"(embedserve_rpc_duration_seconds_bucket{method="Lookup",code="OK",le=)";
  EXPECT_EQ(Value(text, ok + R"("2.5e-05"})"), 2);
  EXPECT_EQ(Value(text, ok + R"("0.0005"})"), 2);
  EXPECT_EQ(Value(text, ok + R"("0.001"})"), 3);
  EXPECT_EQ(Value(text, ok + R"("+Inf"})"), 3);
  EXPECT_NEAR(Value(text, R"(embedserve_rpc_duration_seconds_sum{method="Lookup",code="OK"})"),
              745e-6, 1e-12);
  const std::string push =
      R"(embedserve_rpc_duration_seconds_bucket{method="PushGradients",code="OK",le=)";
  EXPECT_EQ(Value(text, push + R"("10"})"), 0);
  EXPECT_EQ(Value(text, push + R"("+Inf"})"), 1);
}

TEST(ServiceMetricsTest, CountsRowsPerTableFromManyThreads) {
  ServiceMetrics m({"Lookup"});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&m] {
      for (int i = 0; i < 1000; ++i) {
        m.AddRowsLookedUp("user", 3);
        m.AddRowsLookedUp("item", 1);
        m.AddRowsPushed("user", 2);
      }
    });
  }
  for (auto& t : threads) t.join();
  const std::string text = Render(m);
  EXPECT_EQ(Value(text, R"(embedserve_table_rows_looked_up_total{table="user"})"), 12000);
  EXPECT_EQ(Value(text, R"(embedserve_table_rows_looked_up_total{table="item"})"), 4000);
  EXPECT_EQ(Value(text, R"(embedserve_table_rows_pushed_total{table="user"})"), 8000);
  EXPECT_EQ(Value(text, R"(embedserve_table_rows_pushed_total{table="item"})"), 0);
  EXPECT_THAT(text, Not(HasSubstr("(other)")));
}

TEST(ServiceMetricsTest, TablesPastTheLimitAreCountedAsOther) {
  ServiceMetrics m({"Lookup"});
  for (int t = 0; t < ServiceMetrics::kMaxTables + 10; ++t) {
    m.AddRowsLookedUp(absl::StrCat("t", t), 1);
    m.AddRowsLookedUp(absl::StrCat("t", t), 1);  // the second sight finds the entry
  }
  const std::string text = Render(m);
  EXPECT_EQ(Value(text, R"(embedserve_table_rows_looked_up_total{table="t0"})"), 2);
  EXPECT_EQ(Value(text, absl::StrCat(R"(embedserve_table_rows_looked_up_total{table="t)",
                                     ServiceMetrics::kMaxTables - 1, "\"}")),
            2);
  EXPECT_EQ(Value(text, absl::StrCat(R"(embedserve_table_rows_looked_up_total{table="t)",
                                     ServiceMetrics::kMaxTables, "\"}")),
            -1);
  EXPECT_EQ(Value(text, R"x(embedserve_table_rows_looked_up_total{table="(other)"})x"), 20);
}

TEST(ServerMetricsTest, BuildInfoAndProcessFiguresArePresent) {
  std::vector<MetricFamily> families;
  CollectBuildInfo(&families);
  CollectProcessMetrics(&families);
  const std::string text = RenderMetricsText(families);
  EXPECT_THAT(text, HasSubstr("embedserve_build_info{version=\""));
  EXPECT_THAT(text, HasSubstr("\",simd=\""));
  EXPECT_GT(Value(text, "process_resident_memory_bytes"), 1 << 20);
  EXPECT_GE(Value(text, "process_threads"), 1);
  EXPECT_GE(Value(text, "process_open_fds"), 3);  // stdin, stdout, stderr at least
  EXPECT_GT(Value(text, "process_start_time_seconds"), 1.6e9);
}

}  // namespace
}  // namespace embedserve
