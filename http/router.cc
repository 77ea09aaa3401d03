#include "http/router.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <cctype>

#include "core/uuid.h"
#include "http/api.h"
#include "http/pages.h"

namespace fordeler {
namespace {

HttpReply Reply(unsigned status, std::string body,
                std::string content_type = "text/html; charset=utf-8") {
  HttpReply r;
  r.status = status;
  r.body = std::move(body);
  r.content_type = std::move(content_type);
  return r;
}

// A name that came from the file system need not be UTF-8, and JSON text must be: each byte that
// is not becomes U+FFFD (nlohmann's default would throw, and the exception end the daemon).
std::string Dump(const nlohmann::json& doc, int indent) {
  return doc.dump(indent, ' ', false, nlohmann::json::error_handler_t::replace);
}

HttpReply Error(unsigned status, const std::string& message, bool json) {
  if (json) {
    return Reply(status, Dump(nlohmann::json{{"error", message}}, -1) + "\n", "application/json");
  }
  return Reply(status, ErrorPage(static_cast<int>(status), message));
}

HttpReply Unavailable(const Status& s, bool json) {
  // The message names the database, not a file of a transfer; it is the operator's own page.
  return Error(503, "the audit log cannot be read: " + s.message(), json);
}

HttpReply Json(const nlohmann::json& doc) {
  return Reply(200, Dump(doc, 2) + "\n", "application/json");
}

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string_view TargetPath(std::string_view target) {
  return target.substr(0, target.find_first_of("?#"));
}

Router::Router(StatusSources sources) : sources_(std::move(sources)), model_(sources_.audit) {}

TimePoint Router::Now() const {
  return sources_.now ? sources_.now() : std::chrono::system_clock::now();
}

HttpReply Router::Handle(std::string_view method, std::string_view target) const {
  if (method != "GET" && method != "HEAD") {
    std::string_view path = TargetPath(target);
    bool api = path == "/api" || StartsWith(path, "/api/");
    HttpReply r = Error(405, "only GET and HEAD are served here", api);
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  return Get(TargetPath(target));
}

HttpReply Router::Get(std::string_view path) const {
  if (path == "/") return Overview(false);
  if (path == "/api/routes") return Overview(true);
  if (path == "/metrics") {
    auto text = RenderMetrics();
    if (!text.ok()) return Unavailable(text.status(), false);
    return Reply(200, std::move(*text), "text/plain; version=0.0.4; charset=utf-8");
  }
  for (bool json : {false, true}) {
    std::string_view prefix = json ? "/api" : "";
    std::string_view rest = path;
    if (!StartsWith(rest, prefix)) continue;
    rest.remove_prefix(prefix.size());
    if (StartsWith(rest, "/routes/") && rest.size() > 8) {
      return RoutePage(std::string(rest.substr(8)), json);
    }
    if (StartsWith(rest, "/transfers/") && rest.size() > 11) {
      return TransferPage(std::string(rest.substr(11)), json);
    }
  }
  return Error(404, "no such page", StartsWith(path, "/api/"));
}

HttpReply Router::Overview(bool json) const {
  auto config = sources_.config();
  TimePoint now = Now();
  auto routes = model_.Routes(*config, now);
  if (!routes.ok()) return Unavailable(routes.status(), json);
  return json ? Json(RoutesJson(*routes, now)) : Reply(200, OverviewPage(*routes, now));
}

HttpReply Router::RoutePage(const std::string& id, bool json) const {
  auto config = sources_.config();
  TimePoint now = Now();
  auto detail = model_.RouteById(*config, id, now);
  if (!detail.ok()) return Unavailable(detail.status(), json);
  if (!detail->has_value()) return Error(404, "no such route", json);
  return json ? Json(RouteJson(**detail, now)) : Reply(200, fordeler::RoutePage(**detail, now));
}

HttpReply Router::TransferPage(const std::string& uuid, bool json) const {
  if (!IsUuid(uuid)) return Error(404, "not a FileTransferUUID", json);
  auto detail = model_.Transfer(Lower(uuid));
  if (!detail.ok()) return Unavailable(detail.status(), json);
  if (!detail->has_value()) return Error(404, "no such transfer", json);
  return json ? Json(TransferDetailJson(**detail)) : Reply(200, fordeler::TransferPage(**detail));
}

Result<std::string> Router::RenderMetrics() const {
  std::string out;
  if (sources_.metrics != nullptr) sources_.metrics->Render(&out);
  auto config = sources_.config();
  auto pending = model_.PendingDeliveries();
  if (!pending.ok()) return pending.status();
  auto late = model_.LateRoutes(*config, Now());
  if (!late.ok()) return late.status();
  AppendGauge(&out, "fordeler_pending_deliveries",
              "Deliveries placed in a recipient's IN and not yet picked up.",
              static_cast<double>(*pending));
  AppendGauge(&out, "fordeler_late_routes", "Routes and authorities that are LATE or MISSING.",
              static_cast<double>(*late));
  if (sources_.active_sessions) {
    AppendGauge(&out, "fordeler_active_sessions", "Open SSH sessions.",
                static_cast<double>(sources_.active_sessions()));
  }
  if (sources_.delivery_load) {
    auto [waiting, in_progress] = sources_.delivery_load();
    AppendGauge(&out, "fordeler_triggers_waiting",
                "Triggers announced and waiting for their turn to be routed (still in OUT).",
                static_cast<double>(waiting));
    AppendGauge(&out, "fordeler_transfers_in_progress",
                "Transfers begun and not finished (also those waiting for data or a retry).",
                static_cast<double>(in_progress));
  }
  struct statvfs fs {};
  if (statvfs(config->storage.root.c_str(), &fs) == 0) {
    AppendGauge(&out, "fordeler_storage_free_bytes",
                "Bytes available to fordeler in the storage root's file system.",
                static_cast<double>(fs.f_bavail) * static_cast<double>(fs.f_frsize));
  }
  return out;
}

}  // namespace fordeler
