#include "config/schedule_spec.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <vector>

namespace fordeler {
namespace {

constexpr std::array<std::string_view, 7> kDays{"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr const char* kForms =
    " (write \"daily 06:00\", \"weekly mon 06:00\", \"monthly 1 06:00\" or \"monthly last 06:00\")";

std::vector<std::string_view> Words(std::string_view text) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = text.find_first_not_of(" \t", i);
    if (start == std::string_view::npos) break;
    size_t end = text.find_first_of(" \t", start);
    if (end == std::string_view::npos) end = text.size();
    words.push_back(text.substr(start, end - start));
    i = end;
  }
  return words;
}

bool ParseNumber(std::string_view s, int min, int max, int* out) {
  if (s.empty() || s.size() > 2) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && *out >= min && *out <= max;
}

bool ParseClock(std::string_view s, ScheduleSpec* out) {
  size_t colon = s.find(':');
  if (colon != 2 || s.size() != 5) return false;
  return ParseNumber(s.substr(0, colon), 0, 23, &out->hour) &&
         ParseNumber(s.substr(colon + 1), 0, 59, &out->minute);
}

Status Bad(std::string_view text, const std::string& why) {
  return Status::InvalidArgument("\"" + std::string(text) + "\": " + why + kForms);
}

}  // namespace

Result<ScheduleSpec> ParseScheduleSpec(std::string_view text) {
  ScheduleSpec spec;
  spec.text = std::string(text);
  std::vector<std::string_view> w = Words(text);
  if (w.empty()) return Bad(text, "an empty schedule");
  size_t want = w[0] == "daily" ? 2 : (w[0] == "weekly" || w[0] == "monthly") ? 3 : 0;
  if (want == 0) return Bad(text, "must start with daily, weekly or monthly");
  if (w.size() != want)
    return Bad(text, "has " + std::to_string(w.size()) + " words, not " + std::to_string(want));
  if (!ParseClock(w.back(), &spec)) return Bad(text, "the time must be HH:MM, 00:00 to 23:59");
  if (w[0] == "daily") {
    spec.kind = ScheduleSpec::Kind::kDaily;
  } else if (w[0] == "weekly") {
    spec.kind = ScheduleSpec::Kind::kWeekly;
    auto day = std::find(kDays.begin(), kDays.end(), w[1]);
    if (day == kDays.end()) return Bad(text, "the day must be one of mon, tue, ..., sun");
    spec.weekday = static_cast<int>(day - kDays.begin());
  } else {
    spec.kind = ScheduleSpec::Kind::kMonthly;
    if (w[1] == "last") {
      spec.day = 0;
    } else if (!ParseNumber(w[1], 1, 31, &spec.day)) {
      return Bad(text, "the day of the month must be 1..31 or last");
    }
  }
  return spec;
}

}  // namespace fordeler
