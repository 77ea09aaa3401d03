// The HTML pages of the status page (docs/operations.md): the overview of every route and
// authority (no file names: they may hold personal identifiers), a route's page (states, recent
// transfers with their receipts, the deliveries chart) and a transfer's full history. Nothing
// shows file contents or key material: triggers and receipts are summarised, not shown.
// Pure functions of the model; thread-safe.
#pragma once

#include <string>
#include <vector>

#include "http/status_model.h"

namespace fordeler {

std::string OverviewPage(const std::vector<RouteStatus>& routes, TimePoint now);
std::string RoutePage(const RouteDetail& detail, TimePoint now);
std::string TransferPage(const TransferDetail& detail);
// A short page for errors (404, 405, ...): `message` is escaped.
std::string ErrorPage(int status, const std::string& message);

// The receipt as the status page and API summarise it: "" when none was sent yet, else
// "0 OK" or "<code> <NAME>: <description>".
std::string ReceiptSummary(const TransferRecord& t);

}  // namespace fordeler
