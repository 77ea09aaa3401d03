#include "delivery/pipeline.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "core/names.h"
#include "core/sha256.h"
#include "core/uuid.h"
#include "delivery/pipeline_testing.h"
#include "delivery/storage.h"
#include "metadata/trigger.h"

namespace fordeler {
namespace {

using testing::PipelineFixture;
using testing::TriggerXml;

class DeliveryTest : public PipelineFixture {};

TEST_F(DeliveryTest, HappyPathPlacesDataAndMetadataForEveryRecipient) {
  StartPipeline();
  std::string data = "konto;beloeb\n1010;2500.00\n";
  Send("oekonomi.csv", data, TriggerXml("oekonomi.csv", data.size(), "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));

  for (const char* recipient : {"flis", "lis"}) {
    EXPECT_EQ(Read(Path(recipient, "IN", "oekonomi.csv")), data) << recipient;
    std::string metadata = Read(Path(recipient, "IN", "oekonomi.csv.metadata"));
    EXPECT_NE(metadata.find("<ns2:Trigger"), std::string::npos) << metadata;
    EXPECT_NE(metadata.find("<Recipients>" + std::string(recipient) + "</Recipients>"),
              std::string::npos);
    EXPECT_NE(metadata.find("FLISOekonomiHent_1"), std::string::npos);
    EXPECT_NE(metadata.find(ToHex(Sha256::Of(data))), std::string::npos);
  }
  std::string receipt = Read(Path("vendor", "IN", "oekonomi.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("SUCCESS"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("<SendersFileId>sfid-1</SendersFileId>"), std::string::npos);
  EXPECT_TRUE(List(Path("vendor", "OUT")).empty());

  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].state, TransferState::kDelivered);
  EXPECT_EQ(transfers[0].step, TransferStep::kDone);
  EXPECT_EQ(transfers[0].data_area.value_or(""), "oekonomi");
  EXPECT_EQ(transfers[0].sha256.value_or(""), ToHex(Sha256::Of(data)));
  EXPECT_NE(receipt.find(transfers[0].uuid), std::string::npos);
  auto deliveries = audit_->DeliveriesOf(transfers[0].uuid);
  ASSERT_TRUE(deliveries.ok());
  ASSERT_EQ(deliveries->size(), 2u);
  for (const auto& d : *deliveries) EXPECT_EQ(d.state, DeliveryState::kDelivered);
  auto verified = audit_->Verify(std::nullopt);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok) << verified->problem;
  EXPECT_EQ(verified->digests, 2);  // each `delivered` event carries the digest and size
}

TEST_F(DeliveryTest, RejectionGoesToQuarantineWithAReceiptAndReachesNobody) {
  StartPipeline();
  Send("x.csv", "abc", TriggerXml("x.csv", 3, "vendor", {"nobody"}));
  ASSERT_TRUE(WaitFinished(1));
  std::string receipt = Read(Path("vendor", "IN", "x.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>2001</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("UNKNOWN_RECIPIENT"), std::string::npos);
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_TRUE(List(Path("lis", "IN")).empty());
  EXPECT_TRUE(List(Path("vendor", "OUT")).empty());
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].state, TransferState::kRejected);
  EXPECT_EQ(transfers[0].error_code, 2001);
  EXPECT_EQ(List(root_ + "/quarantine/" + transfers[0].uuid),
            (std::set<std::string>{"x.csv", "x.csv.trigger", "receipt.xml"}));
}

TEST_F(DeliveryTest, EachSenderErrorHasItsCode) {
  StartPipeline();
  struct Case {
    std::string name, data, trigger;
    int code;
  } cases[] = {
      {"a.csv", "abc", "<not-xml", 1001},
      {"b.csv", "abc", "<Trigger/>", 1002},
      {"c.csv", "abc", TriggerXml("other.csv", 3, "vendor", {"flis"}), 1003},
      {"d.csv", "abc", TriggerXml("d.csv", 4, "vendor", {"flis"}), 1005},
      {"e.csv", "abc",
       TriggerXml("e.csv", 3, "vendor", {"flis"}, "<Sha256>" + std::string(64, 'a') + "</Sha256>"),
       1006},
      {"f.csv", "abc", TriggerXml("f.csv", 3, "flis", {"flis"}), 1007},
  };
  for (const auto& c : cases) Send(c.name, c.data, c.trigger);
  ASSERT_TRUE(WaitFinished(std::size(cases)));
  for (const auto& c : cases) {
    std::string receipt = Read(Path("vendor", "IN", c.name + ".sftpreceipt"));
    EXPECT_NE(receipt.find("<ErrorCode>" + std::to_string(c.code) + "</ErrorCode>"),
              std::string::npos)
        << c.name << ": " << receipt;
  }
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  // A rejected transfer is delivered to nobody, also when a late check (Sha256) rejected it
  // after its deliveries were planned.
  for (const auto& t : Transfers()) {
    auto deliveries = audit_->DeliveriesOf(t.uuid);
    ASSERT_TRUE(deliveries.ok());
    EXPECT_TRUE(deliveries->empty()) << t.name;
  }
  // The refusal of data already taken (e.csv: its Sha256 does not match) puts the digest and
  // size of what was refused in the chain; the others came before the data was taken.
  for (const auto& t : Transfers()) {
    std::string rejected;
    audit_->EventsOf(t.uuid, [&](const EventRecord& e) {
      if (e.kind == "rejected") rejected = e.detail;
      return true;
    });
    const std::string fields = " sha256=" + ToHex(Sha256::Of("abc")) + " size=3";
    EXPECT_EQ(rejected.ends_with(fields), t.name == "e.csv") << t.name << ": " << rejected;
  }
  auto verified = audit_->Verify(std::nullopt);
  ASSERT_TRUE(verified.ok());
  EXPECT_TRUE(verified->ok) << verified->problem;
  EXPECT_EQ(verified->digests, 1);
}

// Contract §10: only a transfer rejected before its data area was known has none. One rejected
// after routing (here 1005) records its data area, authority and routes, so that `status`
// counts it against that data area's routes only; one rejected before (1007) records none.
TEST_F(DeliveryTest, ARejectionAfterRoutingRecordsItsDataAreaAndRoutes) {
  StartPipeline();
  Send("size.csv", "abc", TriggerXml("size.csv", 4, "vendor", {"flis"}));
  Send("sender.csv", "abc", TriggerXml("sender.csv", 3, "flis", {"flis"}));
  ASSERT_TRUE(WaitFinished(2));
  std::map<std::string, TransferRecord> by_name;
  for (auto& t : Transfers()) by_name[t.name] = t;
  const TransferRecord& size = by_name.at("size.csv");
  EXPECT_EQ(size.error_code, 1005);
  EXPECT_EQ(size.data_area, "oekonomi");
  EXPECT_EQ(size.route_ids, std::vector<std::string>{"oekonomi-vendor"});
  const TransferRecord& sender = by_name.at("sender.csv");
  EXPECT_EQ(sender.error_code, 1007);
  EXPECT_EQ(sender.data_area, std::nullopt);
  EXPECT_TRUE(sender.route_ids.empty());
}

// Contract §7, 3001: fordeler's server stops writes at max_file_size, so a data file announced
// larger is in /OUT only in part. Its trigger gets 3001, not 1005 for the part, and both files go
// to quarantine.
TEST_F(DeliveryTest, ADataFileAnnouncedOverTheSizeLimitIsRejectedWith3001) {
  config_->delivery.max_file_size = 8;
  StartPipeline();
  Send("big.csv", "12345678", TriggerXml("big.csv", 100, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::string receipt = Read(Path("vendor", "IN", "big.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>3001</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_TRUE(List(Path("vendor", "OUT")).empty());
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
}

// Contract §3: a trigger is at most 64 KiB. The pipeline reads one byte past the limit, so that a
// trigger one byte over it is refused even when that byte is trailing white space and the first
// 64 KiB alone would be a valid trigger.
TEST_F(DeliveryTest, ATriggerOfExactly64KiBIsReadAndOneByteMoreIsMalformed) {
  StartPipeline();
  std::string at_limit = TriggerXml("limit.csv", 3, "vendor", {"flis"});
  at_limit.resize(kMaxTriggerBytes, '\n');
  std::string over_limit = TriggerXml("over.csv", 3, "vendor", {"flis"});
  over_limit.resize(kMaxTriggerBytes + 1, '\n');
  Send("limit.csv", "abc", at_limit);
  Send("over.csv", "abc", over_limit);
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_EQ(Read(Path("flis", "IN", "limit.csv")), "abc");
  std::string receipt = Read(Path("vendor", "IN", "over.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>1001</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_FALSE(Exists(Path("flis", "IN", "over.csv")));
}

TEST_F(DeliveryTest, MissingDataFileIsRejectedAfterTheGrace) {
  config_->delivery.trigger_grace = std::chrono::milliseconds(400);
  StartPipeline();
  Put(Path("vendor", "OUT", "late.csv.trigger"), TriggerXml("late.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "late.csv.trigger", false);
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_NE(Read(Path("vendor", "IN", "late.csv.sftpreceipt")).find("<ErrorCode>1004<"),
            std::string::npos);
}

// A data file marked by fordeler's server as an upload that did not finish is never taken,
// whatever its trigger says: it is waited for like a missing one, then rejected with 1004 and
// a description that says why; uploaded again within the grace (the mark cleared), it goes.
TEST_F(DeliveryTest, AnUploadThatDidNotFinishIsNotTaken) {
  config_->delivery.trigger_grace = std::chrono::milliseconds(1500);  // room for a slow machine
  StartPipeline();
  const mode_t unfinished = kUploadMode | kUnfinishedUploadMark;
  Put(Path("vendor", "OUT", "cut.csv"), "ab");  // 2 of its bytes, as its trigger announces
  ASSERT_EQ(chmod(Path("vendor", "OUT", "cut.csv").c_str(), unfinished), 0);
  Put(Path("vendor", "OUT", "again.csv"), "abc");
  ASSERT_EQ(chmod(Path("vendor", "OUT", "again.csv").c_str(), unfinished), 0);
  for (const char* name : {"cut.csv", "again.csv"}) {
    std::string trigger = std::string(name) + ".trigger";
    uint64_t size = name == std::string("cut.csv") ? 2 : 3;
    Put(Path("vendor", "OUT", trigger), TriggerXml(name, size, "vendor", {"flis"}));
    pipeline_->OnFolderChange("vendor", Folder::kOut, trigger, false);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(chmod(Path("vendor", "OUT", "again.csv").c_str(), kUploadMode), 0);  // finished
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_FALSE(Exists(Path("flis", "IN", "cut.csv")));
  std::string receipt = Read(Path("vendor", "IN", "cut.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>1004<"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("its upload did not finish"), std::string::npos) << receipt;
  EXPECT_EQ(Read(Path("flis", "IN", "again.csv")), "abc");
}

// A trigger sent twice: the first transfer delivers the file, the second finds no data file and
// gets 1004, whose receipt replaces the first's (contract §5). Its description says which
// transfer took the file, so that the sender does not send it again.
TEST_F(DeliveryTest, ATriggerSentTwiceSaysWhichTransferTookTheFile) {
  config_->delivery.trigger_grace = std::chrono::milliseconds(300);
  StartPipeline();
  Send("twice.csv", "abc", TriggerXml("twice.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  const std::string first = Transfers().at(0).uuid;
  Put(Path("vendor", "OUT", "twice.csv.trigger"), TriggerXml("twice.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "twice.csv.trigger", false);
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_EQ(Read(Path("flis", "IN", "twice.csv")), "abc");
  std::string receipt = Read(Path("vendor", "IN", "twice.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>1004<"), std::string::npos) << receipt;
  EXPECT_NE(
      receipt.find("OUT/twice.csv was taken by transfer " + first + " (SendersFileId sfid-1)"),
      std::string::npos)
      << receipt;
  EXPECT_NE(receipt.find("which delivered it: was this trigger sent twice?"), std::string::npos)
      << receipt;
  // Triggers for a file nobody sent say nothing of the kind, the second one neither: the first
  // took nothing.
  for (int n : {3, 4}) {
    Put(Path("vendor", "OUT", "never.csv.trigger"), TriggerXml("never.csv", 3, "vendor", {"flis"}));
    pipeline_->OnFolderChange("vendor", Folder::kOut, "never.csv.trigger", false);
    ASSERT_TRUE(WaitFinished(n));
    receipt = Read(Path("vendor", "IN", "never.csv.sftpreceipt"));
    EXPECT_NE(receipt.find("<ErrorCode>1004<"), std::string::npos) << receipt;
    EXPECT_EQ(receipt.find("was taken by"), std::string::npos) << n << ": " << receipt;
  }
}

TEST_F(DeliveryTest, DataArrivingWithinTheGraceIsDelivered) {
  StartPipeline();
  Put(Path("vendor", "OUT", "slow.csv.trigger"), TriggerXml("slow.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "slow.csv.trigger", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  PutWhole(Path("vendor", "OUT", "slow.csv"), "abc");
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "slow.csv")), "abc");
}

TEST_F(DeliveryTest, AnExistingFileIsNeverOverwritten) {
  StartPipeline();
  Put(Path("flis", "IN", "same.csv"), "older");
  Send("same.csv", "newer", TriggerXml("same.csv", 5, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::string uuid = Transfers().at(0).uuid;
  EXPECT_EQ(Read(Path("flis", "IN", "same.csv")), "older");
  EXPECT_EQ(Read(Path("flis", "IN", "same.csv." + uuid)), "newer");
  std::string metadata = Read(Path("flis", "IN", "same.csv." + uuid + ".metadata"));
  EXPECT_NE(metadata.find("<FileName>same.csv." + uuid + "</FileName>"), std::string::npos);
  EXPECT_EQ(Read(Path("lis", "IN", "same.csv")), "newer");  // no collision there
}

TEST_F(DeliveryTest, TheSameNameCanBeSentAgain) {
  StartPipeline();
  Send("daily.csv", "one", TriggerXml("daily.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  Send("daily.csv", "two!", TriggerXml("daily.csv", 4, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(2));
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 2u);
  EXPECT_EQ(Read(Path("flis", "IN", "daily.csv." + transfers[0].uuid)), "two!");
  // The newer receipt replaced the older one (contract §5).
  EXPECT_NE(Read(Path("vendor", "IN", "daily.csv.sftpreceipt")).find(transfers[0].uuid),
            std::string::npos);
}

// A burst of triggers from one sender does not hold up another sender's: the pipeline begins
// waiting triggers a sender at a time (PostBegins), not in the order they were announced.
TEST_F(DeliveryTest, AnotherSendersTriggerIsBegunInTurnDuringABurst) {
  Account other = config_->accounts[0];  // "vendor"
  other.id = "other";
  config_->accounts.push_back(other);
  Route route = config_->routes[0];
  route.id = "oekonomi-other";
  route.sender = "other";
  config_->routes.push_back(route);
  ASSERT_EQ(std::system(("mkdir -p " + Path("other", "IN") + " " + Path("other", "OUT")).c_str()),
            0);
  StartPipeline();
  constexpr int kBurst = 40;
  for (int i = 0; i < kBurst; ++i) {
    std::string name = "burst" + std::to_string(i) + ".csv";
    Put(Path("vendor", "OUT", name), "abc");
    Put(Path("vendor", "OUT", name + ".trigger"), TriggerXml(name, 3, "vendor", {"flis"}));
  }
  Put(Path("other", "OUT", "lone.csv"), "abc");
  Put(Path("other", "OUT", "lone.csv.trigger"), TriggerXml("lone.csv", 3, "other", {"flis"}));
  for (int i = 0; i < kBurst; ++i) {
    pipeline_->OnFolderChange("vendor", Folder::kOut, "burst" + std::to_string(i) + ".csv.trigger",
                              false);
  }
  pipeline_->OnFolderChange("other", Folder::kOut, "lone.csv.trigger", false);
  DeliveryPipeline::Load load = pipeline_->load();  // 41 transfers take more than this long
  EXPECT_GT(load.waiting_triggers + load.in_progress, 0u);
  ASSERT_TRUE(WaitFinished(kBurst + 1, std::chrono::seconds(60)));
  load = pipeline_->load();
  EXPECT_EQ(load.waiting_triggers, 0u);
  EXPECT_EQ(load.in_progress, 0u);
  auto transfers = Transfers();  // newest first; a transfer's UUID is made as it is begun
  ASSERT_EQ(transfers.size(), static_cast<size_t>(kBurst + 1));
  std::sort(transfers.begin(), transfers.end(),
            [](const TransferRecord& a, const TransferRecord& b) { return a.uuid < b.uuid; });
  auto lone = std::find_if(transfers.begin(), transfers.end(),
                           [](const TransferRecord& t) { return t.sender == "other"; });
  ASSERT_NE(lone, transfers.end());
  // In announcement order it would be the last; in turns it comes right after the first
  // (a slow machine may have begun a few of the burst before it was announced).
  EXPECT_LT(lone - transfers.begin(), 5);
  for (const TransferRecord& t : transfers) EXPECT_EQ(t.state, TransferState::kDelivered);
}

TEST_F(DeliveryTest, ARecipientRemovingItsFileIsRecordedAsPickup) {
  StartPipeline();
  Send("p.csv", "abc", TriggerXml("p.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  ASSERT_EQ(unlink(Path("flis", "IN", "p.csv").c_str()), 0);
  pipeline_->OnFolderChange("flis", Folder::kIn, "p.csv", true);
  std::string uuid = Transfers().at(0).uuid;
  DeliveryState state = DeliveryState::kDelivered;
  for (int i = 0; i < 2000 && state != DeliveryState::kPickedUp; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto d = audit_->DeliveriesOf(uuid);
    if (d.ok() && !d->empty()) state = d->front().state;
  }
  EXPECT_EQ(state, DeliveryState::kPickedUp);
}

// A trigger that is a symlink or has another hard link was put in /OUT by other means: it is
// never read and gets no receipt, and the operator sees it in the log and the audit log.
TEST_F(DeliveryTest, ATriggerThatIsNoPlainFileIsIgnoredWhereTheOperatorSeesIt) {
  StartPipeline();
  Put(Path("vendor", "OUT", "x.csv"), "abc");
  Put(Path("vendor", "OUT", "y.csv"), "abc");
  std::string outside = root_ + "/elsewhere.trigger";
  Put(outside, TriggerXml("x.csv", 3, "vendor", {"flis"}));
  ASSERT_EQ(symlink(outside.c_str(), Path("vendor", "OUT", "x.csv.trigger").c_str()), 0);
  ASSERT_EQ(link(outside.c_str(), Path("vendor", "OUT", "y.csv.trigger").c_str()), 0);
  pipeline_->OnFolderChange("vendor", Folder::kOut, "x.csv.trigger", false);
  pipeline_->OnFolderChange("vendor", Folder::kOut, "y.csv.trigger", false);
  std::string details;
  int ignored = 0;
  for (int i = 0; i < 2000 && ignored < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    details.clear();
    ignored = 0;
    audit_->EventsOf("", [&](const EventRecord& e) {
      if (e.kind == "ignored" && e.account == "vendor") {
        ++ignored;
        details += e.detail + "\n";
      }
      return true;
    });
  }
  ASSERT_EQ(ignored, 2) << details;
  EXPECT_NE(details.find("name=x.csv.trigger"), std::string::npos) << details;
  EXPECT_NE(details.find("name=y.csv.trigger"), std::string::npos) << details;
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(Transfers().empty());
  EXPECT_TRUE(List(Path("vendor", "IN")).empty());  // no receipt
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_EQ(Read(Path("vendor", "OUT", "x.csv")), "abc");  // nothing taken
}

TEST_F(DeliveryTest, ARecipientsQuotaRejectsWhatWouldPassIt) {
  config_->accounts[1].quota_files = 1;  // flis
  config_->accounts[2].quota = 5;        // lis: 5 bytes
  StartPipeline();
  Send("q1.csv", "abc", TriggerXml("q1.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  Send("q2.csv", "abc", TriggerXml("q2.csv", 3, "vendor", {"lis"}));  // 3 + 3 > 5 bytes
  Send("q3.csv", "x", TriggerXml("q3.csv", 1, "vendor", {"flis"}));   // a second file
  ASSERT_TRUE(WaitFinished(3));
  for (const char* name : {"q2.csv", "q3.csv"}) {
    EXPECT_NE(Read(Path("vendor", "IN", std::string(name) + ".sftpreceipt"))
                  .find("<ErrorCode>3002</ErrorCode>"),
              std::string::npos)
        << name;
  }
  // Fetched files free room.
  ASSERT_EQ(unlink(Path("flis", "IN", "q1.csv").c_str()), 0);
  Send("q4.csv", "x", TriggerXml("q4.csv", 1, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(4));
  EXPECT_EQ(Read(Path("flis", "IN", "q4.csv")), "x");
}

// fordeler's server refuses a <name> over 243 bytes, but a trigger put in /OUT by other means
// (inotify) may be called up to 255 bytes. Its name is rejected with 1003, and it still gets
// exactly one receipt (whose name must fit: "<cut name>.<uuid>.sftpreceipt") and both files
// leave /OUT for quarantine (contract §2, §5), rather than the receipt failing for ever.
TEST_F(DeliveryTest, ATooLongNamePutInOutByOtherMeansIsRejectedWithOneReceipt) {
  StartPipeline();
  std::string name = "a";
  while (name.size() < 245) name += "æ";  // two bytes each: the cut falls inside one
  name += "b";
  ASSERT_EQ(name.size(), 246u);
  Send(name, "abc", TriggerXml(name, 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  const TransferRecord& t = transfers[0];
  EXPECT_EQ(t.state, TransferState::kRejected);
  EXPECT_EQ(t.step, TransferStep::kDone);
  EXPECT_EQ(t.error_code, 1003);
  std::string receipt_name = name.substr(0, 205) + "." + t.uuid + ".sftpreceipt";
  EXPECT_LE(receipt_name.size(), 255u);
  EXPECT_TRUE(IsValidUtf8(receipt_name));
  ASSERT_EQ(List(Path("vendor", "IN")), (std::set<std::string>{receipt_name}));
  EXPECT_NE(Read(Path("vendor", "IN", receipt_name)).find("<ErrorCode>1003</ErrorCode>"),
            std::string::npos);
  EXPECT_TRUE(List(Path("vendor", "OUT")).empty());
  EXPECT_EQ(List(root_ + "/quarantine/" + t.uuid),
            (std::set<std::string>{name, name + ".trigger", "receipt.xml"}));
  EXPECT_EQ(Read(root_ + "/quarantine/" + t.uuid + "/" + name), "abc");
  std::vector<std::string> kinds;
  audit_->EventsOf(t.uuid, [&](const EventRecord& e) {
    kinds.push_back(e.kind);
    return true;
  });
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "failed"), 0);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "receipt_sent"), 1);
}

// Data files whose <name> ends in ".metadata" or ".sftpreceipt" are data: they count towards
// quota_files and quota; the metadata and receipts beside them do not.
TEST_F(DeliveryTest, DataNamedLikeMetadataOrAReceiptCountsTowardsTheQuota) {
  config_->accounts[1].quota_files = 1;  // flis
  config_->accounts[2].quota = 5;        // lis: 5 bytes
  StartPipeline();
  Send("r.metadata", "abc", TriggerXml("r.metadata", 3, "vendor", {"flis"}));
  Send("x.sftpreceipt", "abc", TriggerXml("x.sftpreceipt", 3, "vendor", {"lis"}));
  ASSERT_TRUE(WaitFinished(2));
  Send("q1.csv", "x", TriggerXml("q1.csv", 1, "vendor", {"flis"}));   // a second file
  Send("q2.csv", "abc", TriggerXml("q2.csv", 3, "vendor", {"lis"}));  // 3 + 3 > 5 bytes
  ASSERT_TRUE(WaitFinished(4));
  for (const char* name : {"q1.csv", "q2.csv"}) {
    EXPECT_NE(Read(Path("vendor", "IN", std::string(name) + ".sftpreceipt"))
                  .find("<ErrorCode>3002</ErrorCode>"),
              std::string::npos)
        << name;
  }
  Send("q3.csv", "ab", TriggerXml("q3.csv", 2, "vendor", {"lis"}));  // 3 + 2 fits
  ASSERT_TRUE(WaitFinished(5));
  EXPECT_EQ(Read(Path("lis", "IN", "q3.csv")), "ab");
}

// An account that both sends and receives may be sent a data file called "<x>.sftpreceipt". Its
// own receipt for <x> replaces an older receipt, never that delivery: it goes to
// "<x>.<uuid>.sftpreceipt" instead, for accepted and rejected transfers alike.
// Contract §5: a newer transfer's receipt replaces an older one, not the other way round. The
// older transfer of r.csv waits (lis's /IN is away) while the sender sends r.csv again; when it
// finishes at last, its receipt takes the <name>.<uuid> form.
TEST_F(DeliveryTest, AnOlderTransferFinishingLateDoesNotReplaceTheNewerReceipt) {
  StartPipeline();
  ASSERT_EQ(rename(Path("lis", "IN").c_str(), Path("lis", "IN.away").c_str()), 0);
  Send("r.csv", "old", TriggerXml("r.csv", 3, "vendor", {"lis"}));
  auto first = [&]() -> std::optional<TransferRecord> {
    for (const TransferRecord& t : Transfers()) {
      if (t.error_code == 5001) return t;
    }
    return std::nullopt;
  };
  for (int i = 0; i < 500 && !first(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_TRUE(first()) << "the first transfer did not fail on the missing /IN";
  std::string older = first()->uuid;
  Send("r.csv", "new", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::string newer;
  for (const TransferRecord& t : Transfers()) {
    if (t.uuid != older) newer = t.uuid;
  }
  ASSERT_NE(Read(Path("vendor", "IN", "r.csv.sftpreceipt")).find(newer), std::string::npos);

  ASSERT_EQ(rename(Path("lis", "IN.away").c_str(), Path("lis", "IN").c_str()), 0);
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_NE(Read(Path("vendor", "IN", "r.csv.sftpreceipt")).find(newer), std::string::npos);
  EXPECT_NE(Read(Path("vendor", "IN", "r.csv." + older + ".sftpreceipt")).find(older),
            std::string::npos);
  EXPECT_EQ(Read(Path("lis", "IN", "r.csv")), "old");
}

TEST_F(DeliveryTest, AReceiptNeverReplacesADeliveredFileOfItsName) {
  Route back;
  back.id = "oekonomi-flis";
  back.data_area = "oekonomi";
  back.sender = "flis";
  back.authorities = {"*"};
  back.recipients = {"vendor"};
  config_->routes.push_back(back);
  StartPipeline();
  for (const char* name : {"r.csv.sftpreceipt", "bad.csv.sftpreceipt"}) {
    Put(Path("flis", "OUT", name), "flis's data");
    Put(Path("flis", "OUT", std::string(name) + ".trigger"),
        TriggerXml(name, 11, "flis", {"vendor"}));
    pipeline_->OnFolderChange("flis", Folder::kOut, std::string(name) + ".trigger", false);
  }
  ASSERT_TRUE(WaitFinished(2));
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  Send("bad.csv", "abc", TriggerXml("bad.csv", 3, "vendor", {"nobody"}));  // 2001
  ASSERT_TRUE(WaitFinished(4));
  for (const char* name : {"r.csv", "bad.csv"}) {
    std::string delivered = std::string(name) + ".sftpreceipt";
    EXPECT_EQ(Read(Path("vendor", "IN", delivered)), "flis's data") << name;
    std::string uuid;
    for (const TransferRecord& t : Transfers()) {
      if (t.name == name) uuid = t.uuid;
    }
    ASSERT_FALSE(uuid.empty()) << name;
    std::string receipt =
        Read(Path("vendor", "IN", std::string(name) + "." + uuid + ".sftpreceipt"));
    EXPECT_NE(receipt.find(uuid), std::string::npos) << name;
  }
}

// A data file placed in the sender's /IN by a transfer whose delivery is not yet recorded (its
// link made, its commit to come) looks to the audit log like nothing delivered. Its receipt must
// not replace it: the placement's file shares the spool's inode, a receipt never does.
TEST_F(DeliveryTest, AReceiptNeverReplacesAFileBeingDeliveredUnderItsName) {
  StartPipeline();
  const std::string spooled = root_ + "/spool/being-placed";  // as PlaceData leaves it
  for (const char* name : {"r.csv.sftpreceipt", "bad.csv.sftpreceipt"}) {
    Put(spooled + name, "flis's data");
    ASSERT_EQ(link((spooled + name).c_str(), Path("vendor", "IN", name).c_str()), 0) << name;
  }
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  Send("bad.csv", "abc", TriggerXml("bad.csv", 3, "vendor", {"nobody"}));  // 2001
  ASSERT_TRUE(WaitFinished(2));
  for (const TransferRecord& t : Transfers()) {
    EXPECT_EQ(Read(Path("vendor", "IN", t.name + ".sftpreceipt")), "flis's data") << t.name;
    std::string receipt = Read(Path("vendor", "IN", t.name + "." + t.uuid + ".sftpreceipt"));
    EXPECT_NE(receipt.find(t.uuid), std::string::npos) << t.name;
  }
}

// operations.md: a recipient a reload removed can no longer log in to fetch anything, so a
// transfer waiting for it is rejected; `fordeler redeliver` to it is refused the same way.
TEST_F(DeliveryTest, RedeliveringToARemovedAccountIsRefused) {
  StartPipeline();
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  const std::string uuid = Transfers().at(0).uuid;
  auto recalled = pipeline_->Recall(uuid, "lis");
  ASSERT_TRUE(recalled.ok()) << recalled.status().message();
  auto changed = std::make_shared<Config>(*config_);
  std::erase_if(changed->accounts, [](const Account& a) { return a.id == "lis"; });
  for (Route& r : changed->routes) std::erase(r.recipients, "lis");
  pipeline_->SetConfig(changed);
  auto again = pipeline_->Redeliver(uuid, "lis");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("lis is no longer an account"), std::string::npos)
      << again.status().message();
  EXPECT_FALSE(Exists(Path("lis", "IN", "r.csv")));
  pipeline_->SetConfig(config_);  // back: it may be placed again
  again = pipeline_->Redeliver(uuid, "lis");
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_EQ(Read(Path("lis", "IN", "r.csv")), "abc");
}

TEST_F(DeliveryTest, RecoveryFinishesWhatARestartInterrupted) {
  StartPipeline();
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  pipeline_->Stop();
  pipeline_.reset();
  // A trigger left in /OUT while the daemon was down is found by the start-up rescan.
  Put(Path("vendor", "OUT", "s.csv"), "xyz");
  Put(Path("vendor", "OUT", "s.csv.trigger"), TriggerXml("s.csv", 3, "vendor", {"flis"}));
  pipeline_ = std::make_unique<DeliveryPipeline>(Env::Default(), storage_.get(), audit_.get(),
                                                 &gate_, PipelineOptions{2});
  pipeline_->SetConfig(config_);
  ASSERT_TRUE(pipeline_->Start().ok());
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "s.csv")), "xyz");
  EXPECT_EQ(Transfers().size(), 2u);
}

// The first look at a trigger finds it still open for writing, and is held until the test has
// announced the trigger a second time; later looks find it closed. That is the interleaving of
// inotify's report of the kernel's close with the SFTP session's own announcement, made just
// after the session lets go of the file.
class StillWritingGate : public testing::NoSessionsGate {
 public:
  bool IsOpenForWriting(const std::string&, const std::string& name) const override {
    if (!name.ends_with(".trigger")) return false;
    std::unique_lock<std::mutex> lock(mu_);
    if (asked_) return false;
    asked_ = true;
    changed_.notify_all();
    changed_.wait(lock, [this] { return let_go_; });
    return true;
  }
  bool WaitAsked() {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(5), [this] { return asked_; });
  }
  void LetGo() {
    std::lock_guard<std::mutex> lock(mu_);
    let_go_ = true;
    changed_.notify_all();
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  mutable bool asked_ = false;
  bool let_go_ = false;
};

TEST_F(DeliveryTest, ATriggerAnnouncedWhileItsFirstAnnouncementIsCheckedIsNotLost) {
  StartPipeline();
  pipeline_->Stop();
  StillWritingGate gate;
  pipeline_ = std::make_unique<DeliveryPipeline>(Env::Default(), storage_.get(), audit_.get(),
                                                 &gate, PipelineOptions{2});
  pipeline_->SetConfig(config_);
  ASSERT_TRUE(pipeline_->Start().ok());
  Put(Path("vendor", "OUT", "w.csv"), "abc");
  Put(Path("vendor", "OUT", "w.csv.trigger"), TriggerXml("w.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "w.csv.trigger", false);  // inotify
  // The first look finds it open for writing; meanwhile the session lets go and announces it.
  ASSERT_TRUE(gate.WaitAsked());
  pipeline_->OnUploadClosed(
      {"vendor", "w.csv.trigger", 0, 0, std::nullopt, UploadClosed::How::kClosed});
  gate.LetGo();
  bool finished = WaitFinished(1);
  pipeline_->Stop();
  pipeline_.reset();  // before the gate goes
  ASSERT_TRUE(finished) << "the second announcement was dropped";
  EXPECT_EQ(Read(Path("flis", "IN", "w.csv")), "abc");
}

// A session rewrites the data file after the pipeline checked its size and before it takes it
// (the file is closed again by the take, so the gate lets the take go on): what was taken is
// checked, and a file of another size than SizeInBytes is rejected with SIZE_MISMATCH, never
// delivered.
class RewritingGate : public testing::NoSessionsGate {
 public:
  explicit RewritingGate(std::string path) : path_(std::move(path)) {}
  bool BeginTake(const std::string&, const std::string& name) override {
    if (name == "grown.csv") {
      std::ofstream(path_, std::ios::app) << "more";
    }
    return true;
  }

 private:
  std::string path_;
};

TEST_F(DeliveryTest, ADataFileRewrittenBeforeItsTakeIsCheckedAgain) {
  StartPipeline();
  pipeline_->Stop();
  RewritingGate gate(Path("vendor", "OUT", "grown.csv"));
  pipeline_ = std::make_unique<DeliveryPipeline>(Env::Default(), storage_.get(), audit_.get(),
                                                 &gate, PipelineOptions{2});
  pipeline_->SetConfig(config_);
  ASSERT_TRUE(pipeline_->Start().ok());
  Send("grown.csv", "abc", TriggerXml("grown.csv", 3, "vendor", {"flis"}));
  bool finished = WaitFinished(1);
  pipeline_->Stop();
  pipeline_.reset();  // before the gate goes
  ASSERT_TRUE(finished);
  EXPECT_FALSE(Exists(Path("flis", "IN", "grown.csv")));
  EXPECT_NE(Read(Path("vendor", "IN", "grown.csv.sftpreceipt")).find("<ErrorCode>1005<"),
            std::string::npos);
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].state, TransferState::kRejected);
}

// The data file is removed (by another session of the sender) after the pipeline found it
// complete and recorded the transfer as accepted, just before it takes it. The trigger waits
// for a data file like any other (contract §2: until trigger_grace) and is then rejected with
// 1004; it must not fail and retry for ever.
class RemovingGate : public testing::NoSessionsGate {
 public:
  explicit RemovingGate(std::string path) : path_(std::move(path)) {}
  bool BeginTake(const std::string&, const std::string& name) override {
    if (name == "gone.csv") unlink(path_.c_str());
    return true;
  }

 private:
  std::string path_;
};

TEST_F(DeliveryTest, ADataFileRemovedJustBeforeItsTakeIsWaitedForThenRejected) {
  config_->delivery.trigger_grace = std::chrono::milliseconds(600);
  StartPipeline();
  pipeline_->Stop();
  RemovingGate gate(Path("vendor", "OUT", "gone.csv"));
  pipeline_ = std::make_unique<DeliveryPipeline>(Env::Default(), storage_.get(), audit_.get(),
                                                 &gate, PipelineOptions{2});
  pipeline_->SetConfig(config_);
  ASSERT_TRUE(pipeline_->Start().ok());
  // The trigger first: the data is taken by the `accepted` step.
  Put(Path("vendor", "OUT", "gone.csv.trigger"), TriggerXml("gone.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "gone.csv.trigger", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  Put(Path("vendor", "OUT", "gone.csv"), "abc");
  bool finished = WaitFinished(1);
  pipeline_->Stop();
  pipeline_.reset();  // before the gate goes
  ASSERT_TRUE(finished) << "the transfer never ended";
  EXPECT_FALSE(Exists(Path("flis", "IN", "gone.csv")));
  EXPECT_NE(Read(Path("vendor", "IN", "gone.csv.sftpreceipt")).find("<ErrorCode>1004<"),
            std::string::npos);
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].state, TransferState::kRejected);
  auto deliveries = audit_->DeliveriesOf(transfers[0].uuid);
  ASSERT_TRUE(deliveries.ok());
  EXPECT_TRUE(deliveries->empty());
}

// A steady clock the test moves.
class ClockEnv : public EnvWrapper {
 public:
  ClockEnv() : EnvWrapper(Env::Default()) {}
  std::chrono::steady_clock::time_point Steady() const override {
    return EnvWrapper::Steady() + skew.load();
  }
  std::atomic<std::chrono::steady_clock::duration> skew{};
};

// What the server reported about an upload is moved, not copied, when its trigger follows; but
// the facts of a data file whose trigger never came are forgotten after an hour, and that file,
// triggered later, is copied (a new inode) and still delivered intact.
TEST_F(DeliveryTest, UploadFactsWithoutATriggerAreForgottenAfterAnHour) {
  ClockEnv env;
  StartPipeline(&env);
  struct stat st;
  auto closed = [&](const std::string& name, const std::string& data) {
    Put(Path("vendor", "OUT", name), data);
    EXPECT_EQ(stat(Path("vendor", "OUT", name).c_str(), &st), 0);
    pipeline_->OnUploadClosed(
        {"vendor", name, data.size(), st.st_ino, Sha256::Of(data), UploadClosed::How::kClosed});
    return st.st_ino;
  };
  auto trigger = [&](const std::string& name, size_t size) {
    Put(Path("vendor", "OUT", name + ".trigger"), TriggerXml(name, size, "vendor", {"flis"}));
    pipeline_->OnFolderChange("vendor", Folder::kOut, name + ".trigger", false);
  };
  ino_t fresh = closed("fresh.csv", "abc");
  ino_t old = closed("old.csv", "defg");
  trigger("fresh.csv", 3);
  ASSERT_TRUE(WaitFinished(1));
  ASSERT_EQ(stat(Path("flis", "IN", "fresh.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_ino, fresh) << "a fresh upload is moved";
  env.skew = std::chrono::hours(1) + std::chrono::minutes(2);
  closed("other.csv", "x");  // the next close sweeps
  trigger("old.csv", 4);
  ASSERT_TRUE(WaitFinished(2));
  ASSERT_EQ(stat(Path("flis", "IN", "old.csv").c_str(), &st), 0);
  EXPECT_NE(st.st_ino, old) << "the forgotten upload is copied";
  EXPECT_EQ(Read(Path("flis", "IN", "old.csv")), "defg");
}

// An upload through fordeler's server over a file that another user owns in /OUT (a storage
// root shared with another server) is copied, not moved: fordelerd may not make another's file
// read-only without root's CAP_FOWNER, and a moved file kept its owner.
TEST_F(DeliveryTest, AnUploadOverAFileOfAnotherOwnerIsCopied) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to give the file another owner";
  StartPipeline();
  const std::string data = "written over";
  Put(Path("vendor", "OUT", "theirs.csv"), data);
  ASSERT_EQ(chown(Path("vendor", "OUT", "theirs.csv").c_str(), 4242, 4242), 0);
  struct stat st;
  ASSERT_EQ(stat(Path("vendor", "OUT", "theirs.csv").c_str(), &st), 0);
  const ino_t theirs = st.st_ino;
  pipeline_->OnUploadClosed({"vendor", "theirs.csv", data.size(), st.st_ino, Sha256::Of(data),
                             UploadClosed::How::kClosed});
  Put(Path("vendor", "OUT", "theirs.csv.trigger"),
      TriggerXml("theirs.csv", data.size(), "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "theirs.csv.trigger", false);
  ASSERT_TRUE(WaitFinished(1));
  ASSERT_EQ(stat(Path("flis", "IN", "theirs.csv").c_str(), &st), 0);
  EXPECT_NE(st.st_ino, theirs);
  EXPECT_EQ(st.st_uid, geteuid());
  EXPECT_EQ(st.st_mode & 07777, 0440u);
  EXPECT_EQ(Read(Path("flis", "IN", "theirs.csv")), data);
  EXPECT_FALSE(Exists(Path("vendor", "OUT", "theirs.csv")));
}

// A trigger is taken from /OUT before the transfer is first recorded, under a spool name that
// says whose it is. fordelerd stopping in between leaves such a file with no record: the next
// start adopts it (its data still in /OUT, or already in the spool) and delivers it once.
TEST_F(DeliveryTest, ATriggerTakenButNotYetRecordedIsAdoptedAtStart) {
  const std::string spool = root_ + "/spool/";
  ASSERT_EQ(std::system(("mkdir -p " + spool).c_str()), 0);
  const std::string first = NewUuid(), second = NewUuid();
  Put(Path("vendor", "OUT", "in-out.csv"), "abc");
  Put(spool + *SpooledTriggerName(first, "vendor", "in-out.csv.trigger"),
      TriggerXml("in-out.csv", 3, "vendor", {"flis"}));
  Put(spool + second, "defg");  // the data was taken too
  Put(spool + *SpooledTriggerName(second, "vendor", "in-spool.csv.trigger"),
      TriggerXml("in-spool.csv", 4, "vendor", {"flis"}));
  StartPipeline();
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_EQ(Read(Path("flis", "IN", "in-out.csv")), "abc");
  EXPECT_EQ(Read(Path("flis", "IN", "in-spool.csv")), "defg");
  EXPECT_TRUE(Exists(Path("flis", "IN", "in-spool.csv.metadata")));
  EXPECT_TRUE(Exists(Path("vendor", "IN", "in-out.csv.sftpreceipt")));
  // Both triggers gone; the data stays in the spool (linked into /IN) until retention.
  EXPECT_EQ(List(root_ + "/spool"), (std::set<std::string>{first, second}));
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 2u);
  for (const TransferRecord& t : transfers) {
    SCOPED_TRACE(t.name);
    EXPECT_TRUE(t.uuid == first || t.uuid == second);
    EXPECT_EQ(t.state, TransferState::kDelivered);
    EXPECT_EQ(t.sender, "vendor");
    EXPECT_EQ(t.trigger_name, t.name + ".trigger");
    EXPECT_EQ(t.received_at, *TimeOfUuid(t.uuid));
    std::vector<std::string> kinds;
    ASSERT_TRUE(audit_
                    ->EventsOf(t.uuid,
                               [&](const EventRecord& e) {
                                 kinds.push_back(e.kind);
                                 return true;
                               })
                    .ok());
    EXPECT_EQ(kinds, (std::vector<std::string>{"received", "delivered", "receipt_sent"}));
  }
}

TEST_F(DeliveryTest, ASpooledTriggerNameSaysWhoseTriggerItIs) {
  const std::string uuid = "017f22e2-79b0-7cc3-98c4-dc0c0c07398f";
  auto name = SpooledTriggerName(uuid, "kmd.prod-1", "løn~2026.csv.trigger");
  ASSERT_TRUE(name.has_value());
  EXPECT_EQ(*name, uuid + "~kmd.prod-1~løn~2026.csv.trigger");
  auto parsed = ParseSpooledTriggerName(*name);
  ASSERT_TRUE(parsed.has_value());
  EXPECT_EQ(parsed->uuid, uuid);
  EXPECT_EQ(parsed->sender, "kmd.prod-1");
  EXPECT_EQ(parsed->trigger_name, "løn~2026.csv.trigger");
  // 36 + 1 + 3 + 1 + 214 = 255 bytes fit; one more does not.
  EXPECT_TRUE(SpooledTriggerName(uuid, "kmd", std::string(206, 'a') + ".trigger").has_value());
  EXPECT_FALSE(SpooledTriggerName(uuid, "kmd", std::string(207, 'a') + ".trigger").has_value());
  for (const std::string& other : std::vector<std::string>{
           uuid + ".trigger", uuid, uuid + "~kmd~x.csv", uuid + "~~x.csv.trigger", uuid + "~kmd",
           "not-a-uuid-but-36-characters-long-xx~kmd~x.trigger", uuid + "~kmd~.hidden.trigger"}) {
    EXPECT_FALSE(ParseSpooledTriggerName(other).has_value()) << other;
  }
}

}  // namespace
}  // namespace fordeler
