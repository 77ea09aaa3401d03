#include "cli/local_time.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "audit/records.h"

namespace fordeler::cli {
namespace {

TimePoint T(const char* rfc3339) {
  TimePoint t;
  EXPECT_TRUE(ParseTime(rfc3339, &t)) << rfc3339;
  return t;
}

std::string Midnight(const char* now, const char* zone) {
  auto m = LocalMidnight(T(now), zone);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return m.ok() ? FormatTime(*m) : "";
}

TEST(LocalMidnight, CopenhagenInWinterAndSummer) {
  EXPECT_EQ(Midnight("2026-11-22T12:00:00Z", "Europe/Copenhagen"), "2026-11-21T23:00:00.000Z");
  EXPECT_EQ(Midnight("2026-07-01T12:00:00Z", "Europe/Copenhagen"), "2026-06-30T22:00:00.000Z");
}

TEST(LocalMidnight, TheLocalDateDecidesNotTheUtcDate) {
  // 23:30 UTC is already 00:30 the next day in Copenhagen.
  EXPECT_EQ(Midnight("2026-11-22T23:30:00Z", "Europe/Copenhagen"), "2026-11-22T23:00:00.000Z");
  EXPECT_EQ(Midnight("2026-11-22T22:59:59Z", "Europe/Copenhagen"), "2026-11-21T23:00:00.000Z");
}

TEST(LocalMidnight, DaylightSavingDays) {
  // 2026-03-29: clocks go forward at 02:00; midnight was still winter time (UTC+1).
  EXPECT_EQ(Midnight("2026-03-29T20:00:00Z", "Europe/Copenhagen"), "2026-03-28T23:00:00.000Z");
  // 2026-10-25: clocks go back at 03:00; midnight was summer time (UTC+2).
  EXPECT_EQ(Midnight("2026-10-25T20:00:00Z", "Europe/Copenhagen"), "2026-10-24T22:00:00.000Z");
}

TEST(LocalMidnight, UtcAndOtherZones) {
  EXPECT_EQ(Midnight("2026-11-22T12:34:56Z", "UTC"), "2026-11-22T00:00:00.000Z");
  EXPECT_EQ(Midnight("2026-11-22T03:00:00Z", "America/New_York"), "2026-11-21T05:00:00.000Z");
}

TEST(LocalMidnight, UnknownZoneIsAnErrorAndTzIsRestored) {
  setenv("TZ", "Asia/Tokyo", 1);
  auto m = LocalMidnight(T("2026-11-22T12:00:00Z"), "Mars/Olympus_Mons");
  EXPECT_FALSE(m.ok());
  EXPECT_FALSE(LocalMidnight(T("2026-11-22T12:00:00Z"), "../../etc/passwd").ok());
  ASSERT_TRUE(LocalMidnight(T("2026-11-22T12:00:00Z"), "Europe/Copenhagen").ok());
  EXPECT_STREQ(std::getenv("TZ"), "Asia/Tokyo");
  unsetenv("TZ");
}

}  // namespace
}  // namespace fordeler::cli
