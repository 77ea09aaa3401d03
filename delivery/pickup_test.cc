// Pickups (contract §5: fetching is removing) that race the commit recording the delivery, and
// `retried` events (contract §10) of fordeler's own failures retried by back-off or by the
// operator.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "delivery/file_ops.h"
#include "delivery/pipeline.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using testing::Eventually;
using testing::PipelineFixture;
using testing::TriggerXml;

// Runs `before_end` when the transfer's spooled trigger is removed: after its metadata was
// renamed into /IN, just before the commit that records the delivery (EndTransfer).
class BeforeTheEndEnv : public EnvWrapper {
 public:
  BeforeTheEndEnv() : EnvWrapper(Env::Default()) {}
  Status UnlinkAt(int dir, const std::string& name) override {
    if (name.ends_with(".trigger") && before_end) {
      before_end();
      before_end = nullptr;
    }
    return EnvWrapper::UnlinkAt(dir, name);
  }
  std::function<void()> before_end;
};

class PickupTest : public PipelineFixture {
 protected:
  std::vector<std::string> Kinds(const std::string& uuid) {
    std::vector<std::string> kinds;
    audit_->EventsOf(uuid, [&](const EventRecord& e) {
      kinds.push_back(e.kind);
      return true;
    });
    return kinds;
  }
  // Waits (bounded) until the transfer's first delivery is in `state`.
  bool WaitDeliveryState(const std::string& uuid, DeliveryState state) {
    for (int i = 0; i < 2000; ++i) {
      auto d = audit_->DeliveriesOf(uuid);
      if (d.ok() && !d->empty() && d->front().state == state) return true;
      std::this_thread::sleep_for(milliseconds(5));
    }
    return false;
  }
};

TEST_F(PickupTest, AFileRemovedBeforeItsDeliveryIsRecordedIsStillAPickupRecordedOnce) {
  config_->routes[0].recipients = {"flis"};
  BeforeTheEndEnv env;
  StartPipeline(&env);
  std::atomic<bool> saw_metadata{false};
  env.before_end = [&] {
    // The recipient sees the metadata, fetches and removes the data; the server reports it, and
    // the report is looked at before the delivery is recorded.
    saw_metadata = Exists(Path("flis", "IN", "p.csv.metadata"));
    ASSERT_EQ(unlink(Path("flis", "IN", "p.csv").c_str()), 0);
    pipeline_->OnFolderChange("flis", Folder::kIn, "p.csv", true);
    std::this_thread::sleep_for(milliseconds(200));
  };
  Send("p.csv", "abc", TriggerXml("p.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_TRUE(saw_metadata);
  const std::string uuid = Transfers().at(0).uuid;
  EXPECT_TRUE(WaitDeliveryState(uuid, DeliveryState::kPickedUp));
  // inotify's report of the same removal, arriving after the commit: not a second pickup.
  pipeline_->OnFolderChange("flis", Folder::kIn, "p.csv", true);
  std::this_thread::sleep_for(milliseconds(200));
  auto kinds = Kinds(uuid);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 1);
  auto d = audit_->DeliveriesOf(uuid);
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(d->front().picked_up_at.has_value());
}

TEST_F(PickupTest, AReportedRemovalIsRecordedOnceHoweverOftenItIsReported) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("q.csv", "abc", TriggerXml("q.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  ASSERT_EQ(unlink(Path("flis", "IN", "q.csv").c_str()), 0);
  for (int i = 0; i < 5; ++i) {  // the server and inotify, each maybe more than once
    pipeline_->OnFolderChange("flis", Folder::kIn, "q.csv", true);
  }
  const std::string uuid = Transfers().at(0).uuid;
  EXPECT_TRUE(WaitDeliveryState(uuid, DeliveryState::kPickedUp));
  std::this_thread::sleep_for(milliseconds(200));
  auto kinds = Kinds(uuid);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 1);
}

// Runs `after_done` on the audit writer once the commit ending a transfer is durable, before
// anything else is committed (CommitThen: CrashPoint "after_done").
class AfterTheEndEnv : public BeforeTheEndEnv {
 public:
  void CrashPoint(std::string_view name) override {
    if (name == "after_done" && after_done) {
      after_done();
      after_done = nullptr;
    }
  }
  std::function<void()> after_done;
};

// The file was fetched before the delivery's commit, and the server's report of the removal is
// looked at right after it: the report finds the delivery `delivered`, and so does the look at
// each delivery after the commit (RecordPickupsMeanwhile). Both record the pickup, each requiring
// the delivery still `delivered`: exactly one of them commits.
TEST_F(PickupTest, AReportRacingTheLookAfterTheCommitIsRecordedOnce) {
  config_->routes[0].recipients = {"flis"};
  AfterTheEndEnv env;
  StartPipeline(&env);
  env.before_end = [&] { ASSERT_EQ(unlink(Path("flis", "IN", "r.csv").c_str()), 0); };
  env.after_done = [&] {
    // The audit writer waits here, so the report's lookup sees the delivery `delivered` and its
    // batch queues behind this commit, as does RecordPickupsMeanwhile's.
    pipeline_->OnFolderChange("flis", Folder::kIn, "r.csv", true);
    std::this_thread::sleep_for(milliseconds(300));
  };
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  const std::string uuid = Transfers().at(0).uuid;
  EXPECT_TRUE(WaitDeliveryState(uuid, DeliveryState::kPickedUp));
  std::this_thread::sleep_for(milliseconds(200));
  auto kinds = Kinds(uuid);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 1);
}

