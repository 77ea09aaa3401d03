// The commands' work, in-process, against a real audit database and configuration.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "audit/audit_testing.h"
#include "cli/audit_verify_command.h"
#include "cli/explain_command.h"
#include "cli/status_command.h"
#include "cli/transfers_command.h"
#include "core/names.h"

namespace fordeler::cli {
namespace {

using fordeler::testing::At;
using fordeler::testing::FakeEnv;
using fordeler::testing::OpenOrDie;
using fordeler::testing::RawDb;
using fordeler::testing::TempDir;

constexpr char kUuid1[] = "11111111-1111-4111-8111-111111111111";
constexpr char kUuid2[] = "22222222-2222-4222-8222-222222222222";
constexpr int64_t kHour = 3'600'000;

class CommandsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_path_ = dir_.File("fordeler.toml");
    std::ofstream(config_path_) << "[server]\ntime_zone = \"UTC\"\n[storage]\nroot = \""
                                << dir_.File("root") << "\"\n[database]\npath = \"audit.db\"\n"
                                << "[[account]]\nid = \"kmd\"\nauthority = \"urn:oio:cvr-nr:1\"\n"
                                << "[[account]]\nid = \"flis\"\n"
                                << "[[data_area]]\nid = \"oekonomi\"\nname = \"Økonomi\"\n"
                                << "deliver_service = \"FLISOekonomiAflever_1\"\n"
                                << "fetch_service = \"FLISOekonomiHent_1\"\n"
                                << "[[route]]\nid = \"r1\"\ndata_area = \"oekonomi\"\n"
                                << "sender = \"kmd\"\nauthorities = [\"*\"]\n"
                                << "recipients = [\"flis\"]\n";
    auto loaded = LoadConfig(config_path_);
    ASSERT_TRUE(loaded.config) << (loaded.errors.empty() ? "" : loaded.errors[0].ToString());
    config_ = loaded.config;
    env_.Set(now_);
    store_ = OpenOrDie(dir_.File("audit.db"), &env_);
    Batch b;
    TransferRecord t = fordeler::testing::SampleTransfer(kUuid1, now_ - hours(2));
    t.sender = "kmd";
    t.name = "a.csv";
    t.data_area = "oekonomi";
    t.route_ids = {"r1"};
    t.state = TransferState::kDelivered;
    t.step = TransferStep::kDone;
    DeliveryRecord d =
        fordeler::testing::Delivery(kUuid1, "flis", "a.csv", DeliveryState::kDelivered);
    d.delivered_at = now_ - hours(1);
    TransferRecord r = fordeler::testing::SampleTransfer(kUuid2, now_ - hours(1));
    r.sender = "kmd";
    r.name = "b.csv";
    r.route_ids.clear();
    r.state = TransferState::kRejected;
    r.step = TransferStep::kDone;
    r.error_code = 2001;
    b.PutTransfer(t).PutDelivery(d).AddEvent("delivered", kUuid1, "flis", "name=a.csv");
    b.PutTransfer(r).AddEvent("rejected", kUuid2, "kmd", "code=2001");
    ASSERT_TRUE(store_->Commit(std::move(b)).ok());
    AuditStore::Options ro;
    ro.read_only = true;
    reader_ = OpenOrDie(dir_.File("audit.db"), &env_, ro);
  }

  static std::chrono::hours hours(int h) { return std::chrono::hours(h); }

  TempDir dir_;
  FakeEnv env_;
  TimePoint now_ = At(1000 * kHour);
  std::string config_path_;
  std::shared_ptr<const Config> config_;
  std::unique_ptr<AuditStore> store_, reader_;
  std::ostringstream out_, err_;
  Io io_{out_, err_, false};
};

TEST_F(CommandsTest, TransferFilters) {
  TransferFilter f;
  std::string error;
  TransferOptions o;
  o.since = "24h";
  o.state = "rejected";
  o.limit = 0;
  ASSERT_TRUE(MakeTransferFilter(o, now_, &f, &error)) << error;
  EXPECT_EQ(*f.since, now_ - hours(24));
  EXPECT_EQ(*f.state, TransferState::kRejected);
  EXPECT_EQ(f.limit, -1);
  o = TransferOptions();
  o.since = "2026-11-22T02:00:00+01:00";
  ASSERT_TRUE(MakeTransferFilter(o, now_, &f, &error));
  EXPECT_EQ(FormatTime(*f.since), "2026-11-22T01:00:00.000Z");
  o.since = "yesterday";
  EXPECT_FALSE(MakeTransferFilter(o, now_, &f, &error));
  EXPECT_NE(error.find("--since"), std::string::npos);
  o = TransferOptions();
  o.state = "done";
  EXPECT_FALSE(MakeTransferFilter(o, now_, &f, &error));
}

