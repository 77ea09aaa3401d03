#include "monitor/monitor.h"

#include <spdlog/spdlog.h>

#include "core/names.h"
#include "core/thread_name.h"
#include "core/units.h"
#include "monitor/route_health.h"

namespace fordeler {
namespace {

constexpr std::chrono::hours kRejectionLookback{1};
constexpr std::chrono::hours kPickupLookback{7 * 24};
constexpr int kMaxRejectionsPerPass = 500;

std::string JoinRoutes(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) out += (out.empty() ? "" : ",") + id;
  return out;
}

// An alert about one transfer (`rejected`, `stuck`), raised once: its key names the transfer.
Alert TransferAlert(const TransferRecord& t, const char* kind, const char* state) {
  Alert a;
  a.kind = kind;
  a.route = JoinRoutes(t.route_ids);
  a.authority = t.authority.value_or("");
  a.state = state;
  a.transfer = t.uuid;
  a.file = t.name;
  a.sender = t.sender;
  a.error_code = t.error_code;
  a.account = t.sender;
  a.key = "kind=" + a.kind + " transfer=" + t.uuid;
  return a;
}

Alert ScheduleAlert(const RouteHealth& row) {
  bool missing = row.state == HealthState::kMissing;
  Alert a;
  a.kind = missing ? "missing" : "late";
  a.route = row.route->id;
  a.authority = row.authority;
  a.state = HealthStateName(row.state);
  a.due = row.due_at;
  a.sender = row.route->sender;
  a.message = "Route " + row.route->id + ": " + row.detail;
  a.account = row.route->sender;
  a.key = "kind=" + a.kind + " route=" + a.route + " authority=" + a.authority +
          " due=" + FormatTime(*row.due_at);
  return a;
}

}  // namespace

Monitor::Monitor(Env* env, AuditStore* audit) : env_(env), audit_(audit) {}

Monitor::~Monitor() { Stop(); }

void Monitor::SetConfig(std::shared_ptr<const Config> config) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    config_ = std::move(config);
  }
  wake_.notify_all();
}

void Monitor::Start() {
  thread_ = std::thread([this] {
    NameThisThread("monitor");
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
      lock.unlock();
      CheckOnce();
      lock.lock();
      auto interval = config_ ? config_->alerts.check_interval : std::chrono::milliseconds(30'000);
      wake_.wait_for(lock, interval, [this] { return stop_; });
    }
  });
}

void Monitor::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::unique_ptr<Alerter> old;
  {
    std::lock_guard<std::mutex> lock(alerter_mu_);
    old = std::move(alerter_);
  }
  old.reset();  // waits for a command still running
}

void Monitor::UseAlerts(const AlertsConfig& alerts) {
  std::unique_ptr<Alerter> old;
  {
    std::lock_guard<std::mutex> lock(alerter_mu_);
    if (alerter_ && alerts.on_alert == alerter_config_.on_alert &&
        alerts.timeout == alerter_config_.timeout) {
      return;
    }
    old = std::move(alerter_);
    alerter_ = std::make_unique<Alerter>(Alerter::Options{alerts.on_alert, alerts.timeout, 100},
                                         env_, audit_);
    alerter_config_ = alerts;
  }
  old.reset();  // waits for a command still running, outside the lock
}

void Monitor::Raise(Alert alert) {
  std::shared_ptr<const Config> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_) return;
    config = config_;
  }
  if (config) UseAlerts(config->alerts);  // also before the checking thread's first pass
  std::lock_guard<std::mutex> lock(alerter_mu_);
  if (alerter_) alerter_->Raise(std::move(alert));
}

void Monitor::CheckOnce() {
  std::shared_ptr<const Config> config;
  {
    std::lock_guard<std::mutex> lock(mu_);
    config = config_;
  }
  if (!config) return;
  UseAlerts(config->alerts);
  TimePoint now = env_->Now();
  CheckRoutes(*config, now);
  CheckRejections(*config, now);
  CheckPickups(*config, now);
  CheckStuck(now);
}

void Monitor::RaiseOnce(Alert alert, TimePoint since) {
  if (raised_.count(alert.key) != 0) return;
  auto recorded = audit_->AlertRecorded(alert.account, since, alert.key);
  if (!recorded.ok()) {
    spdlog::error("event=monitor_failed error={}", LogValue(recorded.status().message()));
    return;  // tried again at the next pass
  }
  // raised_ only saves audit-log lookups (the log is what remembers an alert), so it is emptied
  // rather than allowed to grow with every rejection and delivery for as long as the daemon runs.
  if (raised_.size() >= kMaxRememberedAlerts) raised_.clear();
  raised_.insert(alert.key);
  if (*recorded) return;
  std::lock_guard<std::mutex> lock(alerter_mu_);
  if (alerter_) alerter_->Raise(std::move(alert));
}

