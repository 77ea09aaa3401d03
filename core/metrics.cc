#include "core/metrics.h"

#include <charconv>
#include <cmath>

namespace fordeler {

std::string_view TransferResultName(TransferResult outcome) {
  switch (outcome) {
    case TransferResult::kDelivered:
      return "delivered";
    case TransferResult::kRejected:
      return "rejected";
    case TransferResult::kFailed:
      return "failed";
  }
  return "unknown";
}

void Metrics::CountTransfer(const std::string& data_area, TransferResult outcome) {
  MutexLock lock(&mu_);
  ++transfers_[{data_area.empty() ? "unknown" : data_area, outcome}];
}

void Metrics::ObserveRoutingLatency(double seconds) {
  if (!(seconds >= 0)) seconds = 0;  // a clock step backwards; NaN
  MutexLock lock(&mu_);
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    if (seconds <= kLatencyBuckets[i]) ++latency_buckets_[i];
  }
  ++latency_count_;
  latency_sum_ += seconds;
}

uint64_t Metrics::transfers(const std::string& data_area, TransferResult outcome) const {
  MutexLock lock(&mu_);
  auto it = transfers_.find({data_area.empty() ? "unknown" : data_area, outcome});
  return it == transfers_.end() ? 0 : it->second;
}

void Metrics::Render(std::string* out) const {
  MutexLock lock(&mu_);
  AppendHeader(out, "fordeler_transfers_total", "counter",
               "Transfers that reached an outcome, by data area and outcome.");
  for (const auto& [key, count] : transfers_) {
    *out += "fordeler_transfers_total{data_area=\"" + EscapeLabelValue(key.first) +
            "\",outcome=\"" + std::string(TransferResultName(key.second)) + "\"} " +
            std::to_string(count) + "\n";
  }
  AppendHeader(out, "fordeler_routing_latency_seconds", "histogram",
               "Time from a trigger's arrival to its delivery to every recipient.");
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    *out += "fordeler_routing_latency_seconds_bucket{le=\"" +
            FormatMetricValue(kLatencyBuckets[i]) + "\"} " + std::to_string(latency_buckets_[i]) +
            "\n";
  }
  *out += "fordeler_routing_latency_seconds_bucket{le=\"+Inf\"} " + std::to_string(latency_count_) +
          "\n";
  *out += "fordeler_routing_latency_seconds_sum " + FormatMetricValue(latency_sum_) + "\n";
  *out += "fordeler_routing_latency_seconds_count " + std::to_string(latency_count_) + "\n";
  AppendHeader(out, "fordeler_received_bytes_total", "counter",
               "Bytes of data files accepted from senders.");
  *out += "fordeler_received_bytes_total " + std::to_string(bytes_in()) + "\n";
  AppendHeader(out, "fordeler_sent_bytes_total", "counter",
               "Bytes of delivered files downloaded by recipients.");
  *out += "fordeler_sent_bytes_total " + std::to_string(bytes_out()) + "\n";
  AppendHeader(out, "fordeler_authentication_failures_total", "counter",
               "Failed SSH authentication attempts.");
  *out +=
      "fordeler_authentication_failures_total " + std::to_string(authentication_failures()) + "\n";
}

std::string EscapeLabelValue(std::string_view value) {
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
      out += c;
    }
  }
  return out;
}

void AppendHeader(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help) {
  *out += "# HELP ";
  *out += name;
  *out += " ";
  *out += help;
  *out += "\n# TYPE ";
  *out += name;
  *out += " ";
  *out += type;
  *out += "\n";
}

void AppendGauge(std::string* out, std::string_view name, std::string_view help, double value) {
  AppendHeader(out, name, "gauge", help);
  *out += name;
  *out += " " + FormatMetricValue(value) + "\n";
}

std::string FormatMetricValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  if (value == std::floor(value) && std::fabs(value) < 1e15) {
    return std::to_string(static_cast<int64_t>(value));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);  // shortest exact form
  return ec == std::errc() ? std::string(buf, end) : "NaN";
}

}  // namespace fordeler
