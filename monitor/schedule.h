// Schedule: when deliveries on a route are expected — the `expect` entries of a [[route]]
// (config/schedule_spec.h) evaluated in the configured time zone (docs/operations.md).
//
// A due instant is the local date and time of an entry turned into a UTC instant with the time
// zone's rules (tzdata from /usr/share/zoneinfo, through libdate-tz):
// - A local time that does not exist (skipped on a spring-forward day, e.g. 02:30 in
//   Europe/Copenhagen on the last Sunday of March) is due at the first instant after the gap
//   (03:00 local).
// - A local time that exists twice (autumn fall-back, e.g. 02:30 on the last Sunday of October)
//   is due at its first occurrence (still in summer time).
// - "monthly D" in a month without day D (31 in April, 30 in February) is due on the month's
//   last day; "monthly last" always is.
// Several entries merge into one sequence of due instants.
//
// Pure: the caller passes the time; nothing reads a clock. Immutable after Create(); safe to use
// from any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "config/schedule_spec.h"
#include "core/status.h"

namespace date {
class time_zone;
}

namespace fordeler {

class Schedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // kInvalidArgument when `time_zone` is no tzdata zone or `specs` is empty.
  static Result<Schedule> Create(std::vector<ScheduleSpec> specs, const std::string& time_zone);

  // The latest due instant at or before `t`.
  TimePoint LatestAtOrBefore(TimePoint t) const;
  // The first due instant after `t`.
  TimePoint NextAfter(TimePoint t) const;

  // `t` as local time of the zone, "2026-11-23 06:00 CET", for messages.
  std::string FormatLocal(TimePoint t) const;

 private:
  Schedule(std::vector<ScheduleSpec> specs, const date::time_zone* zone)
      : specs_(std::move(specs)), zone_(zone) {}

  std::vector<ScheduleSpec> specs_;
  const date::time_zone* zone_;
};

}  // namespace fordeler
