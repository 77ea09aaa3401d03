// `fordeler [--config FILE] status [--json]` (contract §10): one row per configured route — its
// data area, sender and recipients, the last delivery (time and file), deliveries today (since
// local midnight in [server] time_zone), pending deliveries (not yet picked up), and the
// sender's failures (5xxx) and rejections of the last 24 h — answered from the audit log.
//
// STATE is the route's health (monitor/route_health.h: OK, LATE, MISSING, FAILED; the worst of
// its authorities' when each is expected on its own), red on a terminal when not OK; a route
// not OK gets a note per authority with the reason.
//
// Exit 1 while a route is LATE or MISSING, or when some transfer needs the operator: unfinished
// for over 5 minutes, or failing with 5001 (fordeler's own error, being retried); they are
// listed under the table (on stderr with --json). Else 0; 2 for a configuration or database
// error.
//
// --json: an array of {route, data_area, sender, recipients, last_delivery, today, pending,
// failed_24h, rejected_24h, state, authority, due_at, next_expected_at, detail, health};
// last_delivery is {time, file, uuid} or null; state .. detail are the worst health row's
// (due_at and next_expected_at RFC 3339 or null); health holds every row of the route as
// {authority, state, due_at, next_expected_at, last_delivery_at, detail}.
#pragma once

#include <string>
#include <vector>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"
#include "config/config.h"
#include "monitor/route_health.h"

namespace fordeler::cli {

struct RouteStatus {
  const Route* route = nullptr;
  RouteActivity activity;
  int64_t pending = 0;
  std::vector<RouteHealth> health;  // its rows, in order; at least one
};

struct StatusReport {
  std::vector<RouteStatus> routes;    // in configuration order
  std::vector<TransferRecord> stuck;  // unfinished > kStuckAfter, or failing with 5001
  bool overdue = false;               // some route is LATE or MISSING
};

// The row of `rows` in the worst state (MISSING, LATE, FAILED, OK); the first of equals.
// REQUIRES: rows not empty.
const RouteHealth& WorstHealth(const std::vector<RouteHealth>& rows);

// `midnight` is the start of today (LocalMidnight).
Result<StatusReport> BuildStatus(const Config& config, AuditStore& audit, TimePoint now,
                                 TimePoint midnight);
void PrintStatusTable(const StatusReport& report, const Io& io);
Json StatusJson(const StatusReport& report);

int RunStatus(const std::string& config_path, bool json, TimePoint now, const Io& io);
Command AddStatusCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
