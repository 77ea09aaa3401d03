#include "monitor/route_health.h"

#include <algorithm>
#include <cstdio>

#include "core/units.h"
#include "monitor/schedule.h"

namespace fordeler {
namespace {

constexpr TimePoint::duration kTick{1};

std::vector<std::string> RowAuthorities(const Route& route) {
  bool all = route.expect.empty() || std::find(route.authorities.begin(), route.authorities.end(),
                                               "*") != route.authorities.end();
  return all ? std::vector<std::string>{"*"} : route.authorities;
}

// "daily_06:00", "weekly_mon_06:00", "monthly_1_06:00", "monthly_last_06:00".
std::string CanonicalSpec(const ScheduleSpec& spec) {
  static const char* const kDays[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  char time[8];
  std::snprintf(time, sizeof time, "%02d:%02d", spec.hour, spec.minute);
  switch (spec.kind) {
    case ScheduleSpec::Kind::kDaily:
      return std::string("daily_") + time;
    case ScheduleSpec::Kind::kWeekly:
      return std::string("weekly_") + kDays[spec.weekday % 7] + "_" + time;
    case ScheduleSpec::Kind::kMonthly:
      return "monthly_" + (spec.day == 0 ? std::string("last") : std::to_string(spec.day)) + "_" +
             time;
  }
  return time;
}

// OK: the latest due instant whose grace has passed came before the schedule was watched.
void NotJudgedYet(const Schedule& schedule, TimePoint now, RouteHealth* row) {
  if (!row->watched_since) {
    row->detail =
        "Not watched yet: fordelerd watches this schedule from when it loads it; the "
        "next delivery is expected at " +
        schedule.FormatLocal(*row->next_expected_at) + ".";
    return;
  }
  TimePoint first = schedule.NextAfter(*row->watched_since - kTick);
  row->detail = "Deliveries are expected from " + schedule.FormatLocal(*row->watched_since) +
                ", when this schedule was first watched; the first is due at " +
                schedule.FormatLocal(first) + (first <= now ? " (its grace has not passed)." : ".");
}

// LATE / MISSING from the schedule (header), or OK. `accepted`: the newest accepted transfer.
void JudgeSchedule(const Schedule& schedule, const Route& route,
                   const std::optional<TransferOutcome>& accepted, TimePoint now,
                   RouteHealth* row) {
  row->next_expected_at = schedule.NextAfter(now);
  TimePoint due = schedule.LatestAtOrBefore(now - route.grace - kTick);
  if (due == TimePoint::min()) return;
  if (!row->watched_since || due < *row->watched_since) {
    NotJudgedYet(schedule, now, row);
    return;
  }
  TimePoint previous = schedule.LatestAtOrBefore(due - kTick);
  bool covered =
      accepted && (previous == TimePoint::min() || accepted->received_at > previous + route.grace);
  std::string grace = FormatDuration(route.grace);
  if (covered) {
    row->detail = "The delivery expected at " + schedule.FormatLocal(due) +
                  " arrived; the next is expected at " +
                  schedule.FormatLocal(*row->next_expected_at) + ".";
    return;
  }
  row->due_at = due;
  bool missing = now > due + 2 * route.grace;
  row->state = missing ? HealthState::kMissing : HealthState::kLate;
  row->detail = "The delivery expected at " + schedule.FormatLocal(due) + " has not arrived" +
                (missing ? " after twice the grace of " + grace + "."
                         : " within the grace of " + grace + ".");
}

// FAILED (header), unless the schedule already found something worse. `accepted`: the newest
// accepted transfer, which may be the failing one itself (a delivery failing with 5001 is in
// state `delivering`): only another one, received no earlier, ends FAILED.
Status JudgeFailures(const Route& route, AuditStore& audit,
                     const std::optional<TransferOutcome>& accepted, TimePoint now,
                     RouteHealth* row) {
  std::string authority = row->authority == "*" ? "" : row->authority;
  auto latest = audit.LatestOfSender(route.sender, route.data_area, authority, now - kFailedWindow);
  if (!latest.ok()) return latest.status();
  if (!*latest) return Status::Ok();
  const TransferOutcome& t = **latest;
  bool rejected = t.state == TransferState::kRejected;
  bool failing = t.failed && t.state != TransferState::kDelivered;
  if (!rejected && !failing) return Status::Ok();
  if (accepted && accepted->uuid != t.uuid && accepted->received_at >= t.received_at) {
    return Status::Ok();
  }
  if (row->state != HealthState::kOk) return Status::Ok();
  row->state = HealthState::kFailed;
  row->detail = rejected ? "The sender's latest transfer (" + t.uuid + ") was rejected with code " +
                               std::to_string(t.error_code) + "."
                         : "The sender's latest transfer (" + t.uuid +
                               ") is failing with fordeler's own error 5001 and being retried.";
  return Status::Ok();
}

Result<RouteHealth> EvaluateRow(const Route& route, const std::string& authority,
                                const Schedule* schedule, AuditStore& audit, TimePoint now) {
  RouteHealth row;
  row.route = &route;
  row.authority = authority;
  std::string wanted = authority == "*" ? "" : authority;
  auto delivered = audit.LastDelivered(route.id, wanted);
  if (!delivered.ok()) return delivered.status();
  if (*delivered) {
    row.last_delivery_at = (*delivered)->placed_at;
    row.last_transfer_uuid = (*delivered)->uuid;
  }
  auto accepted = audit.LastAccepted(route.id, wanted);
  if (!accepted.ok()) return accepted.status();
  if (schedule != nullptr) {
    auto since = audit.RouteWatchedSince(WatchKey(route, authority));
    if (!since.ok()) return since.status();
    row.watched_since = *since;
    JudgeSchedule(*schedule, route, *accepted, now, &row);
  } else {
    row.detail = *accepted ? "No schedule; deliveries arrive." : "No schedule.";
  }
  if (Status s = JudgeFailures(route, audit, *accepted, now, &row); !s.ok()) return s;
  return row;
}

}  // namespace

const char* HealthStateName(HealthState s) {
  switch (s) {
    case HealthState::kOk:
      return "OK";
    case HealthState::kLate:
      return "LATE";
    case HealthState::kMissing:
      return "MISSING";
    case HealthState::kFailed:
      return "FAILED";
  }
  return "?";
}

std::string WatchKey(const Route& route, const std::string& authority) {
  std::vector<std::string> specs;
  for (const ScheduleSpec& spec : route.expect) specs.push_back(CanonicalSpec(spec));
  std::sort(specs.begin(), specs.end());
  specs.erase(std::unique(specs.begin(), specs.end()), specs.end());
  std::string key = "route=" + route.id + " authority=" + authority + " expect=";
  for (size_t i = 0; i < specs.size(); ++i) key += (i == 0 ? "" : ",") + specs[i];
  return key;
}

Result<std::vector<RouteHealth>> EvaluateRouteHealth(const Config& config, AuditStore& audit,
                                                     TimePoint now) {
  std::vector<RouteHealth> rows;
  for (const Route& route : config.routes) {
    std::optional<Schedule> schedule;
    if (!route.expect.empty()) {
      auto created = Schedule::Create(route.expect, config.server.time_zone);
      if (!created.ok()) return created.status();
      schedule = std::move(*created);
    }
    for (const std::string& authority : RowAuthorities(route)) {
      auto row = EvaluateRow(route, authority, schedule ? &*schedule : nullptr, audit, now);
      if (!row.ok()) return row.status();
      rows.push_back(std::move(*row));
    }
  }
  return rows;
}

}  // namespace fordeler
