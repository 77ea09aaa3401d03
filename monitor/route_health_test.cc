#include "monitor/route_health.h"

#include <gtest/gtest.h>

#include "audit/audit_testing.h"

namespace fordeler {
namespace {

using testing::FakeEnv;
using testing::OpenOrDie;
using testing::TempDir;

TimePoint T(const std::string& rfc3339) {
  TimePoint t;
  EXPECT_TRUE(ParseTime(rfc3339, &t)) << rfc3339;
  return t;
}

class RouteHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(dir_.File("audit.db"), &env_);
    config_.server.time_zone = "UTC";
    config_.routes.push_back(MakeRoute("daily", {"*"}, {"daily 06:00"}));
  }

  static Route MakeRoute(const std::string& id, std::vector<std::string> authorities,
                         const std::vector<std::string>& expect) {
    Route r;
    r.id = id;
    r.data_area = "area";
    r.sender = "vendor-a";
    r.authorities = std::move(authorities);
    r.recipients = {"lis"};
    for (const std::string& text : expect) r.expect.push_back(*ParseScheduleSpec(text));
    r.grace = std::chrono::hours(2);
    return r;
  }

  // A transfer of vendor-a received at `at` on `route` with `state`.
  void Record(const std::string& uuid, const std::string& at, const std::string& route,
              TransferState state, const std::string& authority = "urn:a") {
    TransferRecord t = testing::SampleTransfer(uuid, T(at));
    t.route_ids = {route};
    t.data_area = "area";
    t.authority = authority;
    t.state = state;
    if (state == TransferState::kRejected) t.error_code = 1006;
    ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
  }

  std::vector<RouteHealth> Evaluate(const std::string& now) {
    auto rows = EvaluateRouteHealth(config_, *store_, T(now));
    EXPECT_TRUE(rows.ok()) << rows.status().ToString();
    return rows.ok() ? *rows : std::vector<RouteHealth>{};
  }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
  Config config_;
};

TEST_F(RouteHealthTest, NamesOfStates) {
  EXPECT_STREQ(HealthStateName(HealthState::kOk), "OK");
  EXPECT_STREQ(HealthStateName(HealthState::kLate), "LATE");
  EXPECT_STREQ(HealthStateName(HealthState::kMissing), "MISSING");
  EXPECT_STREQ(HealthStateName(HealthState::kFailed), "FAILED");
}

TEST_F(RouteHealthTest, LateJustAfterGraceThenMissingAfterASecondGrace) {
  Record("yesterday", "2026-11-22T06:30:00.000Z", "daily", TransferState::kDelivered);
  auto rows = Evaluate("2026-11-23T08:00:00.000Z");  // today's grace ends now: still fine
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].authority, "*");
  EXPECT_EQ(rows[0].state, HealthState::kOk);
  EXPECT_EQ(rows[0].last_transfer_uuid, "yesterday");
  EXPECT_EQ(rows[0].last_delivery_at, T("2026-11-22T06:30:00.000Z"));
  EXPECT_EQ(rows[0].next_expected_at, T("2026-11-24T06:00:00.000Z"));
  EXPECT_FALSE(rows[0].due_at);

  rows = Evaluate("2026-11-23T08:00:00.001Z");
  EXPECT_EQ(rows[0].state, HealthState::kLate);
  EXPECT_EQ(rows[0].due_at, T("2026-11-23T06:00:00.000Z"));
  EXPECT_NE(rows[0].detail.find("2026-11-23 06:00 UTC"), std::string::npos) << rows[0].detail;

  EXPECT_EQ(Evaluate("2026-11-23T10:00:00.000Z")[0].state, HealthState::kLate);
  rows = Evaluate("2026-11-23T10:00:00.001Z");
  EXPECT_EQ(rows[0].state, HealthState::kMissing);
  EXPECT_EQ(rows[0].due_at, T("2026-11-23T06:00:00.000Z"));
}

TEST_F(RouteHealthTest, DeliveryJustInsideGraceIsOk) {
  Record("yesterday", "2026-11-22T06:30:00.000Z", "daily", TransferState::kDelivered);
  Record("today", "2026-11-23T07:59:59.000Z", "daily", TransferState::kDelivered);
  auto rows = Evaluate("2026-11-23T09:00:00.000Z");
  EXPECT_EQ(rows[0].state, HealthState::kOk) << rows[0].detail;
  EXPECT_EQ(rows[0].last_transfer_uuid, "today");
}

