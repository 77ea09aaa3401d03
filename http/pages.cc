#include "http/pages.h"

#include "core/error_codes.h"
#include "http/html.h"

namespace fordeler {
namespace {

std::string Cell(const std::string& html) { return "<td>" + html + "</td>"; }
std::string TextCell(const std::string& text) { return Cell(HtmlEscape(text)); }

std::string RouteLink(const Route& route) {
  return "<a href=\"/routes/" + HtmlEscape(route.id) + "\">" + HtmlEscape(route.id) + "</a>";
}

std::string TransferLink(const std::string& uuid) {
  if (uuid.empty()) return "-";
  return "<a href=\"/transfers/" + HtmlEscape(uuid) + "\">" + HtmlEscape(uuid) + "</a>";
}

std::string Joined(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
  return out;
}

std::string AuthorityRows(const RouteStatus& r, bool overview) {
  std::string out;
  for (const AuthorityStatus& a : r.authorities) {
    out += "<tr class=\"authority\" data-route=\"" + HtmlEscape(r.route->id) +
           "\" data-authority=\"" + HtmlEscape(a.authority) + "\">";
    if (overview) out += Cell(RouteLink(*r.route)) + TextCell(r.route->data_area);
    out += TextCell(a.authority == "*" ? "all" : a.authority) + Cell(StateBadge(a.state)) +
           Cell(HtmlTime(a.last_delivery_at)) + Cell(HtmlTime(a.next_expected_at));
    if (!overview) out += Cell(HtmlTime(a.due_at)) + TextCell(a.detail);
    if (overview) {
      out += TextCell(std::to_string(r.activity.today)) +
             TextCell(std::to_string(r.activity.rejected_24h)) +
             TextCell(std::to_string(r.activity.failed_24h));
    }
    out += "</tr>\n";
  }
  return out;
}

std::string TransferRows(const std::vector<TransferRecord>& transfers) {
  std::string out;
  for (const TransferRecord& t : transfers) {
    out += "<tr class=\"transfer\">" + Cell(TransferLink(t.uuid)) + Cell(HtmlTime(t.received_at)) +
           TextCell(t.name) + TextCell(t.authority.value_or("-")) +
           TextCell(std::string(ToString(t.state))) +
           TextCell(ReceiptSummary(t).empty() ? "not sent yet" : ReceiptSummary(t)) + "</tr>\n";
  }
  return out;
}

}  // namespace

std::string ReceiptSummary(const TransferRecord& t) {
  if (t.receipt_xml.empty()) return "";
  if (t.error_code == 0) return "0 OK";
  return std::to_string(t.error_code) + " " +
         std::string(ErrorName(ErrorCodeFromInt(t.error_code))) + ": " + t.error_description;
}

std::string OverviewPage(const std::vector<RouteStatus>& routes, TimePoint now) {
  std::string body = "<h1>fordeler: routes</h1><p class=\"muted\">As of " + HtmlTime(now) +
                     ". Times are UTC.</p>\n";
  body +=
      "<table id=\"routes\"><tr><th>Route</th><th>Data area</th><th>Authority</th>"
      "<th>State</th><th>Last delivery</th><th>Next expected</th><th>Delivered today</th>"
      "<th>Rejected 24 h</th><th>Failed 24 h</th></tr>\n";
  for (const RouteStatus& r : routes) body += AuthorityRows(r, true);
  body += "</table>";
  if (routes.empty()) body += "<p>No routes are configured.</p>";
  return HtmlPage("fordeler status", body);
}

std::string RoutePage(const RouteDetail& d, TimePoint now) {
  const Route& route = *d.status.route;
  std::string body = "<h1>Route " + HtmlEscape(route.id) + " " + StateBadge(d.status.state) +
                     "</h1><p class=\"muted\">As of " + HtmlTime(now) + ". Times are UTC.</p>";
  body += "<table><tr><th>Data area</th>" + TextCell(route.data_area) + "</tr><tr><th>Sender</th>" +
          TextCell(route.sender) + "</tr><tr><th>Recipients</th>" +
          TextCell(Joined(route.recipients)) + "</tr></table>\n";
  body +=
      "<h2>Authorities</h2><table id=\"authorities\"><tr><th>Authority</th><th>State</th>"
      "<th>Last delivery</th><th>Next expected</th><th>Due</th><th>Detail</th></tr>\n" +
      AuthorityRows(d.status, false) + "</table>\n";
  body += "<h2>Deliveries per day (last " + std::to_string(d.per_day.size()) +
          " days, UTC)</h2>\n" + DeliveriesChart(d.per_day) + "\n";
  body +=
      "<h2>Recent transfers</h2><table id=\"transfers\"><tr><th>Transfer</th><th>Received</th>"
      "<th>File</th><th>Authority</th><th>State</th><th>Receipt</th></tr>\n" +
      TransferRows(d.recent) + "</table>";
  if (d.recent.empty()) body += "<p>No transfers yet.</p>";
  return HtmlPage("fordeler route " + route.id, body);
}

std::string TransferPage(const TransferDetail& d) {
  const TransferRecord& t = d.transfer;
  auto row = [](const char* label, const std::string& html) {
    return std::string("<tr><th>") + label + "</th>" + Cell(html) + "</tr>";
  };
  std::string routes;
  for (const auto& r : t.route_ids) {
    routes += (routes.empty() ? "" : ", ") + std::string("<a href=\"/routes/") + HtmlEscape(r) +
              "\">" + HtmlEscape(r) + "</a>";
  }
  std::string body = "<h1>Transfer " + HtmlEscape(t.uuid) + "</h1><table id=\"transfer\">";
  body += row("State", HtmlEscape(std::string(ToString(t.state)) + " (step " +
                                  std::string(ToString(t.step)) + ")"));
  body +=
      row("Sender", HtmlEscape(t.sender)) + row("File", HtmlEscape(t.name)) +
      row("Data area", HtmlEscape(t.data_area.value_or("-"))) +
      row("Authority", HtmlEscape(t.authority.value_or("-"))) +
      row("Routes", routes.empty() ? "-" : routes) +
      row("Size", t.size ? std::to_string(*t.size) + " bytes" : "-") +
      row("SHA-256", HtmlEscape(t.sha256.value_or("-"))) +
      row("Received", HtmlTime(t.received_at)) + row("Updated", HtmlTime(t.updated_at)) +
      row("Receipt", HtmlEscape(ReceiptSummary(t).empty() ? "not sent yet" : ReceiptSummary(t)));
  body +=
      "</table>\n<h2>Deliveries</h2><table id=\"deliveries\"><tr><th>Recipient</th>"
      "<th>Name in IN</th><th>State</th><th>Delivered</th><th>Picked up</th></tr>";
  for (const DeliveryRecord& x : d.deliveries) {
    body += "<tr>" + TextCell(x.recipient) + TextCell(x.name_in_in) +
            TextCell(std::string(ToString(x.state))) + Cell(HtmlTime(x.delivered_at)) +
            Cell(HtmlTime(x.picked_up_at)) + "</tr>";
  }
  body +=
      "</table>\n<h2>Events</h2><table id=\"events\"><tr><th>Seq</th><th>Time</th>"
      "<th>Kind</th><th>Account</th><th>Detail</th></tr>";
  for (const EventRecord& e : d.events) {
    body += "<tr>" + TextCell(std::to_string(e.seq)) + Cell(HtmlTime(e.time)) + TextCell(e.kind) +
            TextCell(e.account) + TextCell(e.detail) + "</tr>";
  }
  body += "</table>";
  return HtmlPage("fordeler transfer " + t.uuid, body);
}

std::string ErrorPage(int status, const std::string& message) {
  return HtmlPage("fordeler: " + std::to_string(status),
                  "<h1>" + std::to_string(status) + "</h1><p>" + HtmlEscape(message) + "</p>");
}

}  // namespace fordeler