TEST_F(CommandsTest, TransfersJsonIsNewestFirstWithNulls) {
  TransferFilter f;
  ASSERT_EQ(ListTransfersTo(*reader_, f, true, io_), kExitOk);
  auto doc = nlohmann::json::parse(out_.str());
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[0]["uuid"], kUuid2);
  EXPECT_EQ(doc[0]["state"], "rejected");
  EXPECT_TRUE(doc[0]["data_area"].is_null());
  EXPECT_EQ(doc[0]["error_code"], 2001);
  EXPECT_EQ(doc[1]["uuid"], kUuid1);
  EXPECT_TRUE(doc[1]["error_code"].is_null());
  EXPECT_EQ(doc[1]["data_area"], "oekonomi");
  EXPECT_EQ(doc[1]["received_at"], FormatTime(now_ - hours(2)));
  f.state = TransferState::kDelivered;
  std::ostringstream table;
  Io io{table, err_, false};
  ASSERT_EQ(ListTransfersTo(*reader_, f, false, io), kExitOk);
  EXPECT_EQ(table.str(),
            std::string("UUID                                  STATE       CODE  RECEIVED\n") +
                kUuid1 + "  delivered      -  " + TableTime(now_ - hours(2)) +
                "\n  kmd → a.csv (oekonomi)\n");
}

// A name put in /OUT by other means need not be UTF-8 and may hold escape sequences, C1 controls
// and line breaks; the receipt may hold C1 controls the sender put in its SendersFileId.
TEST_F(CommandsTest, HostileNamesCannotReachTheTerminalOrBreakTheJson) {
  constexpr char kUuid3[] = "33333333-3333-4333-8333-333333333333";
  TransferRecord t = fordeler::testing::SampleTransfer(kUuid3, now_);
  t.sender = "kmd";
  t.name =
      "evil\xff\x1b[2J\nforged\xc2\x9b"
      "31m.csv";
  t.trigger_name = t.name + ".trigger";
  t.state = TransferState::kRejected;
  t.step = TransferStep::kDone;
  t.error_code = 1003;
  t.error_description = "FileName \"x\" is not \"" + t.name + "\"";
  t.receipt_xml =
      "<a>\n<SendersFileId>\xc2\x9b"
      "2J</SendersFileId>\n</a>\n";
  Batch b;
  b.PutTransfer(t).AddEvent("rejected", kUuid3, "kmd", "code=1003");
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  const std::string shown = "evil\\xff\\x1b[2J\\x0aforged\\xc2\\x9b31m.csv";
  auto no_controls = [](const std::string& text) {
    for (size_t i = 0; i < text.size(); ++i) {
      auto b = static_cast<unsigned char>(text[i]);
      if ((b < 0x20 && b != '\n') || b == 0x7f) return false;
      if (b == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) < 0xA0) {
        return false;
      }
    }
    return IsValidUtf8(text);
  };

  TransferFilter f;
  ASSERT_EQ(ListTransfersTo(*reader_, f, true, io_), kExitOk);
  auto list = nlohmann::json::parse(out_.str());  // throws when not JSON
  EXPECT_EQ(list[0]["name"],
            "evil\xef\xbf\xbd\x1b[2J\nforged\xc2\x9b"
            "31m.csv");
  out_.str("");
  ASSERT_EQ(ListTransfersTo(*reader_, f, false, io_), kExitOk);
  EXPECT_TRUE(no_controls(out_.str())) << out_.str();
  EXPECT_NE(out_.str().find("kmd → " + shown), std::string::npos) << out_.str();
  const std::string table = out_.str();
  EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 7);  // header, 3 x 2 lines
  out_.str("");
  ASSERT_EQ(ShowTransfer(*reader_, kUuid3, true, io_), kExitOk);
  EXPECT_EQ(nlohmann::json::parse(out_.str())["trigger_name"],
            "evil\xef\xbf\xbd\x1b[2J\nforged\xc2\x9b"
            "31m.csv.trigger");
  out_.str("");
  ASSERT_EQ(ShowTransfer(*reader_, kUuid3, false, io_), kExitOk);
  EXPECT_TRUE(no_controls(out_.str())) << out_.str();
  EXPECT_NE(out_.str().find("name              " + shown + "  (trigger " + shown + ".trigger)\n"),
            std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("<SendersFileId>\\xc2\\x9b2J</SendersFileId>\n"), std::string::npos);
}

