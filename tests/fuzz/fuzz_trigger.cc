// libFuzzer target: the trigger parser (metadata/trigger_parser.h) on arbitrary bytes, and the
// metadata writer on whatever parses (what is written must parse back).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metadata/documents.h"
#include "metadata/trigger_parser.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fordeler;
  Trigger trigger;
  Rejection why;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (!ParseTrigger(bytes, &trigger, &why)) {
    if (why.description.empty()) std::abort();  // every rejection explains itself
    return 0;
  }
  MetadataFields m;
  m.file_transfer_uuid = "5f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c71";
  m.file_name = trigger.file_name;
  m.size_in_bytes = trigger.size_in_bytes;
  m.sender = trigger.sender;
  m.senders_file_id = trigger.senders_file_id;
  m.recipient = trigger.recipients.front();
  m.inf_ref = trigger.routing.inf_ref.value_or("x");
  m.transaction_id = trigger.routing.transaction_id;
  m.route_parameters = trigger.routing.route_parameters;
  std::string written = WriteMetadata(m);
  // Escaping can make the metadata larger than a trigger may be (every '&' of a 64 KiB trigger's
  // RouteParameter becomes "&amp;"); what fits must parse back.
  if (written.size() > kMaxTriggerBytes) return 0;
  Trigger back;
  if (!ParseTrigger(written, &back, &why)) std::abort();
  return 0;
}
