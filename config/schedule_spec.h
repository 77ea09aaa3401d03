// ScheduleSpec: one parsed `expect` entry of a [[route]] (docs/configuration.md): when a delivery
// on the route is expected, in local time of [server] time_zone. Evaluation (time zones, DST) is
// monitor/schedule.h's; this is only the parsed text. Plain data; thread-compatible.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"

namespace fordeler {

struct ScheduleSpec {
  enum class Kind { kDaily, kWeekly, kMonthly };
  Kind kind = Kind::kDaily;
  int weekday = 0;   // kWeekly: 0 = Sunday, 1 = Monday, ..., 6 = Saturday
  int day = 0;       // kMonthly: 1..31; 0 = the month's last day ("monthly last HH:MM")
  int hour = 0;      // 0..23
  int minute = 0;    // 0..59
  std::string text;  // as written, for messages
};

// Parses "daily HH:MM", "weekly DAY HH:MM" (DAY: mon, tue, wed, thu, fri, sat, sun) and
// "monthly D HH:MM" (D: 1..31) or "monthly last HH:MM". Words are lowercase, separated by single
// spaces or tabs; HH:MM is 24-hour with two-digit minutes. kInvalidArgument says what is wrong.
Result<ScheduleSpec> ParseScheduleSpec(std::string_view text);

}  // namespace fordeler
