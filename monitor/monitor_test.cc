#include "monitor/monitor.h"

#include <gtest/gtest.h>

#include <fstream>

#include "audit/audit_testing.h"
#include "monitor/route_health.h"

namespace fordeler {
namespace {

using testing::FakeEnv;
using testing::OpenOrDie;
using testing::ReadFile;
using testing::TempDir;

size_t Lines(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

class MonitorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    TimePoint now;
    ASSERT_TRUE(ParseTime("2026-11-23T09:00:00.000Z", &now));
    env_.Set(now);
    store_ = OpenOrDie(dir_.File("audit.db"), &env_);
    std::string script = dir_.File("alert.sh");
    std::ofstream(script) << "echo \"$FORDELER_ALERT_KIND $FORDELER_ALERT_ROUTE "
                             "$FORDELER_ALERT_TRANSFER $FORDELER_ALERT_RECIPIENT\" >> \"$1\"\n";
    auto config = std::make_shared<Config>();
    config->server.time_zone = "UTC";
    config->alerts.on_alert = {"/bin/sh", script, out_};
    config->alerts.not_picked_up_after = std::chrono::hours(1);
    Route r;
    r.id = "daily";
    r.data_area = "area";
    r.sender = "vendor-a";
    r.authorities = {"*"};
    r.recipients = {"lis"};
    r.expect = {*ParseScheduleSpec("daily 06:00")};
    config->routes.push_back(r);
    config_ = config;
    // The route has been watched since the day before yesterday.
    env_.Advance(-std::chrono::hours(48));
    ASSERT_TRUE(store_->Commit(Batch().AddEvent("route_watched", "", "", WatchKey(r, "*"))).ok());
    env_.Advance(std::chrono::hours(48));
  }

  // One pass of a fresh monitor (as after a restart); returns what the command wrote since.
  std::string Pass() {
    size_t before = ReadFile(out_).size();
    Monitor monitor(&env_, store_.get());
    monitor.SetConfig(config_);
    monitor.CheckOnce();
    monitor.CheckOnce();  // a second pass raises nothing again
    EXPECT_TRUE(monitor.alerter()->WaitIdle(std::chrono::seconds(20)));
    EXPECT_TRUE(store_->Commit(Batch()).ok());
    return ReadFile(out_).substr(before);
  }

  // When the `route_watched` event of `key` was recorded (RFC 3339), "" if it was not.
  std::string WatchedAt(const std::string& key) {
    EXPECT_TRUE(store_->Commit(Batch()).ok());
    auto since = store_->RouteWatchedSince(key);
    EXPECT_TRUE(since.ok());
    return since.ok() && *since ? FormatTime(**since) : "";
  }

  std::string WatchEvents() {
    return testing::RawDb(dir_.File("audit.db"))
        .Text("SELECT COUNT(*) FROM events WHERE kind = 'route_watched'");
  }

  TempDir dir_;
  std::string out_ = dir_.File("out.txt");
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
  std::shared_ptr<const Config> config_;
};

// The monitor is fordelerd's AlertSink (the retention sweep raises through it): an alert raised
// from outside runs on_alert, even before the monitor's first pass, and is recorded so that
// AlertRecorded finds it by its key (what makes "once" survive a restart).
TEST_F(MonitorTest, AnAlertRaisedThroughTheMonitorRunsTheCommandAndIsRecorded) {
  Monitor monitor(&env_, store_.get());
  monitor.SetConfig(config_);
  Alert a;
  a.kind = "retention_warning";
  a.state = "RETENTION_WARNING";
  a.route = "daily";
  a.transfer = "t-1";
  a.recipient = "lis";
  a.account = "lis";
  a.key = "kind=retention_warning transfer=t-1 recipient=lis";
  static_cast<AlertSink&>(monitor).Raise(a);
  ASSERT_NE(monitor.alerter(), nullptr);
  EXPECT_TRUE(monitor.alerter()->WaitIdle(std::chrono::seconds(20)));
  EXPECT_TRUE(store_->Commit(Batch()).ok());  // after the alert's own commit
  EXPECT_EQ(ReadFile(out_), "retention_warning daily t-1 lis\n");
  auto recorded = store_->AlertRecorded("lis", env_.Now() - std::chrono::hours(1), a.key);
  ASSERT_TRUE(recorded.ok());
  EXPECT_TRUE(*recorded);
  monitor.Stop();
  monitor.Raise(a);  // stopped: nothing more
  EXPECT_EQ(ReadFile(out_), "retention_warning daily t-1 lis\n");
}

TEST_F(MonitorTest, LateThenMissingOncePerDueInstantAcrossRestarts) {
  std::string first = Pass();
  EXPECT_EQ(first, "late daily  \n");
  EXPECT_EQ(Pass(), "");                // restarted: found in the audit log
  env_.Advance(std::chrono::hours(2));  // 11:00: past twice the grace
  EXPECT_EQ(Pass(), "missing daily  \n");
  EXPECT_EQ(Pass(), "");
}

TEST_F(MonitorTest, RouteFirstSeenAfterItsDueTimeAlertsOnlyForTheNextAcrossRestarts) {
  auto config = std::make_shared<Config>(*config_);
  config->routes[0].id = "added";  // a route configured at 09:00, after 06:00's grace
  config_ = config;
  EXPECT_EQ(Pass(), "");
  EXPECT_EQ(WatchedAt("route=added authority=* expect=daily_06:00"), "2026-11-23T09:00:00.000Z");
  env_.Advance(std::chrono::hours(22));  // restarted the next day, 07:00: within the grace
  EXPECT_EQ(Pass(), "");
  env_.Advance(std::chrono::hours(1) + std::chrono::milliseconds(1));  // 08:00:00.001
  EXPECT_EQ(Pass(), "late added  \n");  // the first seen (09:00 yesterday) survived restarts
  EXPECT_EQ(WatchEvents(), "2");        // "daily" of SetUp, and "added" once
}

TEST_F(MonitorTest, NewScheduleOfARouteIsWatchedFromItsChange) {
  EXPECT_EQ(Pass(), "late daily  \n");  // watched for two days: today's 06:00 is late
  auto config = std::make_shared<Config>(*config_);
  config->routes[0].expect = {*ParseScheduleSpec("daily 05:00")};
  config_ = config;
  EXPECT_EQ(Pass(), "");  // 05:00 today was before the new schedule was watched
  EXPECT_EQ(WatchedAt("route=daily authority=* expect=daily_05:00"), "2026-11-23T09:00:00.000Z");
}

TEST_F(MonitorTest, RejectionAndDeliveryNotPickedUpAlertOnce) {
  TransferRecord t = testing::SampleTransfer("rejected-1", env_.Now() - std::chrono::minutes(5));
  t.route_ids = {};
  t.state = TransferState::kRejected;
  t.step = TransferStep::kDone;
  t.error_code = 1006;
  TransferRecord ok = testing::SampleTransfer("delivered-1", env_.Now() - std::chrono::hours(3));
  ok.route_ids = {"daily"};
  ok.state = TransferState::kDelivered;
  ok.step = TransferStep::kDone;
  DeliveryRecord d =
      testing::Delivery("delivered-1", "lis", "orders.xml", DeliveryState::kDelivered);
  d.delivered_at = env_.Now() - std::chrono::hours(2);
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t).PutTransfer(ok).PutDelivery(d)).ok());
  std::string out = Pass();
  EXPECT_NE(out.find("rejected  rejected-1 \n"), std::string::npos) << out;
  EXPECT_NE(out.find("not_picked_up daily delivered-1 lis\n"), std::string::npos) << out;
  EXPECT_EQ(Lines(out), 2u) << out;  // delivered-1 (06:00) fulfilled today's expectation
  EXPECT_EQ(Pass(), "");
}

