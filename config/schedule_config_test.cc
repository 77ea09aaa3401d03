// Route schedules (`expect`, `grace`) and the [alerts] table: values, defaults and errors with
// their file:line.
#include <gtest/gtest.h>

#include "config/config.h"
#include "config/config_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using testing::LoadConfigTest;

constexpr char kEntries[] = R"([[account]]
id = "kmd"
[[account]]
id = "flis"
[[data_area]]
id = "skole"
name = "Skole"
deliver_service = "A"
fetch_service = "B"
)";

TEST_F(LoadConfigTest, RouteScheduleAndAlertsAreRead) {
  LoadResult r = Load(std::string(R"([alerts]
on_alert = ["/usr/local/bin/notify-ops", "--team", "flis"]
timeout = "5s"
not_picked_up_after = "2d"
check_interval = "1s"
)") + kEntries + R"([[route]]
id = "r1"
data_area = "skole"
sender = "kmd"
authorities = ["*"]
recipients = ["flis"]
expect = ["daily 06:00", "weekly mon 07:30", "monthly last 23:59"]
grace = "90m"
[[route]]
id = "r2"
data_area = "skole"
sender = "kmd"
authorities = ["*"]
recipients = ["flis"]
)");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  const AlertsConfig& a = r.config->alerts;
  EXPECT_EQ(a.on_alert, (std::vector<std::string>{"/usr/local/bin/notify-ops", "--team", "flis"}));
  // The program is not installed here: used all the same, with a warning at its line.
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_EQ(r.warnings[0].ToString(),
            main_ +
                ":2: [alerts] on_alert: cannot run /usr/local/bin/notify-ops (No such file or "
                "directory); until it can be run, alerts are only logged");
  EXPECT_EQ(a.timeout, milliseconds(5'000));
  EXPECT_EQ(a.not_picked_up_after, milliseconds(2 * 86'400'000));
  EXPECT_EQ(a.check_interval, milliseconds(1'000));
  const Route& r1 = r.config->routes[0];
  ASSERT_EQ(r1.expect.size(), 3u);
  EXPECT_EQ(r1.expect[1].kind, ScheduleSpec::Kind::kWeekly);
  EXPECT_EQ(r1.expect[1].weekday, 1);
  EXPECT_EQ(r1.expect[1].minute, 30);
  EXPECT_EQ(r1.expect[2].day, 0);
  EXPECT_EQ(r1.grace, milliseconds(90 * 60'000));
  const Route& r2 = r.config->routes[1];
  EXPECT_TRUE(r2.expect.empty());
  EXPECT_EQ(r2.grace, milliseconds(2 * 3'600'000));
}

TEST_F(LoadConfigTest, AlertDefaults) {
  LoadResult r = Load("# defaults\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_TRUE(r.config->alerts.on_alert.empty());
  EXPECT_EQ(r.config->alerts.timeout, milliseconds(30'000));
  EXPECT_FALSE(r.config->alerts.not_picked_up_after);
  EXPECT_EQ(r.config->alerts.check_interval, milliseconds(30'000));
}

TEST_F(LoadConfigTest, UnparseableSchedulesAndAlertsGiveFileAndLine) {
  LoadResult r = Load(std::string(R"([alerts]
on_alert = ["notify-ops"]
timeout = "soon"
every = "1s"
)") + kEntries + R"([[route]]
id = "r1"
data_area = "skole"
sender = "kmd"
authorities = ["*"]
recipients = ["flis"]
expect = ["daily 06:00",
  "weekly monday 06:00", "monthly 32 06:00"]
[[route]]
id = "r2"
data_area = "skole"
sender = "kmd"
authorities = ["*"]
recipients = ["flis"]
grace = "1h"
)");
  const std::string forms =
      " (write \"daily 06:00\", \"weekly mon 06:00\", \"monthly 1 06:00\" or \"monthly last "
      "06:00\")";
  ExpectErrors(
      r, {main_ + ":2: [alerts] on_alert: the program \"notify-ops\" must be an absolute path (it "
                  "is run without a shell)",
          main_ + ":3: [alerts] timeout: bad duration \"soon\": expected a number (examples: "
                  "\"60s\", \"10m\", \"1h30m\", \"30d\")",
          main_ + ":4: [alerts] unknown key \"every\"",
          main_ +
              ":21: route \"r1\" expect: \"weekly monday 06:00\": the day must be one of mon, "
              "tue, ..., sun" +
              forms,
          main_ +
              ":21: route \"r1\" expect: \"monthly 32 06:00\": the day of the month must be "
              "1..31 or last" +
              forms,
          main_ + ":28: route \"r2\" grace: is set but expect is not"});
}

TEST_F(LoadConfigTest, UnknownTimeZoneIsRefused) {
  LoadResult r = Load("[server]\ntime_zone = \"Europe/Kobenhavn\"\n");
  ExpectErrors(r, {main_ + ":2: [server] time_zone: time zone \"Europe/Kobenhavn\" is unknown (not "
                           "in /usr/share/zoneinfo)"});
}

}  // namespace
}  // namespace fordeler
