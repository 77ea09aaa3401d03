// The pipeline when an operator removes, moves away or replaces spool, staging or quarantine
// while it runs (docs/operations.md, "spool/, staging/ or quarantine/ removed or replaced"): the
// transfers wait with 5001 naming the folder, and go on by themselves, without a restart, once
// it is back; nothing is written into a folder moved away; a transfer whose data was lost with
// its spool ends with a final 5001 and a receipt instead of waiting for ever.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>

#include "delivery/pipeline_testing.h"
#include "delivery/storage.h"

namespace fordeler {
namespace {

using testing::Eventually;
using testing::PipelineFixture;
using testing::TriggerXml;

class OwnFoldersTest : public PipelineFixture {
 protected:
  void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  std::string At(const std::string& rel) const { return root_ + "/" + rel; }
  ino_t Inode(const std::string& path) const {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  // Waits until the only transfer fails with 5001 at `step`; returns it.
  TransferRecord WaitFailing(TransferStep step) {
    TransferRecord found;
    EXPECT_TRUE(Eventually([&] {
      auto all = Transfers();
      if (all.size() != 1 || all[0].error_code != 5001 || all[0].step != step) return false;
      found = all[0];
      return true;
    })) << "no transfer failing at "
        << ToString(step);
    return found;
  }
  // The details of the transfer's `failed` events.
  std::string FailedDetails(const std::string& uuid) {
    std::string details;
    EXPECT_TRUE(audit_
                    ->EventsOf(uuid,
                               [&](const EventRecord& e) {
                                 if (e.kind == "failed") details += e.detail + "\n";
                                 return true;
                               })
                    .ok());
    return details;
  }
  std::string Send1(const std::string& name, const std::string& data) {
    Send(name, data, TriggerXml(name, data.size(), "vendor", {"flis", "lis"}));
    return data;
  }
};

TEST_F(OwnFoldersTest, SpoolMovedAwayAndMadeAgainIsUsedWithoutARestart) {
  StartPipeline();
  Run("rm -r " + Path("flis", "IN"));  // the first transfer waits at `spooled`, data in the spool
  std::string data = Send1("a.csv", "first\n");
  TransferRecord waiting = WaitFailing(TransferStep::kSpooled);

  Run("mv " + At("spool") + " " + At("spool.old") + " && mkdir -m 0750 " + At("spool"));
  // What fordelerd's folder watch does at once (the pipeline's own check comes within a second).
  ASSERT_TRUE(pipeline_->FollowStorage(/*make_missing=*/false).ok());
  const std::set<std::string> old = List(At("spool.old"));
  ASSERT_TRUE(old.count(waiting.uuid)) << "the data was not in the spool";
  Run("mkdir -m 0750 " + Path("flis", "IN"));
  ASSERT_TRUE(WaitFinished(1));
  // Its data, left in the folder moved away, was linked into the new spool and delivered.
  EXPECT_EQ(Read(Path("flis", "IN", "a.csv")), data);
  EXPECT_EQ(Inode(Path("flis", "IN", "a.csv")), Inode(At("spool.old/" + waiting.uuid)));
  EXPECT_EQ(Inode(At("spool/" + waiting.uuid)), Inode(At("spool.old/" + waiting.uuid)));

  // A new transfer is spooled in the new folder, and nothing is written into the old one.
  std::string later = Send1("b.csv", "second\n");
  ASSERT_TRUE(WaitFinished(2));
  EXPECT_EQ(Read(Path("flis", "IN", "b.csv")), later);
  auto all = Transfers();
  ASSERT_EQ(all.size(), 2u);
  for (const auto& t : all) {
    EXPECT_EQ(t.state, TransferState::kDelivered) << t.uuid;
    EXPECT_EQ(Inode(At("spool/" + t.uuid)), Inode(Path("lis", "IN", t.name))) << t.name;
  }
  EXPECT_EQ(List(At("spool.old")), old);
}

TEST_F(OwnFoldersTest, DataLostWithARemovedSpoolEndsInAFinalInternalErrorWithAReceipt) {
  StartPipeline();
  Run("rm -r " + Path("flis", "IN"));
  Send1("lost.csv", "lost\n");
  TransferRecord waiting = WaitFailing(TransferStep::kSpooled);
  Run("rm -r " + At("spool") + " && mkdir -m 0750 " + At("spool") + " " + Path("flis", "IN"));
  ASSERT_TRUE(WaitFinished(1)) << "a transfer whose data is gone must not wait for ever";

  auto all = Transfers();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].state, TransferState::kRejected);
  EXPECT_EQ(all[0].error_code, 5001);
  EXPECT_NE(all[0].error_description.find("lost the data file"), std::string::npos)
      << all[0].error_description;
  std::string receipt = Read(Path("vendor", "IN", "lost.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>5001</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find(waiting.uuid), std::string::npos) << receipt;
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_TRUE(List(Path("lis", "IN")).empty());  // all or nothing: lis never got it either
  auto deliveries = audit_->DeliveriesOf(waiting.uuid);
  ASSERT_TRUE(deliveries.ok());
  EXPECT_TRUE(deliveries->empty());
  // The operator sees it as fordeler's failure (`failed`), not only as a rejection.
  std::set<std::string> kinds;
  ASSERT_TRUE(audit_
                  ->EventsOf(waiting.uuid,
                             [&](const EventRecord& e) {
                               kinds.insert(e.kind);
                               return true;
                             })
                  .ok());
  EXPECT_TRUE(kinds.count("failed") && kinds.count("rejected")) << kinds.size();
}

TEST_F(OwnFoldersTest, DataLostAfterItsMetadataMayHaveBeenRevealedIsNotEndedButWaits) {
  StartPipeline();
  Run("rm -r " + Path("flis", "IN"));
  Send1("maybe.csv", "maybe\n");
  TransferRecord waiting = WaitFailing(TransferStep::kSpooled);
  // The mark of a Reveal cut short (a failed sync, a stop): recipients may have the file.
  Run("touch " + At("staging/" + RevealedMarkName(waiting.uuid)));
  Run("rm -r " + At("spool") + " && mkdir -m 0750 " + At("spool") + " " + Path("flis", "IN"));
  // The spool's return wakes it at once; it tries again at 0.1 s, 0.2 s, ... and stays unended
  // (the log says why: "fordeler cannot tell which recipients have the file").
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  EXPECT_EQ(pipeline_->finished(), 0);
  EXPECT_EQ(Transfers()[0].step, TransferStep::kSpooled);
  EXPECT_FALSE(Exists(Path("vendor", "IN", "maybe.csv.sftpreceipt")));
}

TEST_F(OwnFoldersTest, StagingRemovedWaitsNamingItAndGoesOnOnceMadeAgain) {
  StartPipeline();
  Run("rm -r " + At("staging"));
  std::string data = Send1("s.csv", "staged\n");
  TransferRecord waiting = WaitFailing(TransferStep::kSpooled);
  EXPECT_NE(waiting.error_description.find("the storage folder staging"), std::string::npos)
      << waiting.error_description;
  Run("mkdir -m 0750 " + At("staging"));
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "s.csv")), data);
  EXPECT_EQ(Read(Path("lis", "IN", "s.csv")), data);
  EXPECT_EQ(Transfers()[0].state, TransferState::kDelivered);
}

