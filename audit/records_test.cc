#include "audit/records.h"

#include <gtest/gtest.h>

#include "audit/list_query.h"
#include "audit/row_codec.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;

TimePoint Ms(int64_t ms) { return TimePoint(milliseconds(ms)); }

TEST(FormatTime, IsRfc3339UtcWithMilliseconds) {
  EXPECT_EQ(FormatTime(Ms(0)), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTime(Ms(1'795'312'800'123)), "2026-11-22T02:00:00.123Z");
  EXPECT_EQ(FormatTime(Ms(-1)), "1969-12-31T23:59:59.999Z");
  // Sub-millisecond parts are dropped, not rounded.
  EXPECT_EQ(FormatTime(Ms(5) + std::chrono::microseconds(999)), "1970-01-01T00:00:00.005Z");
}

TEST(ParseTime, RoundTripsAndAcceptsRfc3339Variants) {
  for (int64_t ms : {int64_t{0}, int64_t{1'795'312'800'123}, int64_t{951'782'400'000}}) {
    TimePoint t;
    ASSERT_TRUE(ParseTime(FormatTime(Ms(ms)), &t)) << ms;
    EXPECT_EQ(t, Ms(ms));
  }
  TimePoint t;
  ASSERT_TRUE(ParseTime("2026-11-22T03:00:00+01:00", &t));
  EXPECT_EQ(FormatTime(t), "2026-11-22T02:00:00.000Z");
  ASSERT_TRUE(ParseTime("2026-11-22t02:00:00.1234567z", &t));
  EXPECT_EQ(FormatTime(t), "2026-11-22T02:00:00.123Z");
  ASSERT_TRUE(ParseTime("2024-02-29T23:59:59.5-00:30", &t));
  EXPECT_EQ(FormatTime(t), "2024-03-01T00:29:59.500Z");
  ASSERT_TRUE(ParseTime("2026-11-22 02:00:00Z", &t));  // as people type it (RFC 3339, 5.6)
  EXPECT_EQ(FormatTime(t), "2026-11-22T02:00:00.000Z");
}

TEST(ParseTime, RefusesWhatIsNotRfc3339) {
  for (const char* bad :
       {"", "2026-11-22", "2026-11-22T02:00:00", "2026-11-22  02:00:00Z", "2026-13-01T00:00:00Z",
        "2025-02-29T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T02:00:60Z",
        "2026-11-22T02:00:00.Z", "2026-11-22T02:00:00Zjunk", "2026-11-22T02:00:00+0100",
        "26-11-22T02:00:00Z"}) {
    TimePoint t;
    EXPECT_FALSE(ParseTime(bad, &t)) << bad;
  }
}

TEST(States, HaveTheContractNames) {
  EXPECT_EQ(ToString(TransferState::kReceived), "received");
  EXPECT_EQ(ToString(TransferState::kRejected), "rejected");
  EXPECT_EQ(ToString(DeliveryState::kPickedUp), "picked_up");
  EXPECT_EQ(ToString(TransferStep::kRejecting), "rejecting");
  for (auto s : {TransferState::kReceived, TransferState::kDelivering, TransferState::kDelivered,
                 TransferState::kRejected}) {
    TransferState back;
    ASSERT_TRUE(ParseTransferState(ToString(s), &back));
    EXPECT_EQ(back, s);
  }
  for (auto s : {DeliveryState::kPending, DeliveryState::kDelivered, DeliveryState::kPickedUp,
                 DeliveryState::kExpired, DeliveryState::kRecalled}) {
    DeliveryState back;
    ASSERT_TRUE(ParseDeliveryState(ToString(s), &back));
    EXPECT_EQ(back, s);
  }
  TransferState ts;
  DeliveryState ds;
  EXPECT_FALSE(ParseTransferState("Received", &ts));
  EXPECT_FALSE(ParseDeliveryState("gone", &ds));
}

TEST(RouteIds, JoinAndSplit) {
  EXPECT_EQ(JoinRouteIds({}), "");
  EXPECT_EQ(JoinRouteIds({"a", "b-2"}), "a,b-2");
  EXPECT_EQ(SplitRouteIds(""), std::vector<std::string>{});
  EXPECT_EQ(SplitRouteIds("a,b-2"), (std::vector<std::string>{"a", "b-2"}));
}

TEST(ListQuery, ValuesAreParametersNeverText) {
  TransferFilter f;
  f.sender = "x' OR 1=1 --";
  f.route = "r1";
  f.limit = 7;
  ListQuery q = BuildListQuery(f);
  EXPECT_EQ(q.sql.find("OR 1=1"), std::string::npos);
  EXPECT_NE(q.sql.find("ORDER BY r.received_at DESC, r.transfer_uuid DESC LIMIT ?"),
            std::string::npos);
  ASSERT_EQ(q.params.size(), 3u);
  EXPECT_EQ(std::get<std::string>(q.params[0]), "r1");
  EXPECT_EQ(std::get<std::string>(q.params[1]), "x' OR 1=1 --");
  EXPECT_EQ(std::get<int64_t>(q.params[2]), 7);
}

}  // namespace
}  // namespace fordeler
