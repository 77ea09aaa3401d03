// `fordeler [--config FILE] status [--json]` (contract §10): one row per configured route — its
// data area, sender and recipients, the last delivery (time and file), deliveries today (since
// local midnight in [server] time_zone), pending deliveries (not yet picked up), and the
// sender's failures (5xxx) and rejections of the last 24 h — answered from the audit log.
//
// Exit 1 when some transfer needs the operator: unfinished for over 5 minutes, or failing with
// 5001 (fordeler's own error, being retried); they are listed under the table (on stderr with
// --json). Else 0; 2 for a configuration or database error.
//
// --json: an array of {route, data_area, sender, recipients, last_delivery, today, pending,
// failed_24h, rejected_24h}; last_delivery is {time, file, uuid} or null.
#pragma once

#include <string>
#include <vector>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"
#include "config/config.h"

namespace fordeler::cli {

inline constexpr std::chrono::minutes kStuckAfter{5};

struct RouteStatus {
  const Route* route = nullptr;
  RouteActivity activity;
  int64_t pending = 0;
};

struct StatusReport {
  std::vector<RouteStatus> routes;    // in configuration order
  std::vector<TransferRecord> stuck;  // unfinished > kStuckAfter, or failing with 5001
};

// `midnight` is the start of today (LocalMidnight).
Result<StatusReport> BuildStatus(const Config& config, AuditStore& audit, TimePoint now,
                                 TimePoint midnight);
void PrintStatusTable(const StatusReport& report, const Io& io);
Json StatusJson(const StatusReport& report);

int RunStatus(const std::string& config_path, bool json, TimePoint now, const Io& io);
Command AddStatusCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
