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
    Watch(config_.routes[0], "*", "2026-11-01T00:00:00.000Z");  // a route with a history
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

  // A transfer of vendor-a received at `at` on `route` with `state`; one delivered was placed in
  // lis's IN a minute after it was received.
  void Record(const std::string& uuid, const std::string& at, const std::string& route,
              TransferState state, const std::string& authority = "urn:a") {
    TransferRecord t = testing::SampleTransfer(uuid, T(at));
    t.route_ids = {route};
    t.data_area = "area";
    t.authority = authority;
    t.state = state;
    if (state == TransferState::kRejected) t.error_code = 1006;
    Batch batch;
    batch.PutTransfer(t);
    if (state == TransferState::kDelivered) {
      DeliveryRecord d = testing::Delivery(uuid, "lis", t.name, DeliveryState::kDelivered);
      d.delivered_at = t.received_at + std::chrono::minutes(1);
      batch.PutDelivery(d);
    }
    ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  }

  // A transfer accepted at `at` on `route` whose placement is failing with 5001 (retried).
  void RecordFailing(const std::string& uuid, const std::string& at, const std::string& route) {
    Record(uuid, at, route, TransferState::kDelivering);
    ASSERT_TRUE(
        store_->Commit(Batch().AddEvent("failed", uuid, "vendor-a", "step=spooled code=5001"))
            .ok());
  }

  // Records that fordelerd began watching `route`'s schedule for `authority` at `at`.
  void Watch(const Route& route, const std::string& authority, const std::string& at) {
    env_.Set(T(at));
    ASSERT_TRUE(
        store_->Commit(Batch().AddEvent("route_watched", "", "", WatchKey(route, authority))).ok());
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
  EXPECT_EQ(rows[0].last_delivery_at, T("2026-11-22T06:31:00.000Z"));  // when it was placed
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

// A transfer accepted and then failing with 5001 while it is placed (state delivering, e.g. the
// recipient's IN is a file): the route is FAILED, and its last delivery is still the one before,
// which reached the recipients. Being accepted in time, it does fulfil the schedule.
TEST_F(RouteHealthTest, AcceptedTransferFailingWith5001IsFailedAndNotTheLastDelivery) {
  config_.routes.push_back(MakeRoute("plain", {"*"}, {}));
  Record("yesterday", "2026-11-22T06:30:00.000Z", "daily", TransferState::kDelivered);
  Record("plain-before", "2026-11-22T06:30:00.000Z", "plain", TransferState::kDelivered);
  RecordFailing("stuck", "2026-11-23T06:10:00.000Z", "daily");
  auto rows = Evaluate("2026-11-23T09:00:00.000Z");
  ASSERT_EQ(rows.size(), 2u);
  for (const RouteHealth& row : rows) {
    SCOPED_TRACE(row.route->id);
    EXPECT_EQ(row.state, HealthState::kFailed) << row.detail;
    EXPECT_NE(row.detail.find("(stuck) is failing with fordeler's own error 5001"),
              std::string::npos)
        << row.detail;
    EXPECT_EQ(row.last_delivery_at, T("2026-11-22T06:31:00.000Z"));
    EXPECT_FALSE(row.due_at);
  }
  EXPECT_EQ(rows[0].last_transfer_uuid, "yesterday");
  EXPECT_EQ(rows[1].last_transfer_uuid, "plain-before");

  // Retried until it is placed: delivered, it is the last delivery, and the route is OK.
  Record("stuck", "2026-11-23T06:10:00.000Z", "daily", TransferState::kDelivered);
  rows = Evaluate("2026-11-23T09:00:00.000Z");
  EXPECT_EQ(rows[0].state, HealthState::kOk) << rows[0].detail;
  EXPECT_EQ(rows[0].last_transfer_uuid, "stuck");
  EXPECT_EQ(rows[1].state, HealthState::kOk) << rows[1].detail;
}

TEST_F(RouteHealthTest, EachListedAuthorityIsExpectedOnItsOwn) {
  config_.routes.clear();
  config_.routes.push_back(MakeRoute("two", {"urn:a", "urn:b"}, {"daily 06:00"}));
  Watch(config_.routes[0], "urn:a", "2026-11-01T00:00:00.000Z");
  Watch(config_.routes[0], "urn:b", "2026-11-01T00:00:00.000Z");
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

TEST_F(RouteHealthTest, RouteWatchedAfterItsDueTimeIsOkUntilTheNextDueTimeHasPassedItsGrace) {
  config_.routes[0] = MakeRoute("new", {"*"}, {"daily 06:00"});
  Watch(config_.routes[0], "*", "2026-11-23T07:00:00.000Z");  // first seen after 06:00 today
  for (const char* now :
       {"2026-11-23T08:00:01.000Z", "2026-11-23T10:00:01.000Z", "2026-11-24T08:00:00.000Z"}) {
    auto rows = Evaluate(now);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].state, HealthState::kOk) << now << ": " << rows[0].detail;
    EXPECT_FALSE(rows[0].due_at) << now;
    EXPECT_EQ(rows[0].watched_since, T("2026-11-23T07:00:00.000Z"));
    EXPECT_NE(rows[0].detail.find("first is due at 2026-11-24 06:00 UTC"), std::string::npos)
        << rows[0].detail;
  }
  // Tomorrow's expected delivery is judged as ever: LATE, then MISSING.
  auto rows = Evaluate("2026-11-24T08:00:00.001Z");
  EXPECT_EQ(rows[0].state, HealthState::kLate);
  EXPECT_EQ(rows[0].due_at, T("2026-11-24T06:00:00.000Z"));
  EXPECT_EQ(Evaluate("2026-11-24T10:00:00.001Z")[0].state, HealthState::kMissing);
  // A delivery that came after the route was watched counts for it.
  Record("early", "2026-11-24T05:00:00.000Z", "new", TransferState::kDelivered);
  EXPECT_EQ(Evaluate("2026-11-24T10:00:00.001Z")[0].state, HealthState::kOk);
}

