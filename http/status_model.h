// StatusModel: what the status page and the JSON API show, gathered from the configuration, the
// audit log and the route health of monitor/ (route_health.h). Plain data, rendered by
// pages.h (HTML) and api.h (JSON); both show the same numbers.
//
// Days are UTC calendar days; times are UTC. Thread-safe: it holds no state of its own beyond
// the AuditStore, whose reads are thread-safe.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/status.h"

namespace fordeler {

// One authority of one route: the state the monitor evaluated.
struct AuthorityStatus {
  std::string authority;  // "*" = every authority of the route
  std::string state;      // "OK", "LATE", "MISSING" or "FAILED"
  std::optional<TimePoint> last_delivery_at;
  std::string last_transfer_uuid;
  std::optional<TimePoint> due_at;
  std::optional<TimePoint> next_expected_at;
  std::string detail;  // a sentence without file names
};

struct RouteStatus {
  const Route* route = nullptr;  // into the Config given
  std::vector<AuthorityStatus> authorities;
  std::string state;       // the worst of the authorities' states
  RouteActivity activity;  // today (UTC), rejected and failed in the last 24 h
};

struct DayCount {
  std::string day;  // "2026-11-23" (UTC)
  int64_t count = 0;
};

struct RouteDetail {
  RouteStatus status;
  std::vector<TransferRecord> recent;  // newest first, at most kRecentTransfers
  std::vector<DayCount> per_day;       // the last kChartDays days, oldest first, today last
};

struct TransferDetail {
  TransferRecord transfer;
  std::vector<DeliveryRecord> deliveries;
  std::vector<EventRecord> events;
};

class StatusModel {
 public:
  static constexpr int kRecentTransfers = 20;
  static constexpr int kChartDays = 30;

  explicit StatusModel(AuditStore* audit) : audit_(audit) {}

  Result<std::vector<RouteStatus>> Routes(const Config& config, TimePoint now) const;
  // nullopt: no route has that id.
  Result<std::optional<RouteDetail>> RouteById(const Config& config, const std::string& id,
                                               TimePoint now) const;
  // `uuid` in lowercase; nullopt when unknown.
  Result<std::optional<TransferDetail>> Transfer(const std::string& uuid) const;
  // Deliveries not yet picked up (the pending-deliveries gauge).
  Result<int64_t> PendingDeliveries() const;
  // Routes (route, authority) that are LATE or MISSING (the late-routes gauge).
  Result<int64_t> LateRoutes(const Config& config, TimePoint now) const;

 private:
  Result<std::vector<DayCount>> PerDay(const Route& route, TimePoint now) const;

  AuditStore* audit_;
};

// "2026-11-23" for the UTC day of `t`.
std::string UtcDay(TimePoint t);
// Severity order: OK < LATE < MISSING < FAILED.
int StateRank(const std::string& state);

}  // namespace fordeler
