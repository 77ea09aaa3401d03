// Router: maps one request (method and target) to a reply: the status pages, the JSON API and
// /metrics. It does no I/O beyond the audit log's reads; the server (http_server.h) handles
// sockets, TLS, limits and basic auth. Read-only: GET and HEAD only (405 with Allow otherwise),
// 404 for a path it does not know, 503 when the audit log cannot be read.
//
//   /                      overview of every route and authority (no file names)
//   /routes/<id>           a route: states per authority, recent transfers, 30-day chart
//   /transfers/<uuid>      a transfer's full history
//   /api/routes, /api/routes/<id>, /api/transfers/<uuid>   the same as JSON
//   /metrics               Prometheus text format 0.0.4
//
// Thread-safe: Handle may run on several threads at once.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/metrics.h"
#include "http/status_model.h"

namespace fordeler {

struct HttpReply {
  unsigned status = 200;
  std::string content_type = "text/html; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;  // extra ones (Allow, ...)
};

// Where the router reads what it shows. Every pointer outlives the router.
struct StatusSources {
  std::function<std::shared_ptr<const Config>()> config;  // the current configuration
  AuditStore* audit = nullptr;
  const Metrics* metrics = nullptr;         // null: only the scrape-time gauges
  std::function<size_t()> active_sessions;  // empty: the gauge is left out
  std::function<TimePoint()> now;           // empty: the system clock
  // Triggers waiting for their turn, transfers begun and not finished (DeliveryPipeline::load);
  // empty: the gauges are left out.
  std::function<std::pair<size_t, size_t>()> delivery_load;
};

class Router {
 public:
  explicit Router(StatusSources sources);

  HttpReply Handle(std::string_view method, std::string_view target) const;
  // The /metrics body; "" and a failed Status when the audit log cannot be read.
  Result<std::string> RenderMetrics() const;

 private:
  HttpReply Get(std::string_view path) const;
  HttpReply Overview(bool json) const;
  HttpReply RoutePage(const std::string& id, bool json) const;
  HttpReply TransferPage(const std::string& uuid, bool json) const;
  TimePoint Now() const;

  StatusSources sources_;
  StatusModel model_;
};

// The path of a request target without query string or fragment.
std::string_view TargetPath(std::string_view target);

}  // namespace fordeler
