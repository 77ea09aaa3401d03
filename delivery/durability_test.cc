// The delivery state machine's order of operations and its behaviour under injected faults,
// through the Env seam. A SIGKILL leaves the page cache intact and so cannot show a missing
// fsync; recording the order of write, fsync, rename, directory fsync and commit can.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include "core/names.h"
#include "core/sha256.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using testing::PipelineFixture;
using testing::RecordingEnv;
using testing::TriggerXml;

class DurabilityTest : public PipelineFixture {
 protected:
  // The uuid of the first transfer recorded with code 5001 (fordeler's own failure), waiting up
  // to 10 s; empty if none.
  std::string WaitForInternalError() {
    for (int i = 0; i < 2000; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      for (const auto& t : Transfers()) {
        if (t.error_code == 5001) return t.uuid;
      }
    }
    return "";
  }
};

TEST_F(DurabilityTest, EveryStepIsDurableBeforeItsCommitAndCommittedBeforeTheNext) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Send("d.csv", "abc", TriggerXml("d.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> expected = {
      // the trigger leaves /OUT for the spool under a name that says whose it is (nothing is
      // recorded yet: start-up would adopt it); the data is complete, so it follows at once
      "rename:spool",
      // the data file (put in /OUT by other means) is copied and hashed, then removed from /OUT
      "write:file",
      "fsync:file",
      "rename:spool",
      "fsync-dir:spool",
      "unlink:vendor/OUT",
      // data linked into staging and renamed into /IN; metadata and receipt written to temp files
      "link:staging",
      "rename:flis/IN",
      "write:file",
      "write:file",
      // one round of syncs makes the trigger's and the data's moves, the spooled data itself,
      // the data's name in /IN and both temp files durable before any of it is recorded
      "fsyncs:spool,vendor/OUT,file,flis/IN,file,file",
      // the first commit records the transfer as received and `spooled`, with its deliveries
      "commit:spooled",
      // the metadata and the receipt appear, synced with staging, which now holds the mark that
      // they have (RevealedMarkName)
      "rename:flis/IN",
      "rename:vendor/IN",
      "fsyncs:staging,flis/IN,vendor/IN",
      // the spooled trigger goes, and one commit records the placement, the receipt and the end
      "unlink:spool",
      "commit:done",
      // the mark is no longer needed
      "unlink:staging",
  };
  EXPECT_EQ(env.ops(), expected);
}