// Every alert about a transfer names its authority: `not_picked_up` as `rejected` and `stuck` do
// (in the command's FORDELER_ALERT_AUTHORITY, the log line and the audit event).
TEST_F(MonitorTest, NotPickedUpAlertNamesTheTransfersAuthority) {
  TransferRecord t = testing::SampleTransfer("delivered-1", env_.Now() - std::chrono::hours(3));
  t.route_ids = {"daily"};
  t.authority = "urn:oio:cvr-nr:55133018";
  t.state = TransferState::kDelivered;
  t.step = TransferStep::kDone;
  DeliveryRecord d =
      testing::Delivery("delivered-1", "lis", "orders.xml", DeliveryState::kDelivered);
  d.delivered_at = env_.Now() - std::chrono::hours(2);
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t).PutDelivery(d)).ok());
  EXPECT_NE(Pass().find("not_picked_up daily delivered-1 lis\n"), std::string::npos);
  auto detail = testing::RawDb(dir_.File("audit.db"))
                    .Text(
                        "SELECT detail FROM events WHERE kind = 'alert' AND detail LIKE "
                        "'kind=not_picked_up%'");
  EXPECT_EQ(detail,
            "kind=not_picked_up transfer=delivered-1 recipient=lis route=daily "
            "authority=urn:oio:cvr-nr:55133018 state=NOT_PICKED_UP");
}

// What `fordeler status` lists for the operator is also pushed: a transfer unfinished over 5
// minutes after it arrived (here failing with 5001) raises `stuck` once, across restarts; one
// that arrived a minute ago, and a finished one, raise nothing.
TEST_F(MonitorTest, ATransferUnfinishedOverFiveMinutesAlertsOnceAsStuck) {
  TransferRecord failing =
      testing::SampleTransfer("failing-1", env_.Now() - std::chrono::minutes(6));
  failing.state = TransferState::kDelivering;
  failing.step = TransferStep::kSpooled;
  failing.error_code = 5001;
  failing.error_description = "accounts/lis/IN: No such file or directory";
  TransferRecord young = testing::SampleTransfer("young-1", env_.Now() - std::chrono::minutes(1));
  young.step = TransferStep::kSpooled;
  young.error_code = 5001;
  TransferRecord done = testing::SampleTransfer("done-1", env_.Now() - std::chrono::hours(1));
  done.state = TransferState::kDelivered;
  done.step = TransferStep::kDone;
  ASSERT_TRUE(
      store_->Commit(Batch().PutTransfer(failing).PutTransfer(young).PutTransfer(done)).ok());
  std::string out = Pass();  // also "late daily": nothing was delivered on that route today
  EXPECT_NE(out.find("stuck r1 failing-1 \n"), std::string::npos) << out;
  EXPECT_EQ(out.find("stuck"), out.rfind("stuck")) << out;  // young-1 and done-1: none
  EXPECT_EQ(Pass(), "");
  auto detail = testing::RawDb(dir_.File("audit.db"))
                    .Text(
                        "SELECT detail FROM events WHERE kind = 'alert' AND detail LIKE "
                        "'kind=stuck%'");
  EXPECT_EQ(detail, "kind=stuck transfer=failing-1 route=r1 state=STUCK code=5001");
}

}  // namespace
}  // namespace fordeler
