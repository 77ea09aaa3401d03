#include "monitor/monitor.h"

#include <gtest/gtest.h>

#include <fstream>

#include "audit/audit_testing.h"

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

TEST_F(MonitorTest, RejectionAndDeliveryNotPickedUpAlertOnce) {
  TransferRecord t = testing::SampleTransfer("rejected-1", env_.Now() - std::chrono::minutes(5));
  t.route_ids = {};
  t.state = TransferState::kRejected;
  t.error_code = 1006;
  TransferRecord ok = testing::SampleTransfer("delivered-1", env_.Now() - std::chrono::hours(3));
  ok.route_ids = {"daily"};
  ok.state = TransferState::kDelivered;
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

}  // namespace
}  // namespace fordeler
