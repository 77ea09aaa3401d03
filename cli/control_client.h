// The CLI's side of fordelerd's control socket (daemon/control_server.h): the mutating commands
// (retry, recall, redeliver, quarantine release|purge) ask the running daemon, which is the only
// writer of the audit log. The socket is <storage root>/control.sock (mode 0660: root and the
// daemon's group).
//
// Protocol: one request line, one reply line, each one JSON object.
//   request: {"command": "retry"|"recall"|"redeliver"|"release"|"purge", "uuid": UUID,
//             "recipient": ID (recall: optional; redeliver: required)}
//   reply:   {"ok": true, "message": TEXT, ...details} or
//            {"ok": false, "error": "not_found"|"refused"|"bad_request"|"failed",
//             "message": TEXT}
#pragma once

#include <string>

#include "cli/cli_support.h"
#include "config/config.h"
#include "core/status.h"

namespace fordeler::cli {

inline constexpr const char* kControlSocketName = "control.sock";

std::string ControlSocketPath(const Config& config);

// Sends `request`, returns the daemon's reply. kUnavailable when the daemon is not running (no
// socket, or nobody listening), kPermissionDenied when this user may not use the socket;
// kInternal or an OS error for a broken exchange. Waits at most `timeout_ms` for the reply.
Result<Json> CallDaemon(const std::string& socket_path, const Json& request,
                        int timeout_ms = 60'000);

}  // namespace fordeler::cli
