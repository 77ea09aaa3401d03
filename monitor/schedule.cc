#include "monitor/schedule.h"

#include <date/tz.h>

#include <stdexcept>

namespace fordeler {
namespace {

using Clock = std::chrono::system_clock;

// Every entry is due at most once a day, and monthly ones at least once in any 62 days, so a
// search over 64 local days around `t` finds the neighbouring due instants.
constexpr int kSearchDays = 64;

bool IsLastDayOfMonth(date::year_month_day ymd) {
  return ymd.day() == (ymd.year() / ymd.month() / date::last).day();
}

bool DueOn(const ScheduleSpec& spec, date::local_days day) {
  switch (spec.kind) {
    case ScheduleSpec::Kind::kDaily:
      return true;
    case ScheduleSpec::Kind::kWeekly:
      return date::weekday(day).c_encoding() == static_cast<unsigned>(spec.weekday);
    case ScheduleSpec::Kind::kMonthly: {
      date::year_month_day ymd(day);
      unsigned d = static_cast<unsigned>(ymd.day());
      if (spec.day == 0) return IsLastDayOfMonth(ymd);
      return d == static_cast<unsigned>(spec.day) ||
             (IsLastDayOfMonth(ymd) && d < static_cast<unsigned>(spec.day));
    }
  }
  return false;
}

// The UTC instant of `spec`'s local time on `day` (header: gaps and repeats).
Clock::time_point Resolve(const date::time_zone* zone, const ScheduleSpec& spec,
                          date::local_days day) {
  auto local =
      date::local_seconds(day) + std::chrono::hours(spec.hour) + std::chrono::minutes(spec.minute);
  date::local_info info = zone->get_info(local);
  if (info.result == date::local_info::nonexistent) {
    return Clock::time_point(info.second.begin.time_since_epoch());
  }
  // unique, or ambiguous: the first offset is the earlier occurrence's.
  return Clock::time_point((local - info.first.offset).time_since_epoch());
}

date::local_days LocalDay(const date::time_zone* zone, Clock::time_point t) {
  return date::floor<date::days>(zone->to_local(date::floor<std::chrono::seconds>(t)));
}

}  // namespace

Result<Schedule> Schedule::Create(std::vector<ScheduleSpec> specs, const std::string& time_zone) {
  if (specs.empty()) return Status::InvalidArgument("a schedule needs at least one entry");
  try {
    return Schedule(std::move(specs), date::locate_zone(time_zone));
  } catch (const std::exception& e) {
    return Status::InvalidArgument("time zone \"" + time_zone + "\": " + e.what());
  }
}

Schedule::TimePoint Schedule::LatestAtOrBefore(TimePoint t) const {
  date::local_days today = LocalDay(zone_, t);
  std::optional<TimePoint> best;
  for (const ScheduleSpec& spec : specs_) {
    for (int back = -1; back <= kSearchDays; ++back) {
      date::local_days day = today - date::days(back);
      if (!DueOn(spec, day)) continue;
      TimePoint due = Resolve(zone_, spec, day);
      if (due > t) continue;
      if (!best || due > *best) best = due;
      break;
    }
  }
  return best.value_or(TimePoint::min());
}

Schedule::TimePoint Schedule::NextAfter(TimePoint t) const {
  date::local_days today = LocalDay(zone_, t);
  std::optional<TimePoint> best;
  for (const ScheduleSpec& spec : specs_) {
    for (int ahead = -1; ahead <= kSearchDays; ++ahead) {
      date::local_days day = today + date::days(ahead);
      if (!DueOn(spec, day)) continue;
      TimePoint due = Resolve(zone_, spec, day);
      if (due <= t) continue;
      if (!best || due < *best) best = due;
      break;
    }
  }
  return best.value_or(TimePoint::max());
}

std::string Schedule::FormatLocal(TimePoint t) const {
  auto zoned = date::make_zoned(zone_, date::floor<std::chrono::minutes>(t));
  return date::format("%Y-%m-%d %H:%M %Z", zoned);
}

}  // namespace fordeler
