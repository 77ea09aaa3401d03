// Route health (docs/operations.md, "Schedules and alerts"): for each route, and for each
// authority of a route with a schedule, whether deliveries arrive as expected.
//
// States:
// - LATE: the latest expected delivery whose grace has passed (due instant T, T + grace < now)
//   has not arrived: no accepted transfer (state delivering or delivered) on the route — for the
//   row's authority — was received after the previous due instant's grace ended (P + grace).
//   A delivery may come early: anything after the previous expectation's grace counts.
// - MISSING: the same, once a second grace has passed too (now > T + 2 x grace).
// - FAILED: within the last 24 h, the newest transfer of the route's sender in the route's data
//   area (or none known yet), for the row's authority (or none known yet), was rejected or is
//   failing with fordeler's own error (5001), and no other transfer was accepted on the route
//   after it (the failing transfer itself, accepted and stuck delivering, does not count).
// - OK: none of these. LATE and MISSING take precedence over FAILED.
//
// A schedule is judged only from when fordelerd began watching it (watched_since): the oldest
// `route_watched` audit event with the row's WatchKey, which the Monitor records the first time
// it sees the row's route, authority and `expect`. A due instant before that is neither LATE nor
// MISSING — a route added, given `expect`, given a new authority or a new schedule is not blamed
// for deliveries due before the change. Without the event (fordelerd has not yet loaded this
// schedule) nothing is due yet.
//
// Rows: one per authority listed on a route with `expect` (each authority is expected on its
// own); one with authority "*" for a route with `expect` and authorities ["*"] (a delivery for
// any authority fulfils), and one with authority "*" for each route without a schedule (it can
// only be OK or FAILED). Rows come in configuration order.
//
// EvaluateRouteHealth only reads; it is safe on any thread that may use the AuditStore's read
// side. `now` is injected.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/status.h"

namespace fordeler {

enum class HealthState { kOk, kLate, kMissing, kFailed };
const char* HealthStateName(HealthState s);  // "OK", "LATE", "MISSING", "FAILED"

// How far back FAILED looks.
inline constexpr std::chrono::hours kFailedWindow{24};

struct RouteHealth {
  const Route* route = nullptr;  // points into the Config passed in
  std::string authority;  // the authority this row is for; "*" = all authorities of the route
  HealthState state = HealthState::kOk;
  // The newest transfer delivered (state delivered) on this route for this authority, and when
  // its last delivery was placed (AuditStore::LastDelivered, as `fordeler status` shows it). A
  // transfer still delivering, or failing with 5001, is not one. Unset / "": none yet.
  std::optional<TimePoint> last_delivery_at;
  std::string last_transfer_uuid;
  std::optional<TimePoint> due_at;  // the expected delivery that is late/missing, if any
  std::optional<TimePoint>
      next_expected_at;  // next scheduled instant after now; unset when the route has no schedule
  std::string detail;    // one human sentence explaining the state (no file names)
  // When fordelerd began watching this row's schedule; unset: not yet, or no schedule.
  std::optional<TimePoint> watched_since;
};

// The detail of the `route_watched` audit event for `route`'s schedule as seen by the row of
// `authority`: "route=R authority=A expect=daily_06:00,weekly_mon_06:00" (entries in a canonical
// spelling, sorted, spaces as "_"). Any change of the three is a schedule watched anew.
// REQUIRES: route.expect is not empty.
std::string WatchKey(const Route& route, const std::string& authority);

// One row per (route, authority) that has a schedule, and one row with authority "*" for each
// route without one (see above). last_delivery_at is when the newest delivered transfer was
// placed; LATE and MISSING look at accepted transfers instead (see above). Fails only when the
// audit log cannot be read or the time zone is unknown.
Result<std::vector<RouteHealth>> EvaluateRouteHealth(const Config& config, AuditStore& audit,
                                                     TimePoint now);

}  // namespace fordeler
