#include "cli/status_command.h"

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/local_time.h"
#include "cli/table.h"
#include "core/names.h"

namespace fordeler::cli {
namespace {

std::string Join(const std::vector<std::string>& items, const char* separator = ", ") {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

int Severity(HealthState s) {
  switch (s) {
    case HealthState::kMissing:
      return 3;
    case HealthState::kLate:
      return 2;
    case HealthState::kFailed:
      return 1;
    case HealthState::kOk:
      return 0;
  }
  return 0;
}

Json OptionalTime(const std::optional<TimePoint>& t) {
  return t ? Json(FormatTime(*t)) : Json(nullptr);
}

Json HealthJson(const RouteHealth& h) {
  return {{"authority", h.authority},
          {"state", HealthStateName(h.state)},
          {"due_at", OptionalTime(h.due_at)},
          {"next_expected_at", OptionalTime(h.next_expected_at)},
          {"last_delivery_at", OptionalTime(h.last_delivery_at)},
          {"detail", h.detail}};
}

// Attaches the health rows to their routes (both in configuration order).
Status AddHealth(const Config& config, AuditStore& audit, TimePoint now, StatusReport* report) {
  auto health = EvaluateRouteHealth(config, audit, now);
  if (!health.ok()) return health.status();
  for (RouteHealth& h : *health) {
    for (RouteStatus& r : report->routes) {
      if (r.route == h.route) r.health.push_back(std::move(h));
    }
  }
  for (const RouteStatus& r : report->routes) {
    HealthState s = WorstHealth(r.health).state;
    if (s == HealthState::kLate || s == HealthState::kMissing) report->overdue = true;
  }
  return Status::Ok();
}

// The soonest next expected delivery over the route's health rows; none without `expect`.
std::optional<TimePoint> NextExpected(const std::vector<RouteHealth>& rows) {
  std::optional<TimePoint> next;
  for (const RouteHealth& h : rows) {
    if (h.next_expected_at && (!next || *h.next_expected_at < *next)) next = h.next_expected_at;
  }
  return next;
}

bool NeedsOperator(const TransferRecord& t, TimePoint now) {
  return t.error_code == 5001 || t.received_at < now - kStuckAfter;
}

void PrintStuck(const std::vector<TransferRecord>& stuck, std::ostream& out, bool color) {
  if (stuck.empty()) return;
  out << (color ? "\033[31m" : "") << stuck.size() << " transfer"
      << (stuck.size() == 1 ? " needs" : "s need") << " attention (unfinished over 5 minutes or "
      << "failing with 5001):" << (color ? "\033[0m" : "") << "\n";
  for (const TransferRecord& t : stuck) {
    out << "  " << t.uuid << "  " << ToString(t.step) << "  received " << TableTime(t.received_at);
    if (t.error_code != 0)
      out << "  " << t.error_code << " " << Fit(ShowableText(t.error_description), 60);
    out << "\n";
  }
}

}  // namespace

const RouteHealth& WorstHealth(const std::vector<RouteHealth>& rows) {
  const RouteHealth* worst = &rows.front();
  for (const RouteHealth& h : rows) {
    if (Severity(h.state) > Severity(worst->state)) worst = &h;
  }
  return *worst;
}

Result<StatusReport> BuildStatus(const Config& config, AuditStore& audit, TimePoint now,
                                 TimePoint midnight) {
  StatusReport report;
  auto pending = audit.PendingDeliveries();
  if (!pending.ok()) return pending.status();
  for (const Route& route : config.routes) {
    RouteActivityQuery q{route.id, route.sender, route.data_area, midnight,
                         now - std::chrono::hours(24)};
    auto activity = audit.RouteActivityOf(q);
    if (!activity.ok()) return activity.status();
    RouteStatus row{&route, std::move(*activity), 0, {}};
    for (const PendingCount& p : *pending) {
      bool ours = std::find(route.recipients.begin(), route.recipients.end(), p.recipient) !=
                  route.recipients.end();
      if (p.route_id == route.id && ours) row.pending += p.count;
    }
    report.routes.push_back(std::move(row));
  }
  if (Status s = AddHealth(config, audit, now, &report); !s.ok()) return s;
  auto unfinished = audit.UnfinishedTransfers();
  if (!unfinished.ok()) return unfinished.status();
  for (TransferRecord& t : *unfinished) {
    if (NeedsOperator(t, now)) report.stuck.push_back(std::move(t));
  }
  return report;
}

void PrintStatusTable(const StatusReport& report, const Io& io) {
  Table table({{"ROUTE", false, true, true},
               {"STATE", false, false},
               {"LAST DELIVERY", false, false},
               {"TODAY", true, false},
               {"PENDING", true, false},
               {"FAILED", true, false},
               {"REJECTED", true, false}});
  for (const RouteStatus& r : report.routes) {
    const RouteActivity& a = r.activity;
    const RouteHealth& worst = WorstHealth(r.health);
    table.AddRow(
        {r.route->id, HealthStateName(worst.state), TableTime(a.last_delivery_at),
         std::to_string(a.today), std::to_string(r.pending), std::to_string(a.failed_24h),
         std::to_string(a.rejected_24h)},
        {false, worst.state != HealthState::kOk, false, false, false, a.failed_24h > 0, false});
    std::string note =
        r.route->data_area + ": " + r.route->sender + " → " + Join(r.route->recipients);
    // The file name last: it is the part whose length varies, and a long one wraps.
    if (auto next = NextExpected(r.health)) note += "; next expected " + TableTime(*next);
    if (a.last_delivery_at) note += "; last file " + a.last_delivery_name;
    table.AddNote(note);
    for (const RouteHealth& h : r.health) {
      if (h.state == HealthState::kOk) continue;
      table.AddNote(std::string(HealthStateName(h.state)) +
                    (h.authority == "*" ? "" : " " + h.authority) + ": " + h.detail);
    }
  }
  if (report.routes.empty()) {
    io.out << "no routes configured\n";
  } else {
    table.Render(io.out, kTableWidth, io.color);
    io.out << "(TODAY: since local midnight; FAILED, REJECTED: last 24 h)\n";
  }
  PrintStuck(report.stuck, io.out, io.color);
}

Json StatusJson(const StatusReport& report) {
  Json doc = Json::array();
  for (const RouteStatus& r : report.routes) {
    const RouteActivity& a = r.activity;
    Json last = nullptr;
    if (a.last_delivery_at) {
      last = {{"time", FormatTime(*a.last_delivery_at)},
              {"file", a.last_delivery_name},
              {"uuid", a.last_delivery_uuid}};
    }
    doc.push_back({{"route", r.route->id},
                   {"data_area", r.route->data_area},
                   {"sender", r.route->sender},
                   {"recipients", r.route->recipients},
                   {"last_delivery", last},
                   {"today", a.today},
                   {"pending", r.pending},
                   {"failed_24h", a.failed_24h},
                   {"rejected_24h", a.rejected_24h}});
    const RouteHealth& worst = WorstHealth(r.health);
    Json health = Json::array();
    for (const RouteHealth& h : r.health) health.push_back(HealthJson(h));
    Json& row = doc.back();
    row["state"] = HealthStateName(worst.state);
    row["authority"] = worst.authority;
    row["due_at"] = OptionalTime(worst.due_at);
    row["next_expected_at"] = OptionalTime(worst.next_expected_at);
    row["detail"] = worst.detail;
    row["health"] = std::move(health);
  }
  return doc;
}

int RunStatus(const std::string& config_path, bool json, TimePoint now, const Io& io) {
  auto config = LoadConfigOrReport(config_path, io.err);
  if (!config) return kExitUsage;
  auto audit = OpenAuditOrReport(*config, io.err);
  if (!audit) return kExitUsage;
  auto midnight = LocalMidnight(now, config->server.time_zone);
  if (!midnight.ok()) {
    io.err << "fordeler: " << midnight.status().message() << " ([server] time_zone); "
           << "counting today from midnight UTC\n";
    midnight = LocalMidnight(now, "UTC");
  }
  auto report = BuildStatus(*config, *audit, now, *midnight);
  if (!report.ok()) {
    io.err << "fordeler: reading the audit log failed: " << report.status().message() << "\n";
    return kExitUsage;
  }
  if (json) {
    io.out << DumpJson(StatusJson(*report), 2) << "\n";
    PrintStuck(report->stuck, io.err, false);
  } else {
    PrintStatusTable(*report, io);
  }
  return report->stuck.empty() && !report->overdue ? kExitOk : kExitBadNews;
}

Command AddStatusCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "status",
      "Per route: state (OK, LATE, MISSING, FAILED), last delivery, today's count, pending, "
      "failed and rejected");
  auto json = std::make_shared<bool>(false);
  AddJsonFlag(app, json.get());
  return Command{app, [&global, json] {
                   Io io{std::cout, std::cerr, StdoutIsTerminal()};
                   return RunStatus(global.config_path, *json, Now(), io);
                 }};
}

}  // namespace fordeler::cli
