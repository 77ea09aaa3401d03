// An alert (docs/operations.md, "Alerts") and the small interface through which a part raises
// one. Declared here, in core, so that delivery/ (retention warnings) can raise alerts without
// depending on monitor/, whose Alerter logs them, records them and runs [alerts] on_alert;
// daemon/ wires them together.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace fordeler {

struct Alert {
  std::string kind;  // late, missing, rejected, not_picked_up, retention_warning, stuck
  std::string route;
  std::string authority;
  std::string state;  // LATE, MISSING, REJECTED, NOT_PICKED_UP, RETENTION_WARNING, STUCK
  // The expected delivery's due instant; for retention_warning, when the file expires.
  std::optional<std::chrono::system_clock::time_point> due;
  std::string transfer;
  std::string file;
  std::string sender;
  std::string recipient;
  int error_code = 0;
  std::string message;
  // The audit event: its account, and the detail that identifies this alert (it starts the
  // event's detail; AuditStore::AlertRecorded looks for it), e.g.
  // "kind=late route=r authority=* due=2026-11-23T05:00:00.000Z".
  std::string account;
  std::string key;
};

// Raises alerts: logs each (`event=alert`), records its audit event `alert` (detail starting
// with Alert::key) and runs the operator's command. Implementations are thread-safe and do not
// block on the command.
class AlertSink {
 public:
  virtual ~AlertSink() = default;
  virtual void Raise(Alert alert) = 0;
};

}  // namespace fordeler
