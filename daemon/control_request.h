// ControlRequest: one request line of fordelerd's control socket (protocol in control_server.h),
// parsed without trusting it. The socket only admits root and fordelerd's group, but a script
// of theirs may still send anything: a field of the wrong type is a bad request, never an
// exception on the server's thread.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace fordeler {

struct ControlRequest {
  std::string command;    // "" when absent
  std::string uuid;       // as sent, checked by the handler
  std::string recipient;  // "" when absent
};

// A JSON object whose "command", "uuid" and "recipient" are strings where present (other
// members are ignored, for clients newer than the daemon); else kInvalidArgument saying what is
// wrong.
Result<ControlRequest> ParseControlRequest(std::string_view line);

}  // namespace fordeler
