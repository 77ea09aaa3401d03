#include "delivery/retention.h"

#include <gtest/gtest.h>

#include "delivery/pipeline_testing.h"

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

class RetentionTest : public PipelineFixture {
 protected:
  SweepReport SweepAt(std::chrono::system_clock::duration ahead) {
    LaterEnv later(ahead);
    RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
    sweeper.SetConfig(config_);
    return sweeper.Sweep();
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

TEST_F(RetentionTest, WarnsOnceBeforeUnfetchedDataExpires) {
  StartPipeline();
  Send("w.csv", "abc", TriggerXml("w.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  LaterEnv later(hours(24 * 28));  // retention 30 d, warning 3 d before
  RetentionSweeper sweeper(&later, storage_.get(), audit_.get());
  sweeper.SetConfig(config_);
  EXPECT_EQ(sweeper.Sweep().warnings, 1);
  EXPECT_EQ(sweeper.Sweep().warnings, 0);  // once
  EXPECT_TRUE(Exists(Path("flis", "IN", "w.csv")));
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

}  // namespace
}  // namespace fordeler
