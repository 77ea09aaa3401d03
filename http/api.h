// The JSON API under /api/ (field names documented in docs/operations.md; stable). Times are
// RFC 3339 UTC with milliseconds, or null. The route list shows no file names; a route's and a
// transfer's documents do (as `fordeler show --json` does), but never a file's content: the
// trigger and receipt XML are summarised, not included. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <vector>

#include "http/status_model.h"

namespace fordeler {

nlohmann::json RoutesJson(const std::vector<RouteStatus>& routes, TimePoint now);
nlohmann::json RouteJson(const RouteDetail& detail, TimePoint now);
nlohmann::json TransferDetailJson(const TransferDetail& detail);

}  // namespace fordeler