void Monitor::CheckRoutes(const Config& config, TimePoint now) {
  auto rows = EvaluateRouteHealth(config, *audit_, now);
  if (!rows.ok()) {
    spdlog::error("event=monitor_failed error={}", LogValue(rows.status().message()));
    return;
  }
  for (const RouteHealth& row : *rows) {
    std::string name = row.route->id + " " + row.authority;
    std::string state = HealthStateName(row.state);
    auto [it, added] = last_state_.emplace(name, state);
    if (added ? row.state != HealthState::kOk : it->second != state) {
      spdlog::info("event=route_state route={} authority={} state={} detail={}", row.route->id,
                   LogValue(row.authority), state, LogValue(row.detail));
      it->second = state;
    }
    if ((row.state == HealthState::kLate || row.state == HealthState::kMissing) && row.due_at) {
      RaiseOnce(ScheduleAlert(row), *row.due_at);
    }
    if (!row.route->expect.empty() && !row.watched_since) RecordWatch(row);
  }
}

void Monitor::RecordWatch(const RouteHealth& row) {
  std::string key = WatchKey(*row.route, row.authority);
  if (!watches_submitted_.insert(key).second) return;  // submitted, not committed yet
  spdlog::info("event=route_watched {}", key);
  // Not waited for: a pass must not block on a failing database. Until the event is committed,
  // the row is not judged; the writer holds it until it is (or fordelerd stops).
  audit_->Submit(Batch().AddEvent("route_watched", "", "", key), [](const Status& s) {
    if (!s.ok()) spdlog::error("event=route_watched_not_recorded error={}", LogValue(s.message()));
  });
}

void Monitor::CheckRejections(const Config&, TimePoint now) {
  TransferFilter filter;
  filter.since = now - kRejectionLookback;
  filter.state = TransferState::kRejected;
  filter.limit = kMaxRejectionsPerPass;
  std::vector<TransferRecord> rejected;
  Status s = audit_->ListTransfers(filter, [&](const TransferRecord& t) {
    rejected.push_back(t);
    return true;
  });
  if (!s.ok()) {
    spdlog::error("event=monitor_failed error={}", LogValue(s.message()));
    return;
  }
  for (auto it = rejected.rbegin(); it != rejected.rend(); ++it) {  // oldest first
    const TransferRecord& t = *it;
    Alert a = TransferAlert(t, "rejected", "REJECTED");
    a.message = "Transfer " + t.uuid + " from " + t.sender + " was rejected with code " +
                std::to_string(t.error_code) + ".";
    RaiseOnce(std::move(a), t.received_at);
  }
}

void Monitor::CheckPickups(const Config& config, TimePoint now) {
  if (!config.alerts.not_picked_up_after) return;
  TimePoint before = now - *config.alerts.not_picked_up_after;
  auto deliveries = audit_->DeliveredBetween(before - kPickupLookback, before);
  if (!deliveries.ok()) {
    spdlog::error("event=monitor_failed error={}", LogValue(deliveries.status().message()));
    return;
  }
  for (const UnfetchedDelivery& d : *deliveries) {
    Alert a;
    a.kind = "not_picked_up";
    a.route = d.route_ids;
    a.authority = d.authority;
    a.state = "NOT_PICKED_UP";
    a.transfer = d.transfer_uuid;
    a.file = d.name_in_in;
    a.sender = d.sender;
    a.recipient = d.recipient;
    a.message = "Delivery of transfer " + d.transfer_uuid + " to " + d.recipient +
                " was not picked up within " + FormatDuration(*config.alerts.not_picked_up_after) +
                ".";
    a.account = d.recipient;
    a.key = "kind=not_picked_up transfer=" + d.transfer_uuid + " recipient=" + d.recipient;
    RaiseOnce(std::move(a), d.delivered_at);
  }
}

// A transfer the pipeline has not finished kStuckAfter after it arrived (a delivery failing with
// 5001 since, or a step that never completed): what `fordeler status` lists for the operator,
// pushed once per transfer rather than waiting for someone to look.
void Monitor::CheckStuck(TimePoint now) {
  auto unfinished = audit_->UnfinishedTransfers();
  if (!unfinished.ok()) {
    spdlog::error("event=monitor_failed error={}", LogValue(unfinished.status().message()));
    return;
  }
  for (const TransferRecord& t : *unfinished) {
    if (t.received_at > now - kStuckAfter) continue;
    Alert a = TransferAlert(t, "stuck", "STUCK");
    a.message =
        "Transfer " + t.uuid + " from " + t.sender + " is unfinished " +
        FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(now - t.received_at)) +
        " after it arrived (step " + std::string(ToString(t.step)) + ")" +
        (t.error_code != 0 ? ": " + std::to_string(t.error_code) + " " + t.error_description : "") +
        ".";
    RaiseOnce(std::move(a), t.received_at);
  }
}

}  // namespace fordeler
