// The operator queries behind `fordeler status` and `fordeler accounts`.
#include <gtest/gtest.h>

#include "audit/audit_store.h"
#include "audit/audit_testing.h"

namespace fordeler {
namespace {

using std::chrono::hours;
using testing::At;
using testing::Delivery;
using testing::FakeEnv;
using testing::OpenOrDie;
using testing::TempDir;

constexpr int64_t kHour = 3'600'000;
const TimePoint kNow = At(100 * kHour);

TransferRecord OnRoute(const std::string& uuid, int64_t hours_ago, TransferState state) {
  TransferRecord t = testing::SampleTransfer(uuid, kNow - hours(hours_ago));
  t.sender = "kmd";
  t.name = uuid + ".csv";
  t.data_area = "oekonomi";
  t.route_ids = {"r1"};
  t.state = state;
  t.step = TransferStep::kDone;
  return t;
}

DeliveryRecord Placed(const std::string& uuid, const std::string& recipient, int64_t hours_ago,
                      DeliveryState state) {
  DeliveryRecord d = Delivery(uuid, recipient, uuid + ".csv", state);
  d.delivered_at = kNow - hours(hours_ago);
  return d;
}

class OperatorQueriesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(dir_.File("audit.db"), &env_);
    Batch b;
    // t1: delivered 30 h ago and picked up; t2: delivered 2 h ago, waiting at flis;
    // t3: delivered 1 h ago, picked up by flis, waiting at lis.
    b.PutTransfer(OnRoute("t1", 30, TransferState::kDelivered))
        .PutDelivery(Placed("t1", "flis", 30, DeliveryState::kPickedUp));
    b.PutTransfer(OnRoute("t2", 2, TransferState::kDelivered))
        .PutDelivery(Placed("t2", "flis", 2, DeliveryState::kDelivered));
    b.PutTransfer(OnRoute("t3", 1, TransferState::kDelivered))
        .PutDelivery(Placed("t3", "flis", 1, DeliveryState::kPickedUp))
        .PutDelivery(Placed("t3", "lis", 1, DeliveryState::kDelivered));
    // Rejected before routing (no data area, no route) 3 h ago, and 40 h ago.
    TransferRecord r1 = OnRoute("r1", 3, TransferState::kRejected);
    r1.data_area.reset();
    r1.route_ids.clear();
    r1.error_code = 2002;
    TransferRecord r2 = r1;
    r2.uuid = "r2";
    r2.received_at = kNow - hours(40);
    b.PutTransfer(r1).PutTransfer(r2);
    // Failing now (5001), received 4 h ago; and another sender's rejection.
    TransferRecord f = OnRoute("f1", 4, TransferState::kDelivering);
    f.step = TransferStep::kSpooled;
    f.error_code = 5001;
    b.PutTransfer(f).AddEvent("failed", "f1", "kmd", "step=spooled");
    // Rejected after routing (checksum): its delivery rows stay pending but count nowhere.
    b.PutTransfer(OnRoute("c1", 1, TransferState::kRejected))
        .PutDelivery(Delivery("c1", "flis", "", DeliveryState::kPending));
    TransferRecord other = OnRoute("o1", 1, TransferState::kRejected);
    other.sender = "other";
    other.route_ids.clear();
    b.PutTransfer(other);
    b.AddEvent("login", "", "flis", "address=127.0.0.1");
    ASSERT_TRUE(store_->Commit(std::move(b)).ok());
    env_.Advance(std::chrono::seconds(5));
    Batch later;
    later.AddEvent("login", "", "flis", "address=127.0.0.1");
    ASSERT_TRUE(store_->Commit(std::move(later)).ok());
  }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
};

