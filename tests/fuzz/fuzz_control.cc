// libFuzzer target: the control socket's request parser (daemon/control_request.h) on arbitrary
// bytes. It must never throw (an exception would end fordelerd's control thread, and with it the
// daemon), and what it accepts holds the fields as sent.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "daemon/control_request.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fordeler;
  std::string_view line(reinterpret_cast<const char*>(data), size);
  auto request = ParseControlRequest(line);
  if (!request.ok()) {
    if (request.status().message().empty()) std::abort();  // every refusal says why
    return 0;
  }
  // Each field came from a JSON string of the line, so none can be longer than the line.
  if (request->command.size() > size || request->uuid.size() > size ||
      request->recipient.size() > size) {
    std::abort();
  }
  return 0;
}
