#include "http/route_states.h"

#include "monitor/route_health.h"

namespace fordeler {

Result<std::vector<RouteState>> EvaluateStates(const Config& config, AuditStore& audit,
                                               TimePoint now) {
  auto health = EvaluateRouteHealth(config, audit, now);
  if (!health.ok()) return health.status();
  std::vector<RouteState> out;
  for (const RouteHealth& h : *health) {
    RouteState s;
    s.route = h.route;
    s.status.authority = h.authority;
    s.status.state = HealthStateName(h.state);
    s.status.last_delivery_at = h.last_delivery_at;
    s.status.last_transfer_uuid = h.last_transfer_uuid;
    s.status.due_at = h.due_at;
    s.status.next_expected_at = h.next_expected_at;
    s.status.detail = h.detail;
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace fordeler
