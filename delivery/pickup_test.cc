// Pickups (contract §5: fetching is removing) that race the commit recording the delivery, and
// `retried` events (contract §10) of fordeler's own failures retried by back-off or by the
// operator.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>

#include "delivery/pipeline.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
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
    for (int i = 0; i < 400; ++i) {
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

std::vector<std::string> Details(AuditStore& audit, const std::string& uuid,
                                 const std::string& kind) {
  std::vector<std::string> details;
  audit.EventsOf(uuid, [&](const EventRecord& e) {
    if (e.kind == kind) details.push_back(e.detail);
    return true;
  });
  return details;
}

TEST_F(PickupTest, AStepThatGoesThroughAfterBackOffIsRecordedAsRetried) {
  FailingRevealEnv env;
  StartPipeline(&env);
  Send("f.csv", "abc", TriggerXml("f.csv", 3, "vendor", {"flis"}));
  while (env.failures < 2) std::this_thread::sleep_for(milliseconds(5));
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
  while (env.failures < 4) std::this_thread::sleep_for(milliseconds(5));
  std::this_thread::sleep_for(milliseconds(50));  // now in its 800 ms wait
  env.failing = false;
  const std::string uuid = Transfers().at(0).uuid;
  ASSERT_TRUE(pipeline_->Retry(uuid).ok());
  EXPECT_EQ(Details(*audit_, uuid, "retried"),
            std::vector<std::string>{"by=operator step=spooled"});  // recorded before it returns
  ASSERT_TRUE(WaitFinished(1, milliseconds(500)));                  // not after the wait
  auto kinds = Kinds(uuid);
  EXPECT_EQ(kinds, (std::vector<std::string>{"received", "failed", "retried", "retried",
                                             "delivered", "receipt_sent"}));
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

}  // namespace
}  // namespace fordeler
