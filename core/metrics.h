// Metrics: the counters and the routing-latency histogram fordelerd exposes on /metrics, and the
// Prometheus text exposition format (0.0.4) they are rendered in (docs/operations.md lists every
// metric). Counting happens where the thing happens (daemon/ observes the audit log's commits and
// the SFTP server's session events); gauges that are cheaper to compute when scraped (pending
// deliveries, late routes, disk free, active sessions) are rendered by the caller with
// AppendGauge. Counters start at zero when the daemon starts (Prometheus' rate() handles resets).
//
// Labels hold only configured identifiers (data area ids) and fixed words, never file names.
// Thread-safe: every method may be called from any thread.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "core/mutex.h"

namespace fordeler {

enum class TransferResult { kDelivered, kRejected, kFailed };
std::string_view TransferResultName(TransferResult outcome);  // "delivered", ...

class Metrics {
 public:
  // Upper bounds (seconds) of the routing-latency histogram's buckets; +Inf is implied.
  static constexpr std::array<double, 12> kLatencyBuckets{0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                                          0.5,   1,    2.5,   5,    10,  60};

  // A transfer reached an outcome. `data_area` "" (not known, e.g. an unparsable trigger) is
  // rendered as data_area="unknown".
  void CountTransfer(const std::string& data_area, TransferResult outcome) EXCLUDES(mu_);
  // Seconds from the trigger's arrival to the transfer's delivery.
  void ObserveRoutingLatency(double seconds) EXCLUDES(mu_);
  void AddBytesIn(uint64_t bytes) { bytes_in_.fetch_add(bytes, std::memory_order_relaxed); }
  void AddBytesOut(uint64_t bytes) { bytes_out_.fetch_add(bytes, std::memory_order_relaxed); }
  void CountAuthenticationFailure() { auth_failures_.fetch_add(1, std::memory_order_relaxed); }

  uint64_t transfers(const std::string& data_area, TransferResult outcome) const EXCLUDES(mu_);
  uint64_t bytes_in() const { return bytes_in_.load(std::memory_order_relaxed); }
  uint64_t bytes_out() const { return bytes_out_.load(std::memory_order_relaxed); }
  uint64_t authentication_failures() const {
    return auth_failures_.load(std::memory_order_relaxed);
  }

  // Appends the counters and the histogram, each with # HELP and # TYPE lines.
  void Render(std::string* out) const EXCLUDES(mu_);

 private:
  mutable Mutex mu_;
  std::map<std::pair<std::string, TransferResult>, uint64_t> transfers_ GUARDED_BY(mu_);
  std::array<uint64_t, kLatencyBuckets.size()> latency_buckets_ GUARDED_BY(mu_){};
  uint64_t latency_count_ GUARDED_BY(mu_) = 0;
  double latency_sum_ GUARDED_BY(mu_) = 0;
  std::atomic<uint64_t> bytes_in_{0};
  std::atomic<uint64_t> bytes_out_{0};
  std::atomic<uint64_t> auth_failures_{0};
};

// Text-format helpers. A label value escaped for the exposition format (\\, \", \n).
std::string EscapeLabelValue(std::string_view value);
// "# HELP name help\n# TYPE name type\n".
void AppendHeader(std::string* out, std::string_view name, std::string_view type,
                  std::string_view help);
// A gauge with no labels, header included.
void AppendGauge(std::string* out, std::string_view name, std::string_view help, double value);
// A number as the format wants it: integers without a fraction, +Inf/-Inf/NaN spelled so.
std::string FormatMetricValue(double value);

}  // namespace fordeler