TEST_F(RouteHealthTest, ScheduleNotWatchedYetIsNotJudged) {
  config_.routes[0] = MakeRoute("unseen", {"*"}, {"daily 06:00"});
  auto rows = Evaluate("2026-11-23T11:00:00.000Z");
  EXPECT_EQ(rows[0].state, HealthState::kOk);
  EXPECT_FALSE(rows[0].due_at);
  EXPECT_FALSE(rows[0].watched_since);
  EXPECT_EQ(rows[0].next_expected_at, T("2026-11-24T06:00:00.000Z"));
  EXPECT_NE(rows[0].detail.find("Not watched yet"), std::string::npos) << rows[0].detail;
}

TEST_F(RouteHealthTest, NewScheduleOrAuthorityIsWatchedAnew) {
  Route r = MakeRoute("r", {"urn:a"}, {"weekly mon 06:00", "daily 06:00", "monthly last 18:00"});
  EXPECT_EQ(WatchKey(r, "urn:a"),
            "route=r authority=urn:a expect=daily_06:00,monthly_last_18:00,weekly_mon_06:00");
  Route same = MakeRoute("r", {"urn:a"},
                         {"daily\t06:00", "monthly last 18:00", "weekly mon 06:00", "daily 06:00"});
  EXPECT_EQ(WatchKey(same, "urn:a"), WatchKey(r, "urn:a"));  // spelling and order do not count
  EXPECT_NE(WatchKey(MakeRoute("r", {"urn:a"}, {"daily 06:00"}), "urn:a"), WatchKey(r, "urn:a"));
  EXPECT_NE(WatchKey(r, "urn:b"), WatchKey(r, "urn:a"));
  EXPECT_NE(WatchKey(MakeRoute("r2", {"urn:a"}, {"monthly 3 06:00"}), "urn:a"),
            WatchKey(r, "urn:a"));

  // The daily route (watched since 2026-11-01) gets a second entry on 2026-11-23 at 12:00: the
  // new schedule forgives today's 06:00, which the old one was LATE for.
  EXPECT_EQ(Evaluate("2026-11-23T12:00:00.000Z")[0].state, HealthState::kMissing);
  config_.routes[0] = MakeRoute("daily", {"*"}, {"daily 06:00", "daily 18:00"});
  Watch(config_.routes[0], "*", "2026-11-23T12:00:00.000Z");
  EXPECT_EQ(Evaluate("2026-11-23T12:00:00.000Z")[0].state, HealthState::kOk);
  EXPECT_EQ(Evaluate("2026-11-23T20:00:00.001Z")[0].state, HealthState::kLate);
}

TEST_F(RouteHealthTest, UnknownTimeZoneFails) {
  config_.server.time_zone = "Mars/Olympus";
  EXPECT_FALSE(EvaluateRouteHealth(config_, *store_, T("2026-11-23T09:00:00.000Z")).ok());
}

}  // namespace
}  // namespace fordeler
