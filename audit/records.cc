#include "audit/records.h"

#include <time.h>

#include <array>
#include <cstdio>

namespace fordeler {
namespace {

constexpr std::array<std::string_view, 4> kTransferStates = {"received", "delivering", "delivered",
                                                             "rejected"};
constexpr std::array<std::string_view, 8> kTransferSteps = {
    "received", "trigger_taken", "accepted", "spooled",
    "placed",   "receipt_sent",  "done",     "rejecting"};
constexpr std::array<std::string_view, 5> kDeliveryStates = {"pending", "delivered", "picked_up",
                                                             "expired", "recalled"};

template <typename Enum, size_t N>
bool ParseEnum(const std::array<std::string_view, N>& names, std::string_view text, Enum* out) {
  for (size_t i = 0; i < N; ++i) {
    if (names[i] == text) {
      *out = static_cast<Enum>(i);
      return true;
    }
  }
  return false;
}

// Reads exactly `n` decimal digits at *p; advances past them.
bool Digits(std::string_view text, size_t* p, int n, int* out) {
  if (*p + n > text.size()) return false;
  int v = 0;
  for (int i = 0; i < n; ++i) {
    char c = text[*p + i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  *p += n;
  *out = v;
  return true;
}

bool Expect(std::string_view text, size_t* p, char c) {
  if (*p >= text.size()) return false;
  // RFC 3339 allows "t" for "T", and (its note in 5.6) a space, as people type it.
  bool date_time_separator = c == 'T' && (text[*p] == 't' || text[*p] == ' ');
  if (text[*p] != c && !date_time_separator) return false;
  ++*p;
  return true;
}

int DaysInMonth(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  return month == 2 && leap ? 29 : kDays[month - 1];
}

// Fractional seconds (any number of digits, kept to milliseconds); *p is past the '.'.
bool Fraction(std::string_view text, size_t* p, int* millis) {
  size_t start = *p;
  *millis = 0;
  int scale = 100;
  while (*p < text.size() && text[*p] >= '0' && text[*p] <= '9') {
    *millis += (text[*p] - '0') * scale;
    scale /= 10;
    ++*p;
  }
  return *p > start;
}

// "Z" or "±HH:MM"; the offset in seconds east of UTC.
bool Offset(std::string_view text, size_t* p, long* seconds) {
  if (*p < text.size() && (text[*p] == 'Z' || text[*p] == 'z')) {
    ++*p;
    *seconds = 0;
    return true;
  }
  if (*p >= text.size() || (text[*p] != '+' && text[*p] != '-')) return false;
  int sign = text[*p] == '-' ? -1 : 1;
  ++*p;
  int hh, mm;
  if (!Digits(text, p, 2, &hh) || !Expect(text, p, ':') || !Digits(text, p, 2, &mm)) return false;
  if (hh > 23 || mm > 59) return false;
  *seconds = sign * (hh * 3600L + mm * 60L);
  return true;
}

}  // namespace

std::string_view ToString(TransferState s) { return kTransferStates.at(static_cast<size_t>(s)); }
std::string_view ToString(TransferStep s) { return kTransferSteps.at(static_cast<size_t>(s)); }
std::string_view ToString(DeliveryState s) { return kDeliveryStates.at(static_cast<size_t>(s)); }

bool ParseTransferState(std::string_view text, TransferState* out) {
  return ParseEnum(kTransferStates, text, out);
}

bool ParseDeliveryState(std::string_view text, DeliveryState* out) {
  return ParseEnum(kDeliveryStates, text, out);
}

std::string FormatTime(TimePoint t) {
  using std::chrono::milliseconds;
  int64_t ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  int64_t secs = ms / 1000;
  int64_t rem = ms % 1000;
  if (rem < 0) {  // floor for times before 1970
    rem += 1000;
    secs -= 1;
  }
  time_t tt = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&tt, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(rem));
  return buf;
}

// Accepts RFC 3339: "YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)", with "t" or a space for "T" and "z"
// for "Z"; fractions beyond milliseconds are truncated. A leap second (":60") is refused.
bool ParseTime(std::string_view text, TimePoint* out) {
  size_t p = 0;
  int year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0, millis = 0;
  if (!Digits(text, &p, 4, &year) || !Expect(text, &p, '-') || !Digits(text, &p, 2, &month) ||
      !Expect(text, &p, '-') || !Digits(text, &p, 2, &day) || !Expect(text, &p, 'T') ||
      !Digits(text, &p, 2, &hour) || !Expect(text, &p, ':') || !Digits(text, &p, 2, &minute) ||
      !Expect(text, &p, ':') || !Digits(text, &p, 2, &second)) {
    return false;
  }
  if (p < text.size() && text[p] == '.') {
    ++p;
    if (!Fraction(text, &p, &millis)) return false;
  }
  long offset = 0;
  if (!Offset(text, &p, &offset) || p != text.size()) return false;
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 ||
      minute > 59 || second > 59) {
    return false;
  }
  struct tm tm {};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  int64_t secs = static_cast<int64_t>(timegm(&tm)) - offset;
  // system_clock counts nanoseconds and ends in 2262: later times are "the end of time".
  constexpr int64_t kLastSecond =
      std::chrono::duration_cast<std::chrono::seconds>(TimePoint::max().time_since_epoch()).count();
  if (secs >= kLastSecond) {
    *out = TimePoint::max();
    return true;
  }
  *out = TimePoint(std::chrono::milliseconds(secs * 1000 + millis));
  return true;
}

}  // namespace fordeler
