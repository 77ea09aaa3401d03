#include "http/status_model.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <map>

#include "http/route_states.h"

namespace fordeler {
namespace {

using std::chrono::days;
using std::chrono::floor;

TimePoint UtcMidnight(TimePoint t) { return TimePoint(floor<days>(t).time_since_epoch()); }

Result<RouteActivity> ActivityOf(AuditStore& audit, const Route& route, TimePoint now) {
  return audit.RouteActivityOf(
      {route.id, route.sender, route.data_area, UtcMidnight(now), now - std::chrono::hours(24)});
}

}  // namespace

std::string UtcDay(TimePoint t) {
  std::chrono::year_month_day ymd{floor<days>(t)};
  char buf[16];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

int StateRank(const std::string& state) {
  static const std::array<const char*, 4> kOrder{"OK", "LATE", "MISSING", "FAILED"};
  for (size_t i = 0; i < kOrder.size(); ++i) {
    if (state == kOrder[i]) return static_cast<int>(i);
  }
  return 0;
}

Result<std::vector<RouteStatus>> StatusModel::Routes(const Config& config, TimePoint now) const {
  auto states = EvaluateStates(config, *audit_, now);
  if (!states.ok()) return states.status();
  std::vector<RouteStatus> out;
  for (const Route& route : config.routes) {
    RouteStatus r;
    r.route = &route;
    r.state = "OK";
    for (const RouteState& s : *states) {
      if (s.route != &route) continue;
      if (StateRank(s.status.state) > StateRank(r.state)) r.state = s.status.state;
      r.authorities.push_back(s.status);
    }
    auto activity = ActivityOf(*audit_, route, now);
    if (!activity.ok()) return activity.status();
    r.activity = *activity;
    out.push_back(std::move(r));
  }
  return out;
}

Result<std::vector<DayCount>> StatusModel::PerDay(const Route& route, TimePoint now) const {
  std::vector<DayCount> out;
  TimePoint first = UtcMidnight(now) - days(kChartDays - 1);
  std::map<std::string, int64_t> counts;
  for (int i = 0; i < kChartDays; ++i) {
    out.push_back({UtcDay(first + days(i)), 0});
    counts[out.back().day] = 0;
  }
  TransferFilter filter;
  filter.route = route.id;
  filter.since = first;
  filter.state = TransferState::kDelivered;
  filter.limit = 1'000'000;
  Status s = audit_->ListTransfers(filter, [&](const TransferRecord& t) {
    auto it = counts.find(UtcDay(t.received_at));
    if (it != counts.end()) ++it->second;
    return true;
  });
  if (!s.ok()) return s;
  for (DayCount& d : out) d.count = counts[d.day];
  return out;
}

Result<std::optional<RouteDetail>> StatusModel::RouteById(const Config& config,
                                                          const std::string& id,
                                                          TimePoint now) const {
  auto routes = Routes(config, now);
  if (!routes.ok()) return routes.status();
  auto it = std::find_if(routes->begin(), routes->end(),
                         [&](const RouteStatus& r) { return r.route->id == id; });
  if (it == routes->end()) return std::optional<RouteDetail>();
  RouteDetail detail;
  detail.status = std::move(*it);
  TransferFilter filter;
  filter.route = id;
  filter.limit = kRecentTransfers;
  Status s = audit_->ListTransfers(filter, [&](const TransferRecord& t) {
    detail.recent.push_back(t);
    return true;
  });
  if (!s.ok()) return s;
  auto per_day = PerDay(*detail.status.route, now);
  if (!per_day.ok()) return per_day.status();
  detail.per_day = std::move(*per_day);
  return std::optional<RouteDetail>(std::move(detail));
}

Result<std::optional<TransferDetail>> StatusModel::Transfer(const std::string& uuid) const {
  auto found = audit_->GetTransfer(uuid);
  if (!found.ok()) return found.status();
  if (!found->has_value()) return std::optional<TransferDetail>();
  TransferDetail d;
  d.transfer = std::move(**found);
  auto deliveries = audit_->DeliveriesOf(uuid);
  if (!deliveries.ok()) return deliveries.status();
  d.deliveries = std::move(*deliveries);
  Status s = audit_->EventsOf(uuid, [&](const EventRecord& e) {
    d.events.push_back(e);
    return true;
  });
  if (!s.ok()) return s;
  return std::optional<TransferDetail>(std::move(d));
}

Result<int64_t> StatusModel::PendingDeliveries() const {
  auto pending = audit_->PendingDeliveries();
  if (!pending.ok()) return pending.status();
  int64_t total = 0;
  for (const PendingCount& p : *pending) total += p.count;
  return total;
}

Result<int64_t> StatusModel::LateRoutes(const Config& config, TimePoint now) const {
  auto states = EvaluateStates(config, *audit_, now);
  if (!states.ok()) return states.status();
  return static_cast<int64_t>(std::count_if(states->begin(), states->end(), [](const auto& s) {
    return s.status.state == "LATE" || s.status.state == "MISSING";
  }));
}

}  // namespace fordeler
