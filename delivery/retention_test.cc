#include "delivery/retention.h"

#include <gtest/gtest.h>

#include "core/uuid.h"
#include "delivery/pipeline_testing.h"
#include "delivery/storage.h"

namespace fordeler {
namespace {

using std::chrono::hours;
using testing::PipelineFixture;
using testing::TriggerXml;

// The real system, with the clock moved forward: ctimes cannot be set, so time travels instead.
class LaterEnv : public EnvWrapper {
 public:
  explicit LaterEnv(std::chrono::system_clock::duration ahead)
      : EnvWrapper(Env::Default()), ahead_(ahead) {}
  std::chrono::system_clock::time_point Now() const override { return EnvWrapper::Now() + ahead_; }

 private:
  std::chrono::system_clock::duration ahead_;
};

// LaterEnv that also reports each removal in /IN as the folder watcher would (inotify), and can
// make one removal fail or let a recipient fetch the data just before it.
class WatchedEnv : public LaterEnv {
 public:
  using LaterEnv::LaterEnv;
  Status UnlinkAt(int dir, const std::string& name) override {
    if (name == fetched_before) {
      unlinkat(dir, fetched_before.substr(0, fetched_before.size() - 9).c_str(), 0);
      fetched_before.clear();
    }
    if (dir == failing_in && name == failing) return Status::FromErrno(EIO, "unlink " + name);
    Status s = LaterEnv::UnlinkAt(dir, name);
    if (s.ok() && on_removed) on_removed(name);
    return s;
  }
  std::function<void(const std::string&)> on_removed;
  int failing_in = -1;
  std::string failing;         // this removal in failing_in fails with EIO
  std::string fetched_before;  // "<x>.metadata": the recipient removes <x> just before it
};

class RetentionTest : public PipelineFixture {
 protected:
  SweepReport SweepAt(std::chrono::system_clock::duration ahead) {
    LaterEnv later(ahead);
    RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
    sweeper.SetConfig(config_);
    return sweeper.Sweep();
  }
  DeliveryState StateOf(const std::string& recipient) {
    auto d = audit_->DeliveriesOf(Transfers().at(0).uuid);
    EXPECT_TRUE(d.ok());
    for (const auto& one : *d) {
      if (one.recipient == recipient) return one.state;
    }
    ADD_FAILURE() << "no delivery to " << recipient;
    return DeliveryState::kPending;
  }
  std::vector<std::string> EventKinds() {
    std::vector<std::string> kinds;
    for (const auto& t : Transfers()) {
      audit_->EventsOf(t.uuid, [&](const EventRecord& e) {
        kinds.push_back(e.kind);
        return true;
      });
    }
    return kinds;
  }
};

TEST_F(RetentionTest, NothingYoungIsTouched) {
  StartPipeline();
  Send("a.csv", "abc", TriggerXml("a.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  Put(Path("vendor", "OUT", "untriggered.csv"), "x");
  SweepReport r = SweepAt(hours(0));
  EXPECT_EQ(r.expired_out + r.expired_deliveries + r.expired_receipts + r.removed_spool, 0);
  EXPECT_TRUE(Exists(Path("flis", "IN", "a.csv")));
  EXPECT_TRUE(Exists(Path("vendor", "OUT", "untriggered.csv")));
}

// Stands in for fordelerd's Alerter (monitor/alerter.h): keeps each alert and, as the Alerter
// does, records the audit event `alert` whose detail starts with the alert's key.
class RecordingAlerts : public AlertSink {
 public:
  explicit RecordingAlerts(AuditStore* audit) : audit_(audit) {}
  void Raise(Alert alert) override {
    Batch batch;
    batch.AddEvent("alert", alert.transfer, alert.account, alert.key + " note=test");
    EXPECT_TRUE(audit_->Commit(std::move(batch)).ok());
    raised.push_back(std::move(alert));
  }
  std::vector<Alert> raised;

 private:
  AuditStore* audit_;
};

TEST_F(RetentionTest, WarnsOnceBeforeUnfetchedDataExpiresAlsoAcrossARestart) {
  StartPipeline();
  Send("w.csv", "abc", TriggerXml("w.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  const TransferRecord t = Transfers().at(0);
  RecordingAlerts alerts(audit_.get());
  LaterEnv later(hours(24 * 28));  // retention 30 d, warning 3 d before
  {
    RetentionSweeper sweeper(&later, storage_.get(), audit_.get(), &alerts);
    sweeper.SetConfig(config_);
    EXPECT_EQ(sweeper.Sweep().warnings, 1);
    EXPECT_EQ(sweeper.Sweep().warnings, 0);  // once
  }
  ASSERT_EQ(alerts.raised.size(), 1u);
  const Alert& a = alerts.raised[0];
  EXPECT_EQ(a.kind, "retention_warning");
  EXPECT_EQ(a.recipient, "flis");
  EXPECT_EQ(a.account, "flis");
  EXPECT_EQ(a.transfer, t.uuid);
  EXPECT_EQ(a.file, "w.csv");
  EXPECT_EQ(a.sender, "vendor");
  EXPECT_EQ(a.route, "oekonomi-vendor");
  auto d = audit_->DeliveriesOf(t.uuid);
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(a.due && d->at(0).delivered_at);
  EXPECT_EQ(*a.due, *d->at(0).delivered_at + config_->delivery.retention);  // when it expires
  EXPECT_NE(a.message.find("w.csv"), std::string::npos);

  RetentionSweeper restarted(&later, storage_.get(), audit_.get(), &alerts);  // a new daemon
  restarted.SetConfig(config_);
  EXPECT_EQ(restarted.Sweep().warnings, 0);
  EXPECT_EQ(alerts.raised.size(), 1u);
  EXPECT_TRUE(Exists(Path("flis", "IN", "w.csv")));
}

// A stop between a transfer's last commit and the removal of its "revealed" mark leaves the mark
// behind: the sweep removes it once the transfer is done, and only then.
TEST_F(RetentionTest, RemovesTheRevealedMarkOfAFinishedTransfer) {
  StartPipeline();
  Send("m.csv", "abc", TriggerXml("m.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::string done = Transfers().at(0).uuid;
  std::string unknown = NewUuid();  // no record: it may be a transfer still to be adopted
  Put(root_ + "/staging/" + RevealedMarkName(done), "");
  Put(root_ + "/staging/" + RevealedMarkName(unknown), "");
  Put(root_ + "/staging/notes.revealed", "");  // not a mark
  SweepAt(hours(1));
  EXPECT_EQ(List(root_ + "/staging"),
            (std::set<std::string>{RevealedMarkName(unknown), "notes.revealed"}));
}

TEST_F(RetentionTest, ExpiresUnfetchedDeliveriesReceiptsLeftoversAndQuarantine) {
  StartPipeline();
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis"}));
  Send("bad.csv", "abc", TriggerXml("bad.csv", 3, "vendor", {"nobody"}));
  ASSERT_TRUE(WaitFinished(2));
  Put(Path("vendor", "OUT", "never-triggered.csv"), "x");
  for (const auto& t : Transfers()) {  // a spooled trigger left behind by a failed removal
    if (t.state == TransferState::kDelivered) Put(root_ + "/spool/" + t.uuid + ".trigger", "<x/>");
  }
  SweepReport r = SweepAt(hours(24 * 31));
  EXPECT_EQ(r.expired_deliveries, 1);
  EXPECT_EQ(r.expired_out, 1);
  EXPECT_EQ(r.expired_receipts, 2);  // the two receipts in the vendor's IN
  EXPECT_EQ(r.expired_quarantine, 1);
  EXPECT_EQ(r.removed_spool, 2);  // the delivered transfer's data and its leftover trigger
  EXPECT_TRUE(List(root_ + "/spool").empty());
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_TRUE(List(Path("vendor", "IN")).empty());
  EXPECT_TRUE(List(Path("vendor", "OUT")).empty());
  EXPECT_TRUE(List(root_ + "/quarantine").empty());
  for (const auto& t : Transfers()) {
    if (t.state != TransferState::kDelivered) continue;
    auto d = audit_->DeliveriesOf(t.uuid);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->size(), 1u);
    EXPECT_EQ(d->front().state, DeliveryState::kExpired);
  }
  auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "expired"), 2);  // delivery + quarantine
}

// fordelerd's stop does not wait for a sweep of a large /IN: Stop() ends the sweep after the file
// at hand, what it removed is recorded, and the next sweep does the rest.
TEST_F(RetentionTest, AStopEndsASweepBetweenTwoFilesAndTheNextSweepDoesTheRest) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  for (const char* name : {"a.csv", "b.csv", "c.csv"}) Put(Path("flis", "OUT", name), "x");
  WatchedEnv later(hours(24 * 31));
  {
    RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
    sweeper.SetConfig(config_);
    later.on_removed = [&](const std::string&) { sweeper.Stop(); };  // at the first removal
    SweepReport r = sweeper.Sweep();
    EXPECT_TRUE(r.stopped_early);
    EXPECT_EQ(r.expired_out, 1);
    EXPECT_EQ(r.expired_deliveries, 0);  // flis's /IN comes after its /OUT
    EXPECT_EQ(List(Path("flis", "OUT")).size(), 2u);
    EXPECT_EQ(StateOf("flis"), DeliveryState::kDelivered);
  }
  later.on_removed = nullptr;
  RetentionSweeper next(&later, storage_.get(), audit_.get());
  next.SetConfig(config_);
  SweepReport r = next.Sweep();
  EXPECT_FALSE(r.stopped_early);
  EXPECT_EQ(r.expired_out, 2);
  EXPECT_EQ(r.expired_deliveries, 1);
  EXPECT_TRUE(List(Path("flis", "OUT")).empty());
  EXPECT_EQ(StateOf("flis"), DeliveryState::kExpired);
}

// A reload removed the recipient: nobody can fetch its files any more, and they must not stay
// for ever. Its folders are swept by the same rules as those of configured accounts.
TEST_F(RetentionTest, TheFoldersOfAnAccountAReloadRemovedExpireToo) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  Put(Path("flis", "OUT", "left.csv"), "x");
  auto without = std::make_shared<Config>(*config_);
  std::erase_if(without->accounts, [](const Account& a) { return a.id == "flis"; });
  without->routes.clear();
  LaterEnv later(hours(24 * 31));
  RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
  sweeper.SetConfig(without);
  SweepReport r = sweeper.Sweep();
  EXPECT_EQ(r.expired_deliveries, 1);
  EXPECT_EQ(r.expired_out, 1);
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_TRUE(List(Path("flis", "OUT")).empty());
  EXPECT_EQ(StateOf("flis"), DeliveryState::kExpired);
}

TEST_F(RetentionTest, ExpiryIsNeverTakenForAPickup) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  WatchedEnv later(hours(24 * 31));
  later.on_removed = [&](const std::string& name) {  // inotify reports the sweep's removal
    pipeline_->OnFolderChange("flis", Folder::kIn, name, true);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  };
  RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
  sweeper.SetConfig(config_);
  EXPECT_EQ(sweeper.Sweep().expired_deliveries, 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(StateOf("flis"), DeliveryState::kExpired);
  auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 0);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "expired"), 1);
}