TEST_F(CommandsTest, ShowTransferExitStatuses) {
  EXPECT_EQ(ShowTransfer(*reader_, "not-a-uuid", false, io_), kExitUsage);
  EXPECT_EQ(ShowTransfer(*reader_, "33333333-3333-4333-8333-333333333333", false, io_),
            kExitBadNews);
  EXPECT_NE(err_.str().find("no such transfer"), std::string::npos);
  ASSERT_EQ(ShowTransfer(*reader_, kUuid1, true, io_), kExitOk);
  auto doc = nlohmann::json::parse(out_.str());
  EXPECT_EQ(doc["uuid"], kUuid1);
  ASSERT_EQ(doc["deliveries"].size(), 1u);
  EXPECT_EQ(doc["deliveries"][0]["recipient"], "flis");
  EXPECT_EQ(doc["deliveries"][0]["state"], "delivered");
  EXPECT_TRUE(doc["deliveries"][0]["picked_up_at"].is_null());
  ASSERT_EQ(doc["events"].size(), 1u);
  EXPECT_EQ(doc["events"][0]["kind"], "delivered");
  EXPECT_TRUE(doc["events"][0]["seq"].is_number_integer());
}

// The download is recorded after the pickup (its transfer is looked up first), dated when the
// server reported it, before the removal: show lists the history as it happened, text and JSON.
TEST_F(CommandsTest, ShowListsEventsInTheOrderTheyHappened) {
  env_.Set(now_ + std::chrono::minutes(1));
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("picked_up", kUuid1, "flis", "name=a.csv")).ok());
  ASSERT_TRUE(store_
                  ->Commit(Batch().AddEvent("downloaded", kUuid1, "flis", "name=a.csv",
                                            now_ + std::chrono::seconds(30)))
                  .ok());
  ASSERT_EQ(ShowTransfer(*reader_, kUuid1, false, io_), kExitOk);
  const std::string text = out_.str();
  auto delivered = text.find("  delivered  flis  name=a.csv\n");
  auto downloaded = text.find("  downloaded  flis  name=a.csv\n");
  auto picked_up = text.find("  picked_up  flis  name=a.csv\n");
  ASSERT_NE(picked_up, std::string::npos) << text;
  EXPECT_LT(delivered, downloaded) << text;
  EXPECT_LT(downloaded, picked_up) << text;

  out_.str("");
  ASSERT_EQ(ShowTransfer(*reader_, kUuid1, true, io_), kExitOk);
  auto events = nlohmann::json::parse(out_.str())["events"];
  std::vector<std::string> kinds;
  std::vector<int64_t> seqs;
  for (const auto& e : events) {
    kinds.push_back(e["kind"]);
    seqs.push_back(e["seq"]);
  }
  EXPECT_EQ(kinds, (std::vector<std::string>{"delivered", "downloaded", "picked_up"}));
  EXPECT_EQ(seqs, (std::vector<int64_t>{1, 4, 3}));
}

TEST_F(CommandsTest, StatusCountsAndStuckTransfers) {
  auto report = BuildStatus(*config_, *reader_, now_, now_ - hours(3));
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  auto doc = StatusJson(*report);
  ASSERT_EQ(doc.size(), 1u);
  EXPECT_EQ(doc[0]["route"], "r1");
  EXPECT_EQ(doc[0]["recipients"], Json::array({"flis"}));
  EXPECT_EQ(doc[0]["last_delivery"]["file"], "a.csv");
  EXPECT_EQ(doc[0]["today"], 1);
  EXPECT_EQ(doc[0]["pending"], 1);
  EXPECT_EQ(doc[0]["failed_24h"], 0);
  EXPECT_EQ(doc[0]["rejected_24h"], 1);
  EXPECT_TRUE(report->stuck.empty());
  EXPECT_EQ(RunStatus(config_path_, false, now_, io_), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("oekonomi: kmd → flis; last file a.csv"), std::string::npos);

  Batch b;  // a transfer stuck unfinished for 10 minutes
  TransferRecord stuck = fordeler::testing::SampleTransfer("44444444-4444-4444-8444-444444444444",
                                                           now_ - std::chrono::minutes(10));
  stuck.step = TransferStep::kSpooled;
  b.PutTransfer(stuck);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_EQ(RunStatus(config_path_, true, now_, io_), kExitBadNews);
  EXPECT_NE(err_.str().find("44444444-4444-4444-8444-444444444444"), std::string::npos);
}