TEST_F(OwnFoldersTest, QuarantineReplacedByASymlinkIsRefusedAndAReloadMakesItAgain) {
  StartPipeline();
  Run("mkdir " + At("elsewhere") + " && rm -r " + At("quarantine") + " && ln -s elsewhere " +
      At("quarantine"));
  Send("q.csv", "abc", TriggerXml("q.csv", 3, "vendor", {"nobody"}));  // rejected: 2001
  TransferRecord waiting;
  ASSERT_TRUE(Eventually([&] {  // a rejection keeps its code while it is retried
    auto all = Transfers();
    if (all.size() != 1 || all[0].step != TransferStep::kRejecting) return false;
    waiting = all[0];
    return FailedDetails(waiting.uuid).find("the storage folder quarantine") != std::string::npos;
  })) << (waiting.uuid.empty() ? "" : FailedDetails(waiting.uuid));
  Status still = pipeline_->FollowStorage(/*make_missing=*/true);  // never removes the symlink
  EXPECT_NE(still.message().find("quarantine"), std::string::npos) << still.message();
  Run("rm " + At("quarantine"));
  EXPECT_TRUE(pipeline_->FollowStorage(/*make_missing=*/true).ok());
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(List(At("quarantine/" + waiting.uuid)),
            (std::set<std::string>{"q.csv", "q.csv.trigger", "receipt.xml"}));
  EXPECT_TRUE(List(At("elsewhere")).empty());
  std::string receipt = Read(Path("vendor", "IN", "q.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>2001</ErrorCode>"), std::string::npos) << receipt;
}

TEST_F(OwnFoldersTest, OperatorActionsNameAStorageFolderThatIsGone) {
  StartPipeline();
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"nobody"}));  // rejected, quarantined
  ASSERT_TRUE(WaitFinished(1));
  Send1("d.csv", "data\n");
  ASSERT_TRUE(WaitFinished(2));
  std::string rejected, delivered;
  for (const auto& t : Transfers()) (t.name == "r.csv" ? rejected : delivered) = t.uuid;
  Run("rm " + Path("flis", "IN", "d.csv.metadata") + " " + Path("flis", "IN", "d.csv"));
  pipeline_->OnFolderChange("flis", Folder::kIn, "d.csv", /*removed=*/true);
  ASSERT_TRUE(Eventually([&] {
    auto deliveries = audit_->DeliveriesOf(delivered);
    return deliveries.ok() && deliveries->size() == 2 &&
           std::any_of(deliveries->begin(), deliveries->end(), [](const DeliveryRecord& d) {
             return d.recipient == "flis" && d.state == DeliveryState::kPickedUp;
           });
  }));

  Run("rm -r " + At("quarantine") + " " + At("spool") + " " + At("staging"));
  ASSERT_FALSE(pipeline_->FollowStorage(/*make_missing=*/false).ok());
  auto purged = pipeline_->PurgeQuarantined(rejected);
  ASSERT_FALSE(purged.ok());
  EXPECT_NE(purged.status().message().find("the storage folder quarantine was removed"),
            std::string::npos)
      << purged.status().message();
  auto released = pipeline_->ReleaseQuarantined(rejected);
  ASSERT_FALSE(released.ok());
  EXPECT_NE(released.status().message().find("the storage folder quarantine"), std::string::npos)
      << released.status().message();
  auto again = pipeline_->Redeliver(delivered, "flis");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("the storage folder spool was removed"),
            std::string::npos)
      << again.status().message();

  // Made again (a reload): the spool is empty, so the data is no longer there to redeliver.
  ASSERT_TRUE(pipeline_->FollowStorage(/*make_missing=*/true).ok());
  again = pipeline_->Redeliver(delivered, "flis");
  ASSERT_FALSE(again.ok());
  EXPECT_NE(again.status().message().find("no longer in the spool"), std::string::npos)
      << again.status().message();
}

}  // namespace
}  // namespace fordeler
