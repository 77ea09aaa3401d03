#include "http/api.h"

#include "core/error_codes.h"
#include "http/pages.h"

namespace fordeler {
namespace {

using Json = nlohmann::json;

Json Time(const std::optional<TimePoint>& t) { return t ? Json(FormatTime(*t)) : Json(nullptr); }
Json Text(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

Json AuthorityJson(const AuthorityStatus& a) {
  return {{"authority", a.authority},
          {"state", a.state},
          {"detail", a.detail},
          {"last_delivery_at", Time(a.last_delivery_at)},
          {"last_transfer_uuid", Text(a.last_transfer_uuid)},
          {"due_at", Time(a.due_at)},
          {"next_expected_at", Time(a.next_expected_at)}};
}

Json RouteStatusJson(const RouteStatus& r) {
  Json authorities = Json::array();
  for (const auto& a : r.authorities) authorities.push_back(AuthorityJson(a));
  return {{"id", r.route->id},
          {"data_area", r.route->data_area},
          {"sender", r.route->sender},
          {"recipients", r.route->recipients},
          {"state", r.state},
          {"authorities", authorities},
          {"delivered_today", r.activity.today},
          {"rejected_24h", r.activity.rejected_24h},
          {"failed_24h", r.activity.failed_24h}};
}

Json ReceiptJson(const TransferRecord& t) {
  if (t.receipt_xml.empty()) return nullptr;
  // Named as the receipt itself says it: SUCCESS, or the error's name.
  std::string name =
      t.error_code ? std::string(ErrorName(ErrorCodeFromInt(t.error_code))) : "SUCCESS";
  return {{"code", t.error_code},
          {"name", std::move(name)},
          {"description", t.error_code ? Json(t.error_description) : Json(nullptr)}};
}

Json TransferSummary(const TransferRecord& t) {
  return {{"uuid", t.uuid},
          {"sender", t.sender},
          {"name", t.name},
          {"data_area", t.data_area ? Json(*t.data_area) : Json(nullptr)},
          {"authority", t.authority ? Json(*t.authority) : Json(nullptr)},
          {"routes", t.route_ids},
          {"state", std::string(ToString(t.state))},
          {"step", std::string(ToString(t.step))},
          {"size", t.size ? Json(*t.size) : Json(nullptr)},
          {"received_at", FormatTime(t.received_at)},
          {"updated_at", FormatTime(t.updated_at)},
          {"error_code", t.error_code ? Json(t.error_code) : Json(nullptr)},
          {"receipt", ReceiptJson(t)}};
}

}  // namespace

Json RoutesJson(const std::vector<RouteStatus>& routes, TimePoint now) {
  Json list = Json::array();
  for (const auto& r : routes) list.push_back(RouteStatusJson(r));
  return {{"generated_at", FormatTime(now)}, {"routes", list}};
}

Json RouteJson(const RouteDetail& d, TimePoint now) {
  Json doc = RouteStatusJson(d.status);
  doc["generated_at"] = FormatTime(now);
  doc["recent_transfers"] = Json::array();
  for (const auto& t : d.recent) doc["recent_transfers"].push_back(TransferSummary(t));
  doc["deliveries_per_day"] = Json::array();
  for (const auto& day : d.per_day) {
    doc["deliveries_per_day"].push_back({{"day", day.day}, {"count", day.count}});
  }
  return doc;
}

Json TransferDetailJson(const TransferDetail& d) {
  const TransferRecord& t = d.transfer;
  Json doc = TransferSummary(t);
  doc["trigger_name"] = t.trigger_name;
  doc["senders_file_id"] = t.senders_file_id ? Json(*t.senders_file_id) : Json(nullptr);
  doc["sha256"] = t.sha256 ? Json(*t.sha256) : Json(nullptr);
  doc["error_description"] = t.error_code ? Json(t.error_description) : Json(nullptr);
  doc["deliveries"] = Json::array();
  for (const DeliveryRecord& x : d.deliveries) {
    doc["deliveries"].push_back({{"recipient", x.recipient},
                                 {"name", Text(x.name_in_in)},
                                 {"state", std::string(ToString(x.state))},
                                 {"delivered_at", Time(x.delivered_at)},
                                 {"picked_up_at", Time(x.picked_up_at)},
                                 {"expired_at", Time(x.expired_at)},
                                 {"recalled_at", Time(x.recalled_at)}});
  }
  doc["events"] = Json::array();
  for (const EventRecord& e : d.events) {
    doc["events"].push_back({{"seq", e.seq},
                             {"time", FormatTime(e.time)},
                             {"kind", e.kind},
                             {"account", e.account},
                             {"detail", e.detail}});
  }
  return doc;
}

}  // namespace fordeler