TEST_F(RetentionTest, AFetchDuringTheExpiryIsAPickupAndAFailedRemovalIsTriedAgain) {
  StartPipeline();
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  WatchedEnv later(hours(24 * 31));
  RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
  sweeper.SetConfig(config_);
  later.fetched_before = "old.csv.metadata";  // flis's comes first (accounts in config order)
  later.failing_in = *storage_->InOf("lis");
  later.failing = "old.csv";
  sweeper.Sweep();
  EXPECT_EQ(StateOf("flis"), DeliveryState::kPickedUp);
  EXPECT_EQ(StateOf("lis"), DeliveryState::kDelivered);  // still there: not expired
  EXPECT_TRUE(Exists(Path("lis", "IN", "old.csv")));
  later.failing.clear();
  EXPECT_EQ(sweeper.Sweep().expired_deliveries, 1);
  EXPECT_EQ(StateOf("lis"), DeliveryState::kExpired);
  EXPECT_FALSE(Exists(Path("lis", "IN", "old.csv")));
  auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "expire_failed"), 1);
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

// A <name> may end in ".metadata" or ".sftpreceipt" (contract §2). Delivered and not fetched,
// such files are warned about and expire as deliveries (never removed as "orphan metadata" or
// receipts, which the watcher would then report as a pickup); real metadata and receipts keep
// their treatment.
TEST_F(RetentionTest, DataNamedLikeMetadataOrAReceiptExpiresAsADelivery) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("report.metadata", "abcd", TriggerXml("report.metadata", 4, "vendor", {"flis"}));
  Send("x.sftpreceipt", "xyz", TriggerXml("x.sftpreceipt", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(2));
  ASSERT_EQ(List(Path("flis", "IN")),
            (std::set<std::string>{"report.metadata", "report.metadata.metadata", "x.sftpreceipt",
                                   "x.sftpreceipt.metadata"}));
  Put(Path("flis", "IN", "fetched.csv.metadata"), "<m/>");  // real metadata, its data gone
  Put(Path("flis", "IN", "lone.csv"), "?");                 // a leftover with no record

  EXPECT_EQ(SweepAt(hours(24 * 28)).warnings, 2);  // both: 2 days before they expire
  WatchedEnv later(hours(24 * 31));
  later.on_removed = [&](const std::string& name) {  // inotify reports the sweep's removals
    pipeline_->OnFolderChange("flis", Folder::kIn, name, true);
  };
  RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
  sweeper.SetConfig(config_);
  SweepReport r = sweeper.Sweep();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_EQ(r.expired_deliveries, 2);
  EXPECT_EQ(r.expired_receipts, 4);  // 2 receipts in the vendor's IN, the metadata, the leftover
  EXPECT_TRUE(List(Path("flis", "IN")).empty());
  EXPECT_TRUE(List(Path("vendor", "IN")).empty());
  for (const auto& t : Transfers()) {
    auto d = audit_->DeliveriesOf(t.uuid);
    ASSERT_TRUE(d.ok());
    ASSERT_EQ(d->size(), 1u);
    EXPECT_EQ(d->front().state, DeliveryState::kExpired) << t.name;
  }
  auto kinds = EventKinds();
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 0);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "expired"), 2);
}

