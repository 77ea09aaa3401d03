// `fordeler show UUID`: see transfers_command.h.
#include <algorithm>
#include <cctype>

#include "cli/table.h"
#include "cli/transfers_command.h"
#include "core/error_codes.h"
#include "core/names.h"
#include "core/uuid.h"

namespace fordeler::cli {
namespace {

Json DeliveryJson(const DeliveryRecord& d) {
  return {{"recipient", d.recipient},
          {"name", d.name_in_in.empty() ? Json(nullptr) : Json(d.name_in_in)},
          {"state", ToString(d.state)},
          {"delivered_at", JsonTime(d.delivered_at)},
          {"picked_up_at", JsonTime(d.picked_up_at)},
          {"expired_at", JsonTime(d.expired_at)},
          {"recalled_at", JsonTime(d.recalled_at)}};
}

Json EventJson(const EventRecord& e) {
  return {{"seq", e.seq},
          {"time", FormatTime(e.time)},
          {"kind", e.kind},
          {"account", e.account},
          {"detail", e.detail}};
}

Json TransferJson(const TransferRecord& t) {
  Json doc = TransferSummaryJson(t);
  doc["trigger_name"] = t.trigger_name;
  doc["senders_file_id"] = JsonText(t.senders_file_id);
  doc["size"] = t.size ? Json(*t.size) : Json(nullptr);
  doc["sha256"] = JsonText(t.sha256);
  doc["authority"] = JsonText(t.authority);
  doc["routes"] = t.route_ids;
  doc["step"] = ToString(t.step);
  doc["error_name"] =
      t.error_code ? Json(std::string(ErrorName(ErrorCodeFromInt(t.error_code)))) : Json(nullptr);
  doc["error_description"] = t.error_code ? Json(t.error_description) : Json(nullptr);
  doc["updated_at"] = FormatTime(t.updated_at);
  doc["receipt"] = t.receipt_xml.empty() ? Json(nullptr) : Json(t.receipt_xml);
  doc["trigger"] = t.trigger_xml;
  return doc;
}

void PrintField(std::ostream& out, const char* label, const std::string& value) {
  out << label << std::string(18 - std::string_view(label).size(), ' ') << ShowableText(value)
      << "\n";
}

void PrintTransfer(const TransferRecord& t, std::ostream& out) {
  PrintField(out, "transfer", t.uuid);
  PrintField(out, "state",
             std::string(ToString(t.state)) + " (step " + std::string(ToString(t.step)) + ")");
  PrintField(out, "sender", t.sender);
  PrintField(out, "name", t.name + "  (trigger " + t.trigger_name + ")");
  if (t.senders_file_id) PrintField(out, "senders file id", *t.senders_file_id);
  PrintField(out, "data area", t.data_area.value_or("-"));
  PrintField(out, "authority", t.authority.value_or("-"));
  std::string routes;
  for (const auto& r : t.route_ids) routes += (routes.empty() ? "" : ", ") + r;
  PrintField(out, "routes", routes.empty() ? "-" : routes);
  if (t.size) PrintField(out, "size", std::to_string(*t.size) + " bytes");
  if (t.sha256) PrintField(out, "sha256", *t.sha256);
  PrintField(out, "received", TableTime(t.received_at));
  PrintField(out, "updated", TableTime(t.updated_at));
  if (t.error_code != 0) {
    PrintField(out, "error",
               std::to_string(t.error_code) + " " +
                   std::string(ErrorName(ErrorCodeFromInt(t.error_code))) + ": " +
                   t.error_description);
  }
}

void PrintDeliveries(const std::vector<DeliveryRecord>& deliveries, const Io& io) {
  io.out << "\nDeliveries\n";
  if (deliveries.empty()) {
    io.out << "  none\n";
    return;
  }
  Table table({{"RECIPIENT", false, true},
               {"STATE", false, false},
               {"DELIVERED", false, false},
               {"PICKED UP", false, false}});
  for (const DeliveryRecord& d : deliveries) {
    table.AddRow({d.recipient, std::string(ToString(d.state)), TableTime(d.delivered_at),
                  d.picked_up_at ? TableTime(d.picked_up_at) : "-"});
    if (!d.name_in_in.empty()) table.AddNote("IN/" + d.name_in_in);
  }
  table.Render(io.out, kTableWidth, io.color);
}

}  // namespace

int ShowTransfer(AuditStore& audit, const std::string& arg, bool json, const Io& io) {
  if (!IsUuid(arg)) {
    io.err << "fordeler show: \"" << arg << "\" is not a FileTransferUUID\n";
    return kExitUsage;
  }
  std::string uuid = arg;
  std::transform(uuid.begin(), uuid.end(), uuid.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto found = audit.GetTransfer(uuid);
  auto deliveries =
      found.ok() ? audit.DeliveriesOf(uuid) : Result<std::vector<DeliveryRecord>>(found.status());
  std::vector<EventRecord> events;
  Status s = deliveries.status();
  if (s.ok() && found->has_value()) {
    s = audit.EventsOf(uuid, [&](const EventRecord& e) {
      events.push_back(e);
      return true;
    });
  }
  if (!s.ok()) {
    io.err << "fordeler: reading the audit log failed: " << s.message() << "\n";
    return kExitUsage;
  }
  if (!found->has_value()) {
    io.err << "fordeler show: no such transfer " << uuid << "\n";
    return kExitBadNews;
  }
  const TransferRecord& t = **found;
  if (json) {
    Json doc = TransferJson(t);
    doc["deliveries"] = Json::array();
    for (const auto& d : *deliveries) doc["deliveries"].push_back(DeliveryJson(d));
    doc["events"] = Json::array();
    for (const auto& e : events) doc["events"].push_back(EventJson(e));
    io.out << DumpJson(doc, 2) << "\n";
    return kExitOk;
  }
  PrintTransfer(t, io.out);
  PrintDeliveries(*deliveries, io);
  io.out << "\nEvents\n";
  for (const EventRecord& e : events) {
    io.out << "  " << e.seq << "  " << TableTime(e.time) << "  " << ShowableText(e.kind) << "  "
           << ShowableText(e.account) << "  " << ShowableText(e.detail) << "\n";
  }
  io.out << "\nReceipt\n";
  // The receipt holds the sender's SendersFileId and descriptions: XML allows C1 controls there.
  io.out << (t.receipt_xml.empty() ? "  none sent yet\n" : ShowableText(t.receipt_xml, true));
  if (!t.receipt_xml.empty() && t.receipt_xml.back() != '\n') io.out << "\n";
  return kExitOk;
}

}  // namespace fordeler::cli
