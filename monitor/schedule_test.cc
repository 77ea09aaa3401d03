#include "monitor/schedule.h"

#include <gtest/gtest.h>

#include "audit/records.h"

namespace fordeler {
namespace {

TimePoint T(const std::string& rfc3339) {
  TimePoint t;
  EXPECT_TRUE(ParseTime(rfc3339, &t)) << rfc3339;
  return t;
}

Schedule Make(std::vector<std::string> texts, const std::string& zone = "Europe/Copenhagen") {
  std::vector<ScheduleSpec> specs;
  for (const std::string& text : texts) {
    auto spec = ParseScheduleSpec(text);
    EXPECT_TRUE(spec.ok()) << spec.status().ToString();
    if (spec.ok()) specs.push_back(*spec);
  }
  auto schedule = Schedule::Create(specs, zone);
  EXPECT_TRUE(schedule.ok()) << schedule.status().ToString();
  return std::move(schedule).value();
}

TEST(ScheduleSpecTest, ParsesTheThreeForms) {
  auto daily = ParseScheduleSpec("daily 06:30");
  ASSERT_TRUE(daily.ok());
  EXPECT_EQ(daily->kind, ScheduleSpec::Kind::kDaily);
  EXPECT_EQ(daily->hour, 6);
  EXPECT_EQ(daily->minute, 30);
  auto weekly = ParseScheduleSpec("weekly sun 23:59");
  ASSERT_TRUE(weekly.ok());
  EXPECT_EQ(weekly->weekday, 0);
  auto monthly = ParseScheduleSpec("monthly last 00:00");
  ASSERT_TRUE(monthly.ok());
  EXPECT_EQ(monthly->day, 0);
}

TEST(ScheduleSpecTest, RefusesWhatIsNotASchedule) {
  for (const char* bad : {"", "daily", "daily 6:00", "daily 24:00", "daily 06:60", "hourly 06:00",
                          "weekly monday 06:00", "weekly 06:00", "monthly 0 06:00",
                          "monthly 32 06:00", "daily 06:00 extra", "Daily 06:00"}) {
    EXPECT_FALSE(ParseScheduleSpec(bad).ok()) << bad;
  }
}

TEST(ScheduleTest, UnknownZoneIsRefused) {
  auto spec = ParseScheduleSpec("daily 06:00");
  ASSERT_TRUE(spec.ok());
  EXPECT_FALSE(Schedule::Create({*spec}, "Europe/Atlantis").ok());
  EXPECT_FALSE(Schedule::Create({}, "UTC").ok());
}

TEST(ScheduleTest, DailyInWinterAndSummer) {
  Schedule s = Make({"daily 06:00"});
  // CET = UTC+1.
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-23T10:00:00.000Z")), T("2026-11-23T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-11-23T10:00:00.000Z")), T("2026-11-24T05:00:00.000Z"));
  // Exactly at the due instant: it is the latest, and the next is tomorrow's.
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-23T05:00:00.000Z")), T("2026-11-23T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-11-23T05:00:00.000Z")), T("2026-11-24T05:00:00.000Z"));
  // Before 06:00 local, but after 06:00 UTC the day before: yesterday's.
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-23T04:59:59.000Z")), T("2026-11-22T05:00:00.000Z"));
  // CEST = UTC+2.
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-07-01T12:00:00.000Z")), T("2026-07-01T04:00:00.000Z"));
}

TEST(ScheduleTest, DailyAcrossDstChangesKeepsLocalTime) {
  Schedule s = Make({"daily 06:00"});
  // Spring forward on Sunday 2026-03-29: 06:00 CET on Saturday, 06:00 CEST on Sunday.
  EXPECT_EQ(s.NextAfter(T("2026-03-28T05:00:00.000Z")), T("2026-03-29T04:00:00.000Z"));
  // Fall back on Sunday 2026-10-25: 06:00 CEST on Saturday, 06:00 CET on Sunday.
  EXPECT_EQ(s.NextAfter(T("2026-10-24T04:00:00.000Z")), T("2026-10-25T05:00:00.000Z"));
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-10-25T04:59:00.000Z")), T("2026-10-24T04:00:00.000Z"));
}

TEST(ScheduleTest, SkippedLocalTimeIsDueWhenTheGapEnds) {
  // 02:30 does not exist in Copenhagen on 2026-03-29 (02:00 CET -> 03:00 CEST = 01:00Z).
  Schedule s = Make({"daily 02:30"});
  EXPECT_EQ(s.NextAfter(T("2026-03-28T12:00:00.000Z")), T("2026-03-29T01:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-03-29T01:00:00.000Z")), T("2026-03-30T00:30:00.000Z"));
}

TEST(ScheduleTest, RepeatedLocalTimeIsDueAtItsFirstOccurrence) {
  // 02:30 exists twice on 2026-10-25: 00:30Z (CEST) and 01:30Z (CET); the first counts, once.
  Schedule s = Make({"daily 02:30"});
  EXPECT_EQ(s.NextAfter(T("2026-10-24T12:00:00.000Z")), T("2026-10-25T00:30:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-10-25T00:30:00.000Z")), T("2026-10-26T01:30:00.000Z"));
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-10-25T02:00:00.000Z")), T("2026-10-25T00:30:00.000Z"));
}

TEST(ScheduleTest, Weekly) {
  Schedule s = Make({"weekly mon 06:00"});
  // 2026-11-23 is a Monday.
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-27T12:00:00.000Z")), T("2026-11-23T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-11-23T05:00:00.000Z")), T("2026-11-30T05:00:00.000Z"));
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-23T04:00:00.000Z")), T("2026-11-16T05:00:00.000Z"));
}

TEST(ScheduleTest, MonthlyUsesTheLastDayOfShortMonths) {
  Schedule s = Make({"monthly 31 06:00"});
  EXPECT_EQ(s.NextAfter(T("2026-11-01T00:00:00.000Z")), T("2026-11-30T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-11-30T05:00:00.000Z")), T("2026-12-31T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2027-02-01T00:00:00.000Z")), T("2027-02-28T05:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2028-02-01T00:00:00.000Z")), T("2028-02-29T05:00:00.000Z"));
  EXPECT_EQ(s.LatestAtOrBefore(T("2027-03-15T00:00:00.000Z")), T("2027-02-28T05:00:00.000Z"));
  Schedule first = Make({"monthly 1 06:00"});
  EXPECT_EQ(first.LatestAtOrBefore(T("2026-12-31T23:00:00.000Z")), T("2026-12-01T05:00:00.000Z"));
  EXPECT_EQ(first.NextAfter(T("2026-12-31T23:00:00.000Z")), T("2027-01-01T05:00:00.000Z"));
  Schedule last = Make({"monthly last 23:00"});
  EXPECT_EQ(last.NextAfter(T("2026-04-01T00:00:00.000Z")), T("2026-04-30T21:00:00.000Z"));
}

TEST(ScheduleTest, SeveralEntriesMerge) {
  Schedule s = Make({"daily 18:00", "daily 06:00"}, "UTC");
  EXPECT_EQ(s.LatestAtOrBefore(T("2026-11-23T12:00:00.000Z")), T("2026-11-23T06:00:00.000Z"));
  EXPECT_EQ(s.NextAfter(T("2026-11-23T12:00:00.000Z")), T("2026-11-23T18:00:00.000Z"));
  EXPECT_EQ(s.FormatLocal(T("2026-11-23T18:00:00.000Z")), "2026-11-23 18:00 UTC");
}

}  // namespace
}  // namespace fordeler