// The recipient fetches IN/s.csv; the server's report is recorded. The same name is sent again
// at once and placed as IN/s.csv (the name is free). A late second report of the first
// removal (inotify's) must not record the new delivery, whose file is still there, as picked up.
TEST_F(PickupTest, ALateReportOfAnOlderRemovalIsNoPickupOfANewerFileOfThatName) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  Send("s.csv", "abc", TriggerXml("s.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  const std::string first = Transfers().at(0).uuid;
  ASSERT_EQ(unlink(Path("flis", "IN", "s.csv").c_str()), 0);
  ASSERT_EQ(unlink(Path("flis", "IN", "s.csv.metadata").c_str()), 0);
  pipeline_->OnFolderChange("flis", Folder::kIn, "s.csv", true);
  ASSERT_TRUE(WaitDeliveryState(first, DeliveryState::kPickedUp));
  Send("s.csv", "defg", TriggerXml("s.csv", 4, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(2));
  const std::string second = Transfers().at(0).uuid;
  ASSERT_NE(second, first);
  ASSERT_EQ(Read(Path("flis", "IN", "s.csv")), "defg");
  pipeline_->OnFolderChange("flis", Folder::kIn, "s.csv", true);  // the late report
  std::this_thread::sleep_for(milliseconds(200));
  auto d = audit_->DeliveriesOf(second);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 1u);
  EXPECT_EQ(d->front().state, DeliveryState::kDelivered);
  auto kinds = Kinds(second);
  EXPECT_EQ(std::count(kinds.begin(), kinds.end(), "picked_up"), 0);
}

TEST_F(PickupTest, AFileStillWaitingAfterTheCommitIsNoPickup) {
  StartPipeline();
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis", "lis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::this_thread::sleep_for(milliseconds(100));
  auto d = audit_->DeliveriesOf(Transfers().at(0).uuid);
  ASSERT_TRUE(d.ok());
  ASSERT_EQ(d->size(), 2u);
  for (const auto& one : *d) EXPECT_EQ(one.state, DeliveryState::kDelivered) << one.recipient;
}

std::vector<std::string> Details(AuditStore& audit, const std::string& uuid,
                                 const std::string& kind) {
  std::vector<std::string> details;
  audit.EventsOf(uuid, [&](const EventRecord& e) {
    if (e.kind == kind) details.push_back(e.detail);
    return true;
  });
  return details;
}

// Pickups nobody reported (fordelerd stopped, a crash, an inotify overflow) are found by the
// rescan, at start and hourly (RecordPickupsUnseen).
class UnseenPickupTest : public PickupTest {
 protected:
  // Stops fordelerd and starts it again on the same storage and audit log.
  void Restart() {
    pipeline_->Stop();
    pipeline_ = std::make_unique<DeliveryPipeline>(Env::Default(), storage_.get(), audit_.get(),
                                                   &gate_, PipelineOptions{2});
    pipeline_->SetConfig(config_);
    ASSERT_TRUE(pipeline_->Start().ok());
  }
  std::optional<DeliveryState> StateOf(const std::string& uuid, const std::string& recipient) {
    auto all = audit_->DeliveriesOf(uuid);
    if (!all.ok()) return std::nullopt;
    for (const DeliveryRecord& d : *all) {
      if (d.recipient == recipient) return d.state;
    }
    return std::nullopt;
  }
  bool WaitState(const std::string& uuid, const std::string& recipient, DeliveryState state) {
    return Eventually([&] { return StateOf(uuid, recipient) == state; });
  }
  // Sends `name` to the route's recipients and waits until its transfer is done.
  std::string Deliver(const std::string& name) {
    Send(name, "abc", TriggerXml(name, 3, "vendor", config_->routes[0].recipients));
    EXPECT_TRUE(Eventually([&] {
      for (const TransferRecord& t : Transfers()) {
        if (t.name == name && t.step == TransferStep::kDone) return true;
      }
      return false;
    }));
    for (const TransferRecord& t : Transfers()) {
      if (t.name == name) return t.uuid;
    }
    return "";
  }
};

TEST_F(UnseenPickupTest, AFileRemovedWhileStoppedIsRecordedAtStartOnce) {
  StartPipeline();
  const std::string uuid = Deliver("p.csv");
  ASSERT_TRUE(WaitState(uuid, "flis", DeliveryState::kDelivered));
  pipeline_->Stop();
  ASSERT_EQ(unlink(Path("flis", "IN", "p.csv").c_str()), 0);  // nobody hears of it
  Restart();
  ASSERT_TRUE(WaitState(uuid, "flis", DeliveryState::kPickedUp));
  EXPECT_EQ(StateOf(uuid, "lis"), DeliveryState::kDelivered);  // its file is still there
  // The hourly rescan, and inotify's or the server's late report, record nothing more.
  pipeline_->Rescan();
  pipeline_->OnFolderChange("flis", Folder::kIn, "p.csv", true);
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(Details(*audit_, uuid, "picked_up"),
            std::vector<std::string>{"name=p.csv note=\"found by a rescan\""});
  auto d = audit_->DeliveriesOf(uuid);
  ASSERT_TRUE(d.ok());
  for (const DeliveryRecord& one : *d) {
    EXPECT_EQ(one.picked_up_at.has_value(), one.recipient == "flis") << one.recipient;
  }
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

// While fordelerd runs, a removal whose report was lost (inotify dropped events, the server's
// report died with a crash) is found by the hourly rescan; so is a name that now holds another
// file (removed, and something else put there by other means).
TEST_F(UnseenPickupTest, TheRescanFindsAnUnreportedRemovalAndANameTakenByAnotherFile) {
  config_->routes[0].recipients = {"flis"};
  StartPipeline();
  const std::string gone = Deliver("g.csv");
  const std::string other = Deliver("o.csv");
  ASSERT_TRUE(WaitState(other, "flis", DeliveryState::kDelivered));
  ASSERT_EQ(unlink(Path("flis", "IN", "g.csv").c_str()), 0);
  ASSERT_EQ(unlink(Path("flis", "IN", "o.csv").c_str()), 0);
  Put(Path("flis", "IN", "o.csv"), "abc");  // same content, another file
  std::this_thread::sleep_for(milliseconds(100));
  ASSERT_EQ(StateOf(gone, "flis"), DeliveryState::kDelivered);  // nothing reported
  pipeline_->Rescan();
  EXPECT_TRUE(WaitState(gone, "flis", DeliveryState::kPickedUp));
  EXPECT_TRUE(WaitState(other, "flis", DeliveryState::kPickedUp));
}

// A recipient's /IN moved away (or removed) is nobody's pickup (docs/operations.md): its
// deliveries stay `delivered` while the folder is missing, and also once a new /IN is made there,
// which holds none of them.
TEST_F(UnseenPickupTest, DeliveriesInAFolderMovedAwayOrReplacedAreNoPickups) {
  StartPipeline();
  const std::string uuid = Deliver("m.csv");
  ASSERT_TRUE(WaitState(uuid, "lis", DeliveryState::kDelivered));
  pipeline_->Stop();
  ASSERT_EQ(rename(Path("flis", "IN").c_str(), Path("flis", "IN.old").c_str()), 0);
  ASSERT_EQ(unlink(Path("lis", "IN", "m.csv").c_str()), 0);  // lis did fetch its copy
  Restart();
  ASSERT_TRUE(WaitState(uuid, "lis", DeliveryState::kPickedUp));  // the rescan has run
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(StateOf(uuid, "flis"), DeliveryState::kDelivered) << "/IN missing";

  ASSERT_EQ(mkdir(Path("flis", "IN").c_str(), 0750), 0);  // made again, empty
  UniqueFd in(open(Path("flis", "IN").c_str(), O_RDONLY | O_DIRECTORY));
  if (!BirthTimeOf(in.get())) GTEST_SKIP() << "this file system keeps no birth times";
  pipeline_->Rescan();
  std::this_thread::sleep_for(milliseconds(200));
  EXPECT_EQ(StateOf(uuid, "flis"), DeliveryState::kDelivered) << "/IN made after the delivery";
}

// Renaming metadata into /IN fails (EIO) while `failing`: the `spooled` step fails and is
// retried with back-off (100 ms, 200 ms, 400 ms, 800 ms, ...).
class FailingRevealEnv : public EnvWrapper {
 public:
  FailingRevealEnv() : EnvWrapper(Env::Default()) {}
  Status RenameAt(int from_dir, const std::string& from, int to_dir, const std::string& to,
                  bool no_replace) override {
    if (failing && to.ends_with(".metadata")) {
      ++failures;
      return Status::FromErrno(EIO, "rename " + to);
    }
    return EnvWrapper::RenameAt(from_dir, from, to_dir, to, no_replace);
  }
  std::atomic<bool> failing{true};
  std::atomic<int> failures{0};
};

TEST_F(PickupTest, AStepThatGoesThroughAfterBackOffIsRecordedAsRetried) {
  FailingRevealEnv env;
  StartPipeline(&env);
  Send("f.csv", "abc", TriggerXml("f.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(Eventually([&] { return env.failures >= 2; }));
  env.failing = false;
  ASSERT_TRUE(WaitFinished(1));
  const std::string uuid = Transfers().at(0).uuid;
  auto kinds = Kinds(uuid);
  EXPECT_EQ(kinds, (std::vector<std::string>{"received", "failed", "retried", "delivered",
                                             "receipt_sent"}));
  auto retried = Details(*audit_, uuid, "retried");
  ASSERT_EQ(retried.size(), 1u);
  EXPECT_EQ(retried[0], "by=backoff attempts=" + std::to_string(env.failures.load()));
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

TEST_F(PickupTest, AnOperatorsRetryIsRecordedAndRunsTheStepAtOnce) {
  FailingRevealEnv env;
  StartPipeline(&env);
  Send("o.csv", "abc", TriggerXml("o.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(Eventually([&] { return env.failures >= 6; }));
  env.failing = false;
  const std::string uuid = Transfers().at(0).uuid;
  // Retry wakes a transfer waiting out its back-off (now 3.2 s); while an attempt still runs it
  // has nothing to wake and records nothing, so try until it is recorded (before it returns).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  std::vector<std::string> retried;
  while (retried.empty() && std::chrono::steady_clock::now() < deadline) {
    auto woken = pipeline_->Retry(uuid);
    ASSERT_TRUE(woken.ok());
    EXPECT_NE(*woken, DeliveryPipeline::Retried::kWaitingForData) << "it failed";
    retried = Details(*audit_, uuid, "retried");
    EXPECT_EQ(*woken == DeliveryPipeline::Retried::kWoken, !retried.empty())
        << "recorded exactly when it woke the transfer";
    if (retried.empty()) std::this_thread::sleep_for(milliseconds(10));
  }
  ASSERT_FALSE(retried.empty());
  EXPECT_EQ(retried[0], "by=operator step=spooled");
  ASSERT_TRUE(WaitFinished(1, milliseconds(2000)));  // not after the 3.2 s wait
  auto kinds = Kinds(uuid);
  EXPECT_EQ(kinds, (std::vector<std::string>{"received", "failed", "retried", "retried",
                                             "delivered", "receipt_sent"}));
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

// A transfer waiting for its data file has not failed: `fordeler retry` has nothing to retry,
// looks at it again and records nothing; the data coming later is delivered as usual.
TEST_F(PickupTest, ARetryOfATransferWaitingForItsDataRecordsNothing) {
  StartPipeline();
  Put(Path("vendor", "OUT", "w.csv.trigger"), TriggerXml("w.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "w.csv.trigger", false);
  ASSERT_TRUE(Eventually([&] { return !Transfers().empty(); }));
  const std::string uuid = Transfers().at(0).uuid;
  std::optional<DeliveryPipeline::Retried> outcome;
  ASSERT_TRUE(Eventually([&] {  // not while its step runs
    auto r = pipeline_->Retry(uuid);
    if (r.ok()) outcome = *r;
    return r.ok() && *r != DeliveryPipeline::Retried::kRunning;
  }));
  EXPECT_EQ(outcome, DeliveryPipeline::Retried::kWaitingForData);
  PutWhole(Path("vendor", "OUT", "w.csv"), "abc");
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "w.csv")), "abc");
  EXPECT_TRUE(Details(*audit_, uuid, "retried").empty());
}

// Stop does not wait out a back-off: the pool's join would otherwise wait for every pending
// timer (up to 60 s, as long as systemd's TimeoutStopSec). The transfer resumes at the next start.
TEST_F(PickupTest, StopDoesNotWaitOutABackOff) {
  FailingRevealEnv env;
  StartPipeline(&env);
  Send("w.csv", "abc", TriggerXml("w.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(Eventually([&] { return env.failures >= 6; }));  // now waits 3.2 s
  auto stopped = std::async(std::launch::async, [this] { pipeline_->Stop(); });
  EXPECT_EQ(stopped.wait_for(std::chrono::seconds(2)), std::future_status::ready)
      << "Stop waited for the back-off's timer";
  stopped.wait();
  EXPECT_EQ(env.failures.load(), 6);  // no attempt ran while stopping
  EXPECT_EQ(pipeline_->finished(), 0);
}

// Unlinking the revealed mark, the last file work after a transfer's final commit, waits until
// `released`.
class HeldAfterTheEndEnv : public EnvWrapper {
 public:
  HeldAfterTheEndEnv() : EnvWrapper(Env::Default()) {}
  Status UnlinkAt(int dir, const std::string& name) override {
    if (name.ends_with(".revealed")) {
      Eventually([&] { return released.load(); });
    }
    return EnvWrapper::UnlinkAt(dir, name);
  }
  std::atomic<bool> released{false};
};

// An operator's command for a transfer whose end is committed but whose last file work is still
// running waits for it (`fordeler show` already says done) instead of refusing.
TEST_F(PickupTest, AnOperatorActionRightAfterTheEndWaitsForItsFileWork) {
  HeldAfterTheEndEnv env;
  StartPipeline(&env);
  // The pipeline must not outlive `env`, even when an assertion returns early.
  std::shared_ptr<void> stop_first(nullptr, [&](void*) {
    env.released = true;
    pipeline_->Stop();
  });
  Send("e.csv", "abc", TriggerXml("e.csv", 3, "vendor", {"flis"}));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while ((Transfers().empty() || Transfers()[0].step != TransferStep::kDone) &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(milliseconds(5));
  }
  ASSERT_EQ(Transfers().at(0).step, TransferStep::kDone);
  EXPECT_EQ(pipeline_->finished(), 0);  // held in its file work
  auto release = std::async(std::launch::async, [&env] {
    std::this_thread::sleep_for(milliseconds(100));
    env.released = true;
  });
  auto recalled = pipeline_->Recall(Transfers()[0].uuid, "");
  ASSERT_TRUE(recalled.ok()) << recalled.status().message();
  ASSERT_EQ(recalled->size(), 1u);
  EXPECT_EQ((*recalled)[0].recipient, "flis");
  EXPECT_EQ(pipeline_->finished(), 1);
}

}  // namespace
}  // namespace fordeler