// Contract §10: `status` exits 1 for a transfer failing with 5001 at once, not only after it has
// been unfinished for 5 minutes; a transfer unfinished for a minute without a failure is fine.
TEST_F(CommandsTest, StatusIsBadNewsAtOnceForATransferFailingWith5001) {
  Batch b;
  TransferRecord young = fordeler::testing::SampleTransfer("55555555-5555-4555-8555-555555555555",
                                                           now_ - std::chrono::minutes(1));
  young.step = TransferStep::kSpooled;
  b.PutTransfer(young);
  ASSERT_TRUE(store_->Commit(std::move(b)).ok());
  EXPECT_EQ(RunStatus(config_path_, false, now_, io_), kExitOk) << err_.str();

  Batch failing_batch;
  TransferRecord failing = fordeler::testing::SampleTransfer("66666666-6666-4666-8666-666666666666",
                                                             now_ - std::chrono::minutes(1));
  failing.step = TransferStep::kSpooled;
  failing.error_code = 5001;
  failing.error_description = "injected: EIO";
  failing_batch.PutTransfer(failing);
  ASSERT_TRUE(store_->Commit(std::move(failing_batch)).ok());
  EXPECT_EQ(RunStatus(config_path_, false, now_, io_), kExitBadNews);
  const std::string shown = out_.str() + err_.str();
  EXPECT_NE(shown.find("66666666-6666-4666-8666-666666666666"), std::string::npos) << shown;
  EXPECT_EQ(shown.find("55555555-5555-4555-8555-555555555555"), std::string::npos) << shown;
}

TEST_F(CommandsTest, StatusShowsRouteHealthAndExitsOneWhileLate) {
  // now_ is 16:00 UTC; r2 expected a delivery at 15:00 with 45 minutes' grace, and none came.
  std::ofstream(config_path_, std::ios::app)
      << "[[route]]\nid = \"r2\"\ndata_area = \"oekonomi\"\nsender = \"kmd\"\n"
      << "authorities = [\"*\"]\nrecipients = [\"flis\"]\nexpect = [\"daily 15:00\"]\n"
      << "grace = \"45m\"\n";
  // Until fordelerd has watched r2's schedule, nothing on it is due (it shows the sender's
  // rejection only).
  EXPECT_EQ(RunStatus(config_path_, false, now_, io_), kExitOk) << err_.str();
  EXPECT_NE(out_.str().find("r2     FAILED"), std::string::npos) << out_.str();
  out_.str("");
  // fordelerd has watched it since yesterday.
  env_.Set(now_ - hours(24));
  ASSERT_TRUE(store_
                  ->Commit(Batch().AddEvent("route_watched", "", "",
                                            "route=r2 authority=* expect=daily_15:00"))
                  .ok());
  env_.Set(now_);
  EXPECT_EQ(RunStatus(config_path_, false, now_, io_), kExitBadNews) << err_.str();
  EXPECT_NE(out_.str().find("r2     LATE"), std::string::npos) << out_.str();
  EXPECT_NE(out_.str().find("LATE: The delivery expected at 1970-02-11 15:00 UTC has not arrived"),
            std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("oekonomi: kmd → flis; next expected 1970-02-12 15:00:00Z"),
            std::string::npos)
      << out_.str();
  EXPECT_NE(out_.str().find("r1     FAILED"), std::string::npos) << out_.str();  // kUuid2
  std::ostringstream json;
  Io io{json, err_, false};
  EXPECT_EQ(RunStatus(config_path_, true, now_, io), kExitBadNews);
  auto doc = nlohmann::json::parse(json.str());
  ASSERT_EQ(doc.size(), 2u);
  EXPECT_EQ(doc[0]["state"], "FAILED");
  EXPECT_TRUE(doc[0]["next_expected_at"].is_null());
  EXPECT_EQ(doc[1]["state"], "LATE");
  EXPECT_EQ(doc[1]["authority"], "*");
  EXPECT_EQ(doc[1]["due_at"], "1970-02-11T15:00:00.000Z");
  EXPECT_EQ(doc[1]["next_expected_at"], "1970-02-12T15:00:00.000Z");
  EXPECT_EQ(doc[1]["health"].size(), 1u);
  // After the second grace it is MISSING; still exit 1.
  EXPECT_EQ(RunStatus(config_path_, true, now_ + std::chrono::minutes(31), io), kExitBadNews);
  EXPECT_EQ(nlohmann::json::parse(json.str().substr(json.str().rfind("\n[") + 1))[1]["state"],
            "MISSING");
}

