#include "core/metrics.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

TEST(MetricsTest, RendersCountersByDataAreaAndOutcome) {
  Metrics m;
  m.CountTransfer("aktivitet", TransferResult::kDelivered);
  m.CountTransfer("aktivitet", TransferResult::kDelivered);
  m.CountTransfer("", TransferResult::kRejected);
  m.AddBytesIn(100);
  m.CountAuthenticationFailure();
  std::string text;
  m.Render(&text);
  EXPECT_NE(
      text.find("fordeler_transfers_total{data_area=\"aktivitet\",outcome=\"delivered\"} 2\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("fordeler_transfers_total{data_area=\"unknown\",outcome=\"rejected\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("# TYPE fordeler_transfers_total counter\n"), std::string::npos);
  EXPECT_NE(text.find("fordeler_received_bytes_total 100\n"), std::string::npos);
  EXPECT_NE(text.find("fordeler_authentication_failures_total 1\n"), std::string::npos);
  EXPECT_EQ(m.transfers("aktivitet", TransferResult::kDelivered), 2u);
  EXPECT_EQ(m.transfers("aktivitet", TransferResult::kFailed), 0u);
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics m;
  m.ObserveRoutingLatency(0.003);
  m.ObserveRoutingLatency(0.3);
  m.ObserveRoutingLatency(100);
  std::string text;
  m.Render(&text);
  EXPECT_NE(text.find("fordeler_routing_latency_seconds_bucket{le=\"0.005\"} 1\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("fordeler_routing_latency_seconds_bucket{le=\"0.5\"} 2\n"),
            std::string::npos);
  EXPECT_NE(text.find("fordeler_routing_latency_seconds_bucket{le=\"60\"} 2\n"), std::string::npos);
  EXPECT_NE(text.find("fordeler_routing_latency_seconds_bucket{le=\"+Inf\"} 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("fordeler_routing_latency_seconds_count 3\n"), std::string::npos);
}

TEST(MetricsTest, EscapesLabelValuesAndFormatsNumbers) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(FormatMetricValue(3), "3");
  EXPECT_EQ(FormatMetricValue(0.25), "0.25");
  std::string text;
  AppendGauge(&text, "fordeler_late_routes", "Routes late.", 2);
  EXPECT_EQ(text,
            "# HELP fordeler_late_routes Routes late.\n# TYPE fordeler_late_routes gauge\n"
            "fordeler_late_routes 2\n");
}

}  // namespace
}  // namespace fordeler