// What a transfer costs until its metadata is visible, in the common case: the data uploaded
// through fordeler's own server (its digest known), then the trigger. Two renames into the spool,
// the data linked into /IN and the metadata written, one round of syncs for all of it (both
// folders, the data file, /IN and the temp file), one commit, then the metadata renamed in.
TEST_F(DurabilityTest, AnUploadThroughTheServerIsMovedWithOneSyncPerFolder) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Put(Path("vendor", "OUT", "s.csv"), "abc");
  struct stat st;
  ASSERT_EQ(stat(Path("vendor", "OUT", "s.csv").c_str(), &st), 0);
  pipeline_->OnUploadClosed(
      {"vendor", "s.csv", 3, st.st_ino, Sha256::Of("abc"), UploadClosed::How::kClosed});
  Put(Path("vendor", "OUT", "s.csv.trigger"), TriggerXml("s.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "s.csv.trigger", false);
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> ops = env.ops();
  ops.resize(std::min<size_t>(ops.size(), 10));
  EXPECT_EQ(ops, (std::vector<std::string>{
                     "rename:spool", "rename:spool", "link:staging", "rename:flis/IN", "write:file",
                     "write:file", "fsyncs:spool,vendor/OUT,file,flis/IN,file,file",
                     "commit:spooled", "rename:flis/IN", "rename:vendor/IN"}));
  EXPECT_EQ(Read(Path("flis", "IN", "s.csv")), "abc");
}

// A trigger whose spool name could not also hold its sender and name (255 bytes) is recorded as
// `received` before it is taken, so that a crash cannot leave it unrecorded in the spool.
TEST_F(DurabilityTest, ANameTooLongToSpoolWithItsOriginIsRecordedBeforeItIsTaken) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  const std::string name = std::string(kMaxNameBytes - 4, 'n') + ".csv";
  Send(name, "abc", TriggerXml(name, 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> ops = env.ops();
  ASSERT_GE(ops.size(), 2u);
  EXPECT_EQ(ops[0], "commit:received");
  EXPECT_EQ(ops[1], "rename:spool");
  EXPECT_EQ(Read(Path("flis", "IN", name)), "abc");
  EXPECT_EQ(List(root_ + "/spool").count(name), 0u);
}

// The `spooled` commit waits for the round of syncs that makes what it records durable, and the
// metadata for that commit, however long the placement's links or the commit take.
TEST_F(DurabilityTest, TheSpooledCommitWaitsForItsSyncsAndTheMetadataForTheCommit) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  const std::pair<const char*, std::atomic<int>*> cases[] = {
      {"slow-link.csv", &env.slow_link_ms}, {"slow-commit.csv", &env.slow_commit_ms}};
  int sent = 0;
  for (const auto& [name, slow] : cases) {
    SCOPED_TRACE(name);
    *slow = 100;
    Send(name, "abc", TriggerXml(name, 3, "vendor", {"flis"}));
    ASSERT_TRUE(WaitFinished(++sent));
    *slow = 0;
    std::vector<std::string> ops = env.ops();
    env.Clear();
    auto at = [&](const char* op) {
      return static_cast<size_t>(std::find(ops.begin(), ops.end(), op) - ops.begin());
    };
    const auto synced = at("fsyncs:spool,vendor/OUT,file,flis/IN,file,file");
    const auto committed = at("commit:spooled");
    const auto revealed = at("fsyncs:staging,flis/IN,vendor/IN");
    ASSERT_LT(revealed, ops.size());
    EXPECT_EQ(committed, synced + 1);
    // between the commit and the round that reveals: the metadata's and the receipt's renames
    EXPECT_EQ(std::vector<std::string>(ops.begin() + static_cast<std::ptrdiff_t>(committed) + 1,
                                       ops.begin() + static_cast<std::ptrdiff_t>(revealed)),
              (std::vector<std::string>{"rename:flis/IN", "rename:vendor/IN"}));
    EXPECT_EQ(Read(Path("flis", "IN", name)), "abc");
    EXPECT_TRUE(Exists(Path("flis", "IN", std::string(name) + ".metadata")));
  }
  for (const auto& t : Transfers()) EXPECT_EQ(t.state, TransferState::kDelivered) << t.name;
}

// The slow path: a trigger whose data is not there yet is recorded as trigger_taken, waits, and
// takes the data in a step of its own.
TEST_F(DurabilityTest, ATriggerBeforeItsDataWaitsInTriggerTaken) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Put(Path("vendor", "OUT", "late.csv.trigger"), TriggerXml("late.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "late.csv.trigger", false);
  bool waiting = false;
  for (int i = 0; i < 2000 && !waiting; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& t : Transfers()) waiting |= t.step == TransferStep::kTriggerTaken;
  }
  ASSERT_TRUE(waiting) << "the transfer did not wait in trigger_taken";
  PutWhole(Path("vendor", "OUT", "late.csv"), "abc");
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> ops = env.ops();
  std::vector<std::string> until_spooled(
      ops.begin(), std::find(ops.begin(), ops.end(), std::string("commit:spooled")) + 1);
  EXPECT_EQ(until_spooled,
            (std::vector<std::string>{
                "rename:spool", "fsyncs:spool,vendor/OUT", "commit:trigger_taken",
                "commit:accepted", "write:file", "fsync:file", "rename:spool", "fsync-dir:spool",
                "unlink:vendor/OUT", "link:staging", "rename:flis/IN", "write:file", "write:file",
                "fsyncs:spool,vendor/OUT,file,flis/IN,file,file", "commit:spooled"}));
  EXPECT_EQ(Read(Path("flis", "IN", "late.csv")), "abc");
}

TEST_F(DurabilityTest, AnUnwritableRecipientFolderIsRetriedUntilItWorks) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("lis/IN");
  Send("u.csv", "abc", TriggerXml("u.csv", 3, "vendor", {"flis", "lis"}));
  // The transfer keeps failing (code 5001, visible to the operator) without finishing...
  std::string uuid = WaitForInternalError();
  ASSERT_FALSE(uuid.empty()) << "no 5001 recorded while the folder was unwritable";
  EXPECT_EQ(pipeline_->finished(), 0);
  EXPECT_FALSE(Exists(Path("lis", "IN", "u.csv")));
  // ...and completes once the fault is gone, delivering exactly once to each recipient.
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(1, std::chrono::seconds(15)));
  EXPECT_EQ(Read(Path("lis", "IN", "u.csv")), "abc");
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"u.csv", "u.csv.metadata"}));
  auto t = audit_->GetTransfer(uuid);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->state, TransferState::kDelivered);
  EXPECT_EQ((*t)->error_code, 0);
}