TEST_F(CommandsTest, ExplainAcceptsAndRejects) {
  auto trigger = [](const std::string& name, const std::string& recipient) {
    return "<ns2:Trigger xmlns:ns2=\"http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types\">"
           "<FileDescriptor><FileName>" +
           name +
           "</FileName><SizeInBytes>1</SizeInBytes>"
           "<Sender>kmd</Sender><Recipients>" +
           recipient +
           "</Recipients></FileDescriptor>"
           "</ns2:Trigger>";
  };
  Explanation ok = ExplainTrigger(*config_, "kmd", "a.csv.trigger", trigger("a.csv", "flis"));
  ASSERT_TRUE(ok.accepted) << ok.rejection.description;
  EXPECT_EQ(ok.resolution.data_area, "oekonomi");
  EXPECT_EQ(ok.resolution.authority, "urn:oio:cvr-nr:1");
  EXPECT_EQ(ok.resolution.route_ids, std::vector<std::string>{"r1"});
  Explanation unknown = ExplainTrigger(*config_, "kmd", "a.csv.trigger", trigger("a.csv", "x"));
  EXPECT_EQ(unknown.rejection.code, ErrorCode::kUnknownRecipient);
  Explanation name = ExplainTrigger(*config_, "kmd", "b.csv.trigger", trigger("a.csv", "flis"));
  EXPECT_EQ(name.rejection.code, ErrorCode::kFilenameMismatch);
  Explanation bad = ExplainTrigger(*config_, "kmd", "a.csv.trigger", "<oops");
  EXPECT_EQ(bad.rejection.code, ErrorCode::kTriggerMalformed);
  // A sample called otherwise (trigger.xml) is resolved; only its FileName cannot be checked.
  Explanation sample = ExplainTrigger(*config_, "kmd", "trigger.xml", trigger("a.csv", "flis"));
  EXPECT_TRUE(sample.accepted) << sample.rejection.description;
  EXPECT_FALSE(sample.name_checked);
  EXPECT_TRUE(ok.name_checked);
  Explanation invalid = ExplainTrigger(*config_, "kmd", "trigger.xml", trigger("a/b", "flis"));
  EXPECT_EQ(invalid.rejection.code, ErrorCode::kFilenameMismatch);  // no valid <name> at all

  // A sender's trigger may hold C1 controls (XML allows them) and line breaks: shown escaped.
  std::string path = dir_.File("c1.csv.trigger");
  std::ofstream(path) << trigger("c1.csv", "flis")
                             .replace(trigger("c1.csv", "flis").find("<SizeInBytes>1"), 14,
                                      "<SizeInBytes>1\xc2\x9b"
                                      "2J\nx");
  ASSERT_EQ(RunExplain(config_path_, path, "kmd", false, io_), kExitBadNews);
  EXPECT_EQ(out_.str(),
            "REJECTED: 1002 TRIGGER_INVALID\n  SizeInBytes \"1\\xc2\\x9b2J\\x0ax\" is not a whole "
            "number\n")
      << out_.str();
}

TEST_F(CommandsTest, AuditVerifyFindsAChangedRow) {
  ChainHead head;
  EXPECT_FALSE(ParseChainHead("12", &head));
  EXPECT_FALSE(ParseChainHead("x:" + std::string(64, 'a'), &head));
  EXPECT_FALSE(ParseChainHead("1:", &head));
  EXPECT_FALSE(ParseChainHead("0:" + std::string(64, 'a'), &head));
  ASSERT_TRUE(ParseChainHead("0:", &head));  // an empty log's head, as fordelerd logs it
  EXPECT_EQ(head.seq, 0);
  ASSERT_TRUE(ParseChainHead("2:" + std::string(64, 'A'), &head));
  EXPECT_EQ(head.seq, 2);
  EXPECT_EQ(head.hash, std::string(64, 'a'));
  EXPECT_EQ(VerifyAudit(*reader_, std::nullopt, false, io_), kExitOk);
  EXPECT_NE(out_.str().find("audit log OK: 2 events"), std::string::npos) << out_.str();
  RawDb raw(dir_.File("audit.db"));
  ASSERT_EQ(raw.Exec("DROP TRIGGER events_no_update"), 0);
  ASSERT_EQ(raw.Exec("UPDATE events SET detail = 'name=evil.csv' WHERE seq = 1"), 0);
  std::ostringstream out;
  Io io{out, err_, false};
  EXPECT_EQ(VerifyAudit(*reader_, std::nullopt, false, io), kExitBadNews);
  EXPECT_EQ(out.str(), "audit log BROKEN at seq 1: hash mismatch\n");
}

}  // namespace
}  // namespace fordeler::cli
