#include "http/router.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "audit/audit_testing.h"
#include "core/names.h"
#include "http/router_testing.h"

namespace fordeler {
namespace {

using testing::StatusFixture;

TEST_F(StatusFixture, OverviewShowsRoutesAndStatesButNoFileNames) {
  HttpReply r = router().Handle("GET", "/");
  ASSERT_EQ(r.status, 200u);
  EXPECT_NE(r.body.find("route-a"), std::string::npos);
  EXPECT_NE(r.body.find(">OK</span>"), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find("secret-name"), std::string::npos);
  EXPECT_EQ(r.body.find("<script"), std::string::npos);
}

TEST_F(StatusFixture, RoutePageShowsTransfersReceiptsAndChart) {
  HttpReply r = router().Handle("GET", "/routes/route-a?x=1");
  ASSERT_EQ(r.status, 200u) << r.body;
  EXPECT_NE(r.body.find("secret-name-1.csv"), std::string::npos);
  EXPECT_NE(r.body.find("0 OK"), std::string::npos);
  EXPECT_NE(r.body.find("data-day=\"" + UtcDay(now_) + "\" data-count=\"2\""), std::string::npos)
      << r.body;
}

TEST_F(StatusFixture, ApiMatchesThePages) {
  HttpReply r = router().Handle("GET", "/api/routes/route-a");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "application/json");
  auto doc = nlohmann::json::parse(r.body);
  EXPECT_EQ(doc["id"], "route-a");
  EXPECT_EQ(doc["deliveries_per_day"].size(), 30u);
  EXPECT_EQ(doc["deliveries_per_day"].back()["count"], 2);
  EXPECT_EQ(doc["recent_transfers"].size(), 3u);
  auto t = nlohmann::json::parse(router().Handle("GET", "/api/transfers/" + uuids_[2]).body);
  EXPECT_EQ(t["state"], "rejected");
  EXPECT_EQ(t["receipt"]["code"], 1005);
  EXPECT_EQ(t["receipt"]["name"], "SIZE_MISMATCH");
  auto ok = nlohmann::json::parse(router().Handle("GET", "/api/transfers/" + uuids_[0]).body);
  EXPECT_EQ(ok["receipt"],
            (nlohmann::json{{"code", 0}, {"name", "SUCCESS"}, {"description", nullptr}}));
  EXPECT_FALSE(t.contains("trigger"));
  auto list = nlohmann::json::parse(router().Handle("GET", "/api/routes").body);
  EXPECT_EQ(list["routes"][0]["state"], "OK");
  EXPECT_EQ(list["routes"][0]["delivered_today"], 2);
}

// A name put in /OUT by other means than the server need not be UTF-8 and may hold controls: the
// API still answers with valid JSON (U+FFFD for each stray byte) and the page shows them escaped.
TEST_F(StatusFixture, NamesThatAreNotUtf8OrHoldControlsAreServedSafely) {
  TransferRecord t;
  t.uuid = "00000009-0000-4000-8000-000000000000";
  t.sender = "kmd";
  t.name =
      "evil\xff\x1b[31m<b>\n\xc2\x9b"
      "2J.csv";
  t.trigger_name = t.name + ".trigger";
  t.route_ids = {"route-a"};
  t.received_at = t.updated_at = now_;
  t.step = TransferStep::kDone;
  t.state = TransferState::kRejected;
  t.error_code = 1003;
  t.error_description = "FileName \"x.csv\" is not the trigger's own name";
  t.receipt_xml = "<receipt/>";
  Batch batch;
  batch.PutTransfer(t).AddEvent("rejected", t.uuid, "kmd", "code=1003");
  ASSERT_TRUE(audit_->Commit(std::move(batch)).ok());

  for (const std::string& path : {std::string("/api/routes/route-a"), "/api/transfers/" + t.uuid}) {
    HttpReply r = router().Handle("GET", path);
    ASSERT_EQ(r.status, 200u) << path;
    EXPECT_TRUE(IsValidUtf8(r.body)) << path;
    auto doc = nlohmann::json::parse(r.body);  // throws when not JSON
    const auto& name =
        path.find("/api/routes/") == 0 ? doc["recent_transfers"][0]["name"] : doc["name"];
    EXPECT_EQ(name,
              "evil\xef\xbf\xbd\x1b[31m<b>\n\xc2\x9b"
              "2J.csv")
        << path;
  }
  for (const std::string& path : {std::string("/routes/route-a"), "/transfers/" + t.uuid}) {
    HttpReply r = router().Handle("GET", path);
    ASSERT_EQ(r.status, 200u) << path;
    EXPECT_TRUE(IsValidUtf8(r.body)) << path;
    EXPECT_NE(r.body.find("evil\\xff\\x1b[31m&lt;b&gt;\\x0a\\xc2\\x9b2J.csv"), std::string::npos)
        << r.body;
    EXPECT_EQ(r.body.find('\x1b'), std::string::npos) << path;
  }
}

TEST_F(StatusFixture, WrongMethodsAndPathsGetTheirStatus) {
  HttpReply post = router().Handle("POST", "/");
  EXPECT_EQ(post.status, 405u);
  ASSERT_EQ(post.headers.size(), 1u);
  EXPECT_EQ(post.headers[0].second, "GET, HEAD");
  EXPECT_NE(post.content_type, "application/json");                 // a page for a browser
  HttpReply api_post = router().Handle("POST", "/api/routes?x=1");  // the API answers in JSON
  EXPECT_EQ(api_post.status, 405u);
  EXPECT_EQ(api_post.content_type, "application/json");
  EXPECT_EQ(api_post.body, "{\"error\":\"only GET and HEAD are served here\"}\n");
  EXPECT_EQ(router().Handle("GET", "/nope").status, 404u);
  EXPECT_EQ(router().Handle("GET", "/routes/").status, 404u);
  EXPECT_EQ(router().Handle("GET", "/routes/none").status, 404u);
  EXPECT_EQ(router().Handle("GET", "/transfers/../etc").status, 404u);
  EXPECT_EQ(router().Handle("GET", "/api/transfers/ffffffff-0000-4000-8000-000000000000").status,
            404u);
  EXPECT_EQ(router().Handle("GET", "/api/nope").content_type, "application/json");
}

TEST_F(StatusFixture, MetricsHaveCountersAndScrapeTimeGauges) {
  metrics_.CountTransfer("oekonomi", TransferResult::kDelivered);
  HttpReply r = router().Handle("GET", "/metrics");
  ASSERT_EQ(r.status, 200u);
  EXPECT_EQ(r.content_type, "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r.body.find("fordeler_transfers_total{data_area=\"oekonomi\",outcome=\"delivered\"} 1"),
            std::string::npos);
  EXPECT_NE(r.body.find("fordeler_pending_deliveries 2\n"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("fordeler_late_routes 0\n"), std::string::npos);
  EXPECT_NE(r.body.find("fordeler_active_sessions 7\n"), std::string::npos);
  EXPECT_NE(r.body.find("fordeler_triggers_waiting 12\n"), std::string::npos);
  EXPECT_NE(r.body.find("fordeler_transfers_in_progress 3\n"), std::string::npos);
  EXPECT_NE(r.body.find("# TYPE fordeler_storage_free_bytes gauge"), std::string::npos);
}

}  // namespace
}  // namespace fordeler