// When the sender's receipt cannot be written, the placements are recorded on their own
// (`placed`) before anything is retried, so that the recipients' files stay accounted for; the
// receipt follows once the folder is writable again.
TEST_F(DurabilityTest, AReceiptThatFailsLeavesThePlacementRecorded) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  env.FailRenamesInto("vendor/IN");
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  std::string uuid = WaitForInternalError();
  ASSERT_FALSE(uuid.empty()) << "no 5001 recorded while the sender's IN was unwritable";
  auto t = audit_->GetTransfer(uuid);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->step, TransferStep::kPlaced);
  EXPECT_EQ((*t)->state, TransferState::kDelivered);
  EXPECT_EQ(Read(Path("flis", "IN", "r.csv")), "abc");
  EXPECT_FALSE(Exists(Path("vendor", "IN", "r.csv.sftpreceipt")));
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(1, std::chrono::seconds(15)));
  EXPECT_TRUE(Exists(Path("vendor", "IN", "r.csv.sftpreceipt")));
  t = audit_->GetTransfer(uuid);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->step, TransferStep::kDone);
  EXPECT_EQ((*t)->error_code, 0);
  std::vector<std::string> ops = env.ops();
  auto placed = std::find(ops.begin(), ops.end(), std::string("commit:placed"));
  ASSERT_NE(placed, ops.end());
  EXPECT_EQ(std::count(placed, ops.end(), std::string("commit:done")), 1);
}

// A rejection whose receipt cannot be written yet keeps its own code: the receipt that
// eventually arrives says 1005, not fordeler's passing 5001.
TEST_F(DurabilityTest, ARejectionKeepsItsCodeThroughAFailedReceipt) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("vendor/IN");
  Send("w.csv", "abc", TriggerXml("w.csv", 4, "vendor", {"flis"}));  // 4: a size mismatch
  bool failed = false;
  for (int i = 0; i < 2000 && !failed; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& op : env.ops()) failed |= op == "rename:vendor/IN";
  }
  ASSERT_TRUE(failed) << "the receipt was never attempted";
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(1, std::chrono::seconds(15)));
  std::vector<TransferRecord> all = Transfers();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].error_code, 1005);
  EXPECT_NE(Read(Path("vendor", "IN", "w.csv.sftpreceipt")).find("1005"), std::string::npos);
}

TEST_F(DurabilityTest, OtherSendersContinueWhileOneTransferFails) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("lis/IN");
  Send("stuck.csv", "abc", TriggerXml("stuck.csv", 3, "vendor", {"lis"}));
  Send("fine.csv", "xyz", TriggerXml("fine.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "fine.csv")), "xyz");
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(2, std::chrono::seconds(15)));
}

// While a step keeps failing, the operator sees the error of now: a failure with another cause
// than the last is recorded again (`failed`, and the transfer's description), one with the same
// cause is not.
TEST_F(DurabilityTest, AFailureWithAnotherCauseIsRecordedAgain) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("lis/IN");
  Send("c.csv", "abc", TriggerXml("c.csv", 3, "vendor", {"flis", "lis"}));
  std::string uuid = WaitForInternalError();
  ASSERT_FALSE(uuid.empty());
  auto description = [&] {
    auto t = audit_->GetTransfer(uuid);
    return t.ok() && t->has_value() ? (*t)->error_description : std::string();
  };
  EXPECT_NE(description().find("lis/IN"), std::string::npos) << description();
  std::this_thread::sleep_for(std::chrono::milliseconds(400));  // a few more attempts alike
  // Same step, another cause: flis's data is in (placed before lis failed), its metadata fails.
  env.FailRenamesInto("flis/IN");
  for (int i = 0; i < 400 && description().find("flis/IN") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(description().find("flis/IN"), std::string::npos) << description();
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(1, std::chrono::seconds(15)));
  std::vector<std::string> failed;
  audit_->EventsOf(uuid, [&](const EventRecord& e) {
    if (e.kind == "failed") failed.push_back(e.detail);
    return true;
  });
  ASSERT_EQ(failed.size(), 2u) << ::testing::PrintToString(failed);
  EXPECT_NE(failed[0].find("lis/IN"), std::string::npos) << failed[0];
  EXPECT_NE(failed[1].find("flis/IN"), std::string::npos) << failed[1];
}

