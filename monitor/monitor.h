// Monitor: fordelerd's watch over the routes (docs/operations.md, "Schedules and alerts").
// Every [alerts] check_interval (and once at Start) it evaluates route health
// (route_health.h) and raises, through its Alerter:
// - `late` and `missing`: once per route, authority and due instant (a route found MISSING at
//   once gets only the `missing` alert);
// - `rejected`: once per rejected transfer (rejections of the last hour are looked at);
// - `not_picked_up`: once per delivery not picked up within [alerts] not_picked_up_after (when
//   set; deliveries placed in the 7 days before that are looked at).
// Whether an alert was raised is read back from the audit log (an `alert` event whose detail
// starts with the alert's key), so a restart does not raise it again. A route's change of state
// is logged (`event=route_state`).
// The first time it sees a route's schedule (per authority row, route_health.h), it records an
// audit event `route_watched` (detail: the row's WatchKey); route health judges the schedule
// only from that event's time, so it survives a restart and is shared with `fordeler status`
// and the status page.
//
// It is also the AlertSink of the rest of fordelerd (the retention sweep's `retention_warning`):
// Raise passes an alert to the alerter of the current configuration, from any thread.
//
// Thread safety: SetConfig and Raise may be called from any thread; Start/Stop from one thread.
#pragma once

#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/alert.h"
#include "core/env.h"
#include "monitor/alerter.h"

namespace fordeler {

struct RouteHealth;

class Monitor : public AlertSink {
 public:
  // REQUIRES: `env` and `audit` outlive the monitor.
  Monitor(Env* env, AuditStore* audit);
  ~Monitor();

  void SetConfig(std::shared_ptr<const Config> config);
  // Checks now, then every check_interval, on its own thread, until Stop().
  void Start();
  void Stop();
  // One pass, on the caller's thread (tests; not while started).
  void CheckOnce();
  // The alerter of the current configuration (tests); null before the first pass.
  Alerter* alerter() {
    std::lock_guard<std::mutex> lock(alerter_mu_);
    return alerter_.get();
  }
  // Raises `alert` through the alerter of the current configuration (nothing after Stop).
  void Raise(Alert alert) override;

 private:
  void CheckRoutes(const Config& config, TimePoint now);
  // Records the `route_watched` event of a row not watched yet (once per process and key).
  void RecordWatch(const RouteHealth& row);
  void CheckRejections(const Config& config, TimePoint now);
  void CheckPickups(const Config& config, TimePoint now);
  // Unfinished transfers received over kStuckAfter ago: a `stuck` alert each, once.
  void CheckStuck(TimePoint now);
  // Raises `alert` unless it was raised before (here or, after `since`, in the audit log).
  void RaiseOnce(Alert alert, TimePoint since);
  void UseAlerts(const AlertsConfig& alerts);

  Env* env_;
  AuditStore* audit_;
  std::mutex mu_;
  std::shared_ptr<const Config> config_;  // under mu_
  bool stop_ = false;                     // under mu_
  std::condition_variable wake_;
  std::thread thread_;
  std::mutex alerter_mu_;  // never held while an alerter is destroyed (that waits for its command)
  std::unique_ptr<Alerter> alerter_;  // under alerter_mu_
  AlertsConfig alerter_config_;       // under alerter_mu_
  // Used only by the checking thread:
  static constexpr size_t kMaxRememberedAlerts = 10'000;
  std::set<std::string> raised_;  // keys of alerts raised or found raised (a cache)
  std::map<std::string, std::string> last_state_;  // "route authority" -> state name
  std::set<std::string> watches_submitted_;        // WatchKeys recorded by this process
};

}  // namespace fordeler