// A leftover "x" expires with its metadata "x.metadata", but not when "x.metadata" is itself a
// delivered data file.
TEST_F(RetentionTest, ALeftoversMetadataIsRemovedOnlyWhenItIsNoDelivery) {
  config_->routes[0].recipients = {"flis"};
  LaterEnv ahead(hours(24 * 2));
  StartPipeline(&ahead);  // delivered (by the audit log) two days after the leftover's ctime
  Send("r.metadata", "abcd", TriggerXml("r.metadata", 4, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  Put(Path("flis", "IN", "r"), "leftover");
  SweepAt(hours(24 * 31));  // the leftover has expired; the delivery expires a day later
  EXPECT_FALSE(Exists(Path("flis", "IN", "r")));
  EXPECT_EQ(Read(Path("flis", "IN", "r.metadata")), "abcd");
  EXPECT_EQ(StateOf("flis"), DeliveryState::kDelivered);
  pipeline_->Stop();  // before `ahead` goes
}

// Metadata goes only once its data is gone: while the data file is in /IN (its delivery not yet
// expired), its metadata stays, however old the metadata file's own ctime.
TEST_F(RetentionTest, MetadataStaysWhileItsDataIsThere) {
  config_->routes[0].recipients = {"flis"};
  LaterEnv ahead(hours(24 * 2));
  StartPipeline(&ahead);  // delivered (by the audit log) two days after the files' ctimes
  Send("m.csv", "abc", TriggerXml("m.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  SweepAt(hours(24 * 31));  // the ctimes are past retention; the delivery expires a day later
  EXPECT_EQ(Read(Path("flis", "IN", "m.csv")), "abc");
  EXPECT_TRUE(Exists(Path("flis", "IN", "m.csv.metadata")));
  EXPECT_EQ(StateOf("flis"), DeliveryState::kDelivered);
  pipeline_->Stop();  // before `ahead` goes
}

// The copies of all recipients and the spool file are one inode: one recipient's pickup changes
// the ctime of the others' copies. Their age is the delivery's, from the audit log.
TEST_F(RetentionTest, AnotherRecipientsPickupDoesNotRestartTheClock) {
  LaterEnv month_ago(-hours(24 * 31));
  StartPipeline(&month_ago);  // delivered 31 days ago (by the audit log)
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  ASSERT_EQ(unlink(Path("flis", "IN", "old.csv").c_str()), 0);  // flis fetches it today
  SweepReport r = SweepAt(hours(0));
  EXPECT_EQ(r.expired_deliveries, 1);
  EXPECT_EQ(StateOf("lis"), DeliveryState::kExpired);
  EXPECT_FALSE(Exists(Path("lis", "IN", "old.csv")));
}

// The spool copy is kept for `fordeler redeliver` until its transfer is older than retention.
// It is the recipients' inode too, so their pickups today make its ctime today: its age is the
// transfer's, from the audit log.
TEST_F(RetentionTest, TheSpoolCopyIsAgedByItsTransferNotByPickups) {
  LaterEnv month_ago(-hours(24 * 31));
  StartPipeline(&month_ago);  // received 31 days ago (by the audit log)
  Send("old.csv", "abc", TriggerXml("old.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  const std::string spooled = root_ + "/spool/" + Transfers().at(0).uuid;
  ASSERT_TRUE(Exists(spooled));
  ASSERT_EQ(unlink(Path("flis", "IN", "old.csv").c_str()), 0);  // fetched today
  ASSERT_EQ(unlink(Path("lis", "IN", "old.csv").c_str()), 0);
  SweepReport r = SweepAt(hours(0));
  EXPECT_EQ(r.removed_spool, 1);
  EXPECT_FALSE(Exists(spooled));
}

}  // namespace
}  // namespace fordeler
