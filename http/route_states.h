// The bridge from monitor/'s route health (monitor/route_health.h) to the status model: one
// AuthorityStatus per route and authority the monitor evaluates. Thread-safe.
#pragma once

#include <vector>

#include "audit/audit_store.h"
#include "config/config.h"
#include "http/status_model.h"

namespace fordeler {

struct RouteState {
  const Route* route = nullptr;  // into `config`
  AuthorityStatus status;
};

Result<std::vector<RouteState>> EvaluateStates(const Config& config, AuditStore& audit,
                                               TimePoint now);

}  // namespace fordeler