// A transfer that passed the quota check holds its room until it is placed: another transfer
// examined meanwhile finds that room taken, so that the two cannot together pass the quota
// (contract §7, 3002). Here the first waits (its placement failing) while the second comes.
TEST_F(DurabilityTest, RoomPromisedToATransferNotYetPlacedCountsAgainstTheQuota) {
  RecordingEnv env(root_);
  config_->accounts[1].quota_files = 1;  // flis
  config_->accounts[2].quota = 5;        // lis: 5 bytes
  StartPipeline(&env);
  env.FailRenamesInto("flis/IN");
  Send("first.csv", "abc", TriggerXml("first.csv", 3, "vendor", {"flis", "lis"}));
  std::string first = WaitForInternalError();
  ASSERT_FALSE(first.empty()) << "the first transfer's placement never failed";
  Send("second.csv", "x", TriggerXml("second.csv", 1, "vendor", {"flis"}));  // a second file
  Send("third.csv", "xyz", TriggerXml("third.csv", 3, "vendor", {"lis"}));   // 3 + 3 > 5
  ASSERT_TRUE(WaitFinished(2));
  for (const char* name : {"second.csv", "third.csv"}) {
    std::string receipt = Read(Path("vendor", "IN", std::string(name) + ".sftpreceipt"));
    EXPECT_NE(receipt.find("<ErrorCode>3002</ErrorCode>"), std::string::npos) << name;
    EXPECT_NE(receipt.find("being placed"), std::string::npos) << receipt;
  }
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(3, std::chrono::seconds(15)));
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"first.csv", "first.csv.metadata"}));
  EXPECT_EQ(List(Path("lis", "IN")), (std::set<std::string>{"first.csv", "first.csv.metadata"}));
  // Placed, the file itself holds the room: the promise is given back, not counted twice.
  ASSERT_EQ(unlink(Path("lis", "IN", "first.csv").c_str()), 0);
  Send("fourth.csv", "abcde", TriggerXml("fourth.csv", 5, "vendor", {"lis"}));
  ASSERT_TRUE(WaitFinished(4));
  EXPECT_EQ(Read(Path("lis", "IN", "fourth.csv")), "abcde");
}

// After a restart, a transfer accepted before it holds its room again until it is placed:
// recovery does not check the quota again, so without the hold a file sent meanwhile would pass.
TEST_F(DurabilityTest, RoomOfATransferAcceptedBeforeARestartIsHeldAgain) {
  RecordingEnv env(root_);
  config_->accounts[1].quota_files = 1;  // flis
  StartPipeline(&env);
  env.FailRenamesInto("flis/IN");
  Send("first.csv", "abc", TriggerXml("first.csv", 3, "vendor", {"flis"}));
  ASSERT_FALSE(WaitForInternalError().empty()) << "the first transfer's placement never failed";
  pipeline_->Stop();  // and started again, its placement still failing
  pipeline_ = std::make_unique<DeliveryPipeline>(&env, storage_.get(), audit_.get(), &gate_,
                                                 PipelineOptions{2});
  pipeline_->SetConfig(config_);
  ASSERT_TRUE(pipeline_->Start().ok());
  Send("second.csv", "x", TriggerXml("second.csv", 1, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1)) << "the second transfer was not refused";
  std::string receipt = Read(Path("vendor", "IN", "second.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>3002</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_NE(receipt.find("1 of them a transfer being placed"), std::string::npos) << receipt;
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(2, std::chrono::seconds(15)));
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"first.csv", "first.csv.metadata"}));
}

}  // namespace
}  // namespace fordeler