TEST_F(OperatorQueriesTest, RouteActivityCountsTheRoutesTransfers) {
  RouteActivityQuery q{"r1", "kmd", "oekonomi", kNow - hours(3) + std::chrono::minutes(30),
                       kNow - hours(24)};
  auto a = store_->RouteActivityOf(q);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->last_delivery_uuid, "t3");
  EXPECT_EQ(a->last_delivery_name, "t3.csv");
  ASSERT_TRUE(a->last_delivery_at.has_value());
  EXPECT_EQ(*a->last_delivery_at, kNow - hours(1));
  EXPECT_EQ(a->today, 2);         // t2, t3 (t1 was placed before midnight)
  EXPECT_EQ(a->failed_24h, 1);    // f1
  EXPECT_EQ(a->rejected_24h, 2);  // r1, c1 (r2 is older; o1 is another sender's)
}

// The last delivery is the newest transfer placed in its recipients' IN: not one accepted and
// still being placed (failing with 5001), which LastAccepted does count.
TEST_F(OperatorQueriesTest, LastDeliveredSkipsATransferStillBeingPlaced) {
  TransferRecord stuck = OnRoute("s1", 0, TransferState::kDelivering);
  stuck.step = TransferStep::kSpooled;
  stuck.error_code = 5001;
  stuck.authority = "urn:b";
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(stuck).AddEvent("failed", "s1", "kmd", "")).ok());
  auto last = store_->LastDelivered("r1", "");
  ASSERT_TRUE(last.ok()) << last.status().ToString();
  ASSERT_TRUE(last->has_value());
  EXPECT_EQ((*last)->uuid, "t3");
  EXPECT_EQ((*last)->name, "t3.csv");
  EXPECT_EQ((*last)->placed_at, kNow - hours(1));
  EXPECT_EQ((*store_->LastAccepted("r1", ""))->uuid, "s1");
  EXPECT_EQ(store_->RouteActivityOf({"r1", "kmd", "oekonomi", kNow, kNow})->last_delivery_uuid,
            "t3");
  EXPECT_FALSE(store_->LastDelivered("r1", "urn:b")->has_value());  // s1's authority
  EXPECT_FALSE(store_->LastDelivered("r2", "")->has_value());
}

TEST_F(OperatorQueriesTest, UnknownRouteHasNothing) {
  auto a = store_->RouteActivityOf({"nope", "nobody", "x", kNow - hours(1), kNow - hours(24)});
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->last_delivery_at.has_value());
  EXPECT_EQ(a->today + a->failed_24h + a->rejected_24h, 0);
}

TEST_F(OperatorQueriesTest, PendingDeliveriesPerRouteAndRecipient) {
  auto pending = store_->PendingDeliveries();
  ASSERT_TRUE(pending.ok());
  std::map<std::string, int64_t> by;
  for (const auto& p : *pending) by[p.route_id + "/" + p.recipient] = p.count;
  EXPECT_EQ(by, (std::map<std::string, int64_t>{{"r1/flis", 1}, {"r1/lis", 1}}));
}

TEST_F(OperatorQueriesTest, LastLoginIsTheNewestLoginEvent) {
  auto flis = store_->LastLogin("flis");
  ASSERT_TRUE(flis.ok());
  ASSERT_TRUE(flis->has_value());
  EXPECT_EQ(**flis, env_.Now());
  auto none = store_->LastLogin("kmd");
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(none->has_value());
}

TEST_F(OperatorQueriesTest, RouteWatchedSinceIsTheOldestEventWithThatDetail) {
  const std::string key = "route=r1 authority=* expect=daily_06:00";
  EXPECT_FALSE(store_->RouteWatchedSince(key)->has_value());
  TimePoint first = env_.Now();
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("route_watched", "", "", key)).ok());
  env_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(store_
                  ->Commit(Batch()
                               .AddEvent("route_watched", "", "", key)
                               .AddEvent("route_watched", "", "", key + ",daily_07:00")
                               .AddEvent("alert", "", "", key))
                  .ok());
  auto since = store_->RouteWatchedSince(key);
  ASSERT_TRUE(since.ok());
  EXPECT_EQ(*since, first);
  EXPECT_FALSE(store_->RouteWatchedSince("route=r1 authority=*")->has_value());  // whole detail
}

}  // namespace
}  // namespace fordeler