TEST_F(RouteHealthTest, DeliveryJustOutsideGraceEndsTheLateState) {
  Record("yesterday", "2026-11-22T06:30:00.000Z", "daily", TransferState::kDelivered);
  EXPECT_EQ(Evaluate("2026-11-23T08:00:01.000Z")[0].state, HealthState::kLate);
  Record("today", "2026-11-23T08:00:02.000Z", "daily", TransferState::kDelivering);
  EXPECT_EQ(Evaluate("2026-11-23T08:00:03.000Z")[0].state, HealthState::kOk);
}

TEST_F(RouteHealthTest, YesterdaysDeliveryDoesNotCountForToday) {
  // Delivered late yesterday, within yesterday's grace: today's expectation is still open.
  Record("yesterday", "2026-11-22T07:30:00.000Z", "daily", TransferState::kDelivered);
  EXPECT_EQ(Evaluate("2026-11-23T09:00:00.000Z")[0].state, HealthState::kLate);
  // An early delivery (before 06:00) counts.
  Record("early", "2026-11-23T05:00:00.000Z", "daily", TransferState::kDelivered);
  EXPECT_EQ(Evaluate("2026-11-23T09:00:00.000Z")[0].state, HealthState::kOk);
}

TEST_F(RouteHealthTest, RejectedTransferDoesNotFulfilAndIsFailedWithoutSchedule) {
  config_.routes.push_back(MakeRoute("plain", {"*"}, {}));
  Record("yesterday", "2026-11-22T06:30:00.000Z", "daily", TransferState::kDelivered);
  Record("bad", "2026-11-23T07:00:00.000Z", "daily", TransferState::kRejected);
  auto rows = Evaluate("2026-11-23T09:00:00.000Z");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].state, HealthState::kLate);  // LATE wins over FAILED
  EXPECT_EQ(rows[1].route->id, "plain");
  EXPECT_EQ(rows[1].authority, "*");
  EXPECT_FALSE(rows[1].next_expected_at);
  EXPECT_EQ(rows[1].state, HealthState::kFailed);
  EXPECT_NE(rows[1].detail.find("1006"), std::string::npos) << rows[1].detail;
  // After 24 h the rejection is forgotten.
  EXPECT_EQ(Evaluate("2026-11-24T07:00:01.000Z")[1].state, HealthState::kOk);
  // An accepted transfer after it ends FAILED too.
  Record("good", "2026-11-23T08:00:00.000Z", "plain", TransferState::kDelivered);
  EXPECT_EQ(Evaluate("2026-11-23T09:00:00.000Z")[1].state, HealthState::kOk);
}

TEST_F(RouteHealthTest, EachListedAuthorityIsExpectedOnItsOwn) {
  config_.routes.clear();
  config_.routes.push_back(MakeRoute("two", {"urn:a", "urn:b"}, {"daily 06:00"}));
  Record("a-yesterday", "2026-11-22T06:00:00.000Z", "two", TransferState::kDelivered, "urn:a");
  Record("b-yesterday", "2026-11-22T06:00:00.000Z", "two", TransferState::kDelivered, "urn:b");
  Record("a-today", "2026-11-23T06:00:00.000Z", "two", TransferState::kDelivered, "urn:a");
  auto rows = Evaluate("2026-11-23T09:00:00.000Z");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].authority, "urn:a");
  EXPECT_EQ(rows[0].state, HealthState::kOk);
  EXPECT_EQ(rows[0].last_transfer_uuid, "a-today");
  EXPECT_EQ(rows[1].authority, "urn:b");
  EXPECT_EQ(rows[1].state, HealthState::kLate);
  EXPECT_EQ(rows[1].last_transfer_uuid, "b-yesterday");
}

TEST_F(RouteHealthTest, UnknownTimeZoneFails) {
  config_.server.time_zone = "Mars/Olympus";
  EXPECT_FALSE(EvaluateRouteHealth(config_, *store_, T("2026-11-23T09:00:00.000Z")).ok());
}

}  // namespace
}  // namespace fordeler
