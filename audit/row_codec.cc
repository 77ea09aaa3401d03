#include "audit/row_codec.h"

namespace fordeler {
namespace {

void BindTime(Stmt& stmt, int i, const std::optional<TimePoint>& t) {
  if (t) {
    stmt.Bind(i, FormatTime(*t));
  } else {
    stmt.BindNull(i);
  }
}

Status Malformed(std::string_view what, std::string_view value) {
  return Status::Internal("audit database holds a malformed " + std::string(what) + ": '" +
                          std::string(value) + "'");
}

Status ReadTime(const Stmt& stmt, int col, TimePoint* out) {
  std::string text = stmt.Text(col);
  if (!ParseTime(text, out)) return Malformed("time", text);
  return Status::Ok();
}

Status ReadOptionalTime(const Stmt& stmt, int col, std::optional<TimePoint>* out) {
  out->reset();
  if (stmt.IsNull(col)) return Status::Ok();
  TimePoint t;
  Status s = ReadTime(stmt, col, &t);
  if (s.ok()) *out = t;
  return s;
}

}  // namespace

std::string JoinRouteIds(const std::vector<std::string>& ids) {
  std::string out;
  for (const std::string& id : ids) {
    if (!out.empty()) out += ',';
    out += id;
  }
  return out;
}

std::vector<std::string> SplitRouteIds(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    size_t comma = text.find(',');
    out.emplace_back(text.substr(0, comma));
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return out;
}

void BindTransfer(Stmt& stmt, const TransferRecord& t, TimePoint now) {
  stmt.Bind(1, t.uuid);
  stmt.Bind(2, t.sender);
  stmt.Bind(3, t.trigger_name);
  stmt.Bind(4, t.name);
  stmt.BindOptional(5, t.senders_file_id);
  if (t.size) {
    stmt.Bind(6, static_cast<int64_t>(*t.size));
  } else {
    stmt.BindNull(6);
  }
  stmt.BindOptional(7, t.sha256);
  stmt.BindOptional(8, t.data_area);
  stmt.BindOptional(9, t.authority);
  stmt.Bind(10, JoinRouteIds(t.route_ids));
  stmt.Bind(11, ToString(t.state));
  stmt.Bind(12, static_cast<int64_t>(t.step));
  if (t.error_code != 0) {
    stmt.Bind(13, static_cast<int64_t>(t.error_code));
  } else {
    stmt.BindNull(13);
  }
  stmt.Bind(14, t.error_description);
  stmt.Bind(15, t.trigger_xml);
  stmt.Bind(16, t.receipt_xml);
  stmt.Bind(17, FormatTime(t.received_at));
  stmt.Bind(18, FormatTime(now));
}

void BindDelivery(Stmt& stmt, const DeliveryRecord& d) {
  stmt.Bind(1, d.transfer_uuid);
  stmt.Bind(2, d.recipient);
  stmt.Bind(3, d.name_in_in);
  stmt.Bind(4, ToString(d.state));
  BindTime(stmt, 5, d.delivered_at);
  BindTime(stmt, 6, d.picked_up_at);
  BindTime(stmt, 7, d.expired_at);
  BindTime(stmt, 8, d.recalled_at);
}

Result<TransferRecord> ReadTransfer(const Stmt& stmt) {
  TransferRecord t;
  t.uuid = stmt.Text(0);
  t.sender = stmt.Text(1);
  t.trigger_name = stmt.Text(2);
  t.name = stmt.Text(3);
  t.senders_file_id = stmt.OptionalText(4);
  if (!stmt.IsNull(5)) t.size = static_cast<uint64_t>(stmt.Int(5));
  t.sha256 = stmt.OptionalText(6);
  t.data_area = stmt.OptionalText(7);
  t.authority = stmt.OptionalText(8);
  t.route_ids = SplitRouteIds(stmt.Text(9));
  std::string state = stmt.Text(10);
  if (!ParseTransferState(state, &t.state)) return Malformed("transfer state", state);
  int64_t step = stmt.Int(11);
  if (step < 0 || step > static_cast<int64_t>(TransferStep::kRejecting)) {
    return Malformed("transfer step", std::to_string(step));
  }
  t.step = static_cast<TransferStep>(step);
  t.error_code = stmt.IsNull(12) ? 0 : static_cast<int>(stmt.Int(12));
  t.error_description = stmt.Text(13);
  t.trigger_xml = stmt.Text(14);
  t.receipt_xml = stmt.Text(15);
  Status s = ReadTime(stmt, 16, &t.received_at);
  if (s.ok()) s = ReadTime(stmt, 17, &t.updated_at);
  if (!s.ok()) return s;
  return t;
}

Result<DeliveryRecord> ReadDelivery(const Stmt& stmt) {
  DeliveryRecord d;
  d.transfer_uuid = stmt.Text(0);
  d.recipient = stmt.Text(1);
  d.name_in_in = stmt.Text(2);
  std::string state = stmt.Text(3);
  if (!ParseDeliveryState(state, &d.state)) return Malformed("delivery state", state);
  Status s = ReadOptionalTime(stmt, 4, &d.delivered_at);
  if (s.ok()) s = ReadOptionalTime(stmt, 5, &d.picked_up_at);
  if (s.ok()) s = ReadOptionalTime(stmt, 6, &d.expired_at);
  if (s.ok()) s = ReadOptionalTime(stmt, 7, &d.recalled_at);
  if (!s.ok()) return s;
  return d;
}

Result<EventRecord> ReadEvent(const Stmt& stmt) {
  EventRecord e;
  e.seq = stmt.Int(0);
  Status s = ReadTime(stmt, 1, &e.time);
  if (!s.ok()) return s;
  e.kind = stmt.Text(2);
  e.transfer_uuid = stmt.Text(3);
  e.account = stmt.Text(4);
  e.detail = stmt.Text(5);
  e.hash = stmt.Text(6);
  return e;
}

}  // namespace fordeler
