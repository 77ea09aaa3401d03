#include "daemon/control_request.h"

#include <nlohmann/json.hpp>
#include <string>
#include <utility>

namespace fordeler {

Result<ControlRequest> ParseControlRequest(std::string_view line) {
  // Without exceptions: a parse error is a "discarded" value.
  const nlohmann::json request = nlohmann::json::parse(line, nullptr, false);
  if (!request.is_object()) return Status::InvalidArgument("not a JSON object");
  ControlRequest parsed;
  const std::pair<const char*, std::string*> fields[] = {
      {"command", &parsed.command}, {"uuid", &parsed.uuid}, {"recipient", &parsed.recipient}};
  for (const auto& [name, out] : fields) {
    auto it = request.find(name);
    if (it == request.end()) continue;
    if (!it->is_string()) {
      return Status::InvalidArgument("\"" + std::string(name) + "\" is not a string");
    }
    *out = it->get<std::string>();
  }
  return parsed;
}

}  // namespace fordeler
