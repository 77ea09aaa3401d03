// Local midnight in the configured `[server] time_zone`, for "today" in `fordeler status`.
// GCC 12's standard library has no std::chrono time zones, so this uses the C library: TZ is set
// to the zone, tzset(), localtime_r() and mktime() at 00:00, and TZ restored. The zone must be a
// tzdata name (a file under $TZDIR or /usr/share/zoneinfo), "UTC" always works. Not thread-safe
// (TZ is process-wide): the CLI is single-threaded.
#pragma once

#include <chrono>
#include <string>

#include "core/status.h"

namespace fordeler::cli {

using TimePoint = std::chrono::system_clock::time_point;

// The first instant of the local day that holds `now` in `time_zone`. kInvalidArgument for a
// zone that tzdata does not know (glibc would silently use UTC).
Result<TimePoint> LocalMidnight(TimePoint now, const std::string& time_zone);

}  // namespace fordeler::cli
