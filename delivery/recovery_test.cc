// Recovery of a transfer that fordelerd left between the first half of its placement and the
// commit recording `spooled` (the fast path places first: StageThenCommit). Its data
// is already linked into the recipients' /IN, nothing is recorded, and start-up adopts the
// spooled trigger and examines it again (docs/architecture.md, "the take and the first round of
// the placement share one round of syncs").
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "audit/audit_store.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using testing::PipelineFixture;
using testing::RecordingEnv;
using testing::TriggerXml;

// The fixture's audit log, except that nothing is ever committed: fordelerd killed before its
// first commit. Reads go through (start-up finds nothing recorded).
class NeverCommits : public AuditStore {
 public:
  explicit NeverCommits(std::unique_ptr<AuditStore>* target) : t_(target) {}
  void Submit(Batch, Done) override {}
  Status Commit(Batch) override { return Status::Unavailable("killed"); }
  void Close() override {}
  Result<std::optional<TransferRecord>> GetTransfer(const std::string& uuid) override {
    return (*t_)->GetTransfer(uuid);
  }
  Result<std::vector<TransferRecord>> UnfinishedTransfers() override {
    return (*t_)->UnfinishedTransfers();
  }
  Status ListTransfers(const TransferFilter& filter,
                       const std::function<bool(const TransferRecord&)>& row) override {
    return (*t_)->ListTransfers(filter, row);
  }
  Result<std::vector<DeliveryRecord>> DeliveriesOf(const std::string& uuid) override {
    return (*t_)->DeliveriesOf(uuid);
  }
  Result<std::optional<DeliveryRecord>> FindDelivered(const std::string& recipient,
                                                      const std::string& name) override {
    return (*t_)->FindDelivered(recipient, name);
  }
  Result<std::vector<DeliveryRecord>> AllDelivered() override { return (*t_)->AllDelivered(); }
  Result<std::optional<DeliveryRecord>> FindPlaced(const std::string& recipient,
                                                   const std::string& name) override {
    return (*t_)->FindPlaced(recipient, name);
  }
  Result<std::optional<std::string>> FindLastReceipt(const std::string& sender,
                                                     const std::string& name) override {
    return (*t_)->FindLastReceipt(sender, name);
  }
  Status EventsOf(const std::string& uuid,
                  const std::function<bool(const EventRecord&)>& row) override {
    return (*t_)->EventsOf(uuid, row);
  }
  Result<RouteActivity> RouteActivityOf(const RouteActivityQuery& query) override {
    return (*t_)->RouteActivityOf(query);
  }
  Result<std::vector<PendingCount>> PendingDeliveries() override {
    return (*t_)->PendingDeliveries();
  }
  Result<std::optional<TimePoint>> LastLogin(const std::string& account) override {
    return (*t_)->LastLogin(account);
  }
  Result<std::optional<LastDelivery>> LastDelivered(const std::string& route_id,
                                                    const std::string& authority) override {
    return (*t_)->LastDelivered(route_id, authority);
  }
  Result<std::optional<TransferOutcome>> LastAccepted(const std::string& route_id,
                                                      const std::string& authority) override {
    return (*t_)->LastAccepted(route_id, authority);
  }
  Result<std::optional<TransferOutcome>> LatestOfSender(const std::string& sender,
                                                        const std::string& data_area,
                                                        const std::string& authority,
                                                        TimePoint since) override {
    return (*t_)->LatestOfSender(sender, data_area, authority, since);
  }
  Result<std::vector<UnfetchedDelivery>> DeliveredBetween(TimePoint from, TimePoint to) override {
    return (*t_)->DeliveredBetween(from, to);
  }
  Result<bool> AlertRecorded(const std::string& account, TimePoint since,
                             const std::string& key) override {
    return (*t_)->AlertRecorded(account, since, key);
  }
  Result<std::optional<TimePoint>> RouteWatchedSince(const std::string& key) override {
    return (*t_)->RouteWatchedSince(key);
  }
  Result<ChainHead> Head() override { return (*t_)->Head(); }
  Result<VerifyReport> Verify(const std::optional<ChainHead>& head) override {
    return (*t_)->Verify(head);
  }
  int64_t commit_count() const override { return (*t_)->commit_count(); }

 private:
  std::unique_ptr<AuditStore>* t_;
};

class RecoveryTest : public PipelineFixture {
 protected:
  // Sends `name` to the configured route and stops the pipeline once the data is linked into
  // `recipient`'s /IN as `placed`, with nothing committed.
  void SendAndDieBeforeTheFirstCommit(const std::string& name, const std::string& data,
                                      const std::string& recipient, const std::string& placed) {
    NeverCommits never(&audit_);
    StartPipeline(Env::Default(), &never);
    Send(name, data, TriggerXml(name, data.size(), "vendor", {recipient}));
    for (int i = 0; i < 2000 && !Exists(Path(recipient, "IN", placed)); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    pipeline_->Stop();  // joins the worker: the placement's first half has ended
    pipeline_.reset();
    EXPECT_TRUE(Transfers().empty());
    EXPECT_EQ(Read(Path(recipient, "IN", placed)), data);
    EXPECT_FALSE(Exists(Path(recipient, "IN", placed + ".metadata")));
  }
  // Starts fordelerd again on the same storage and audit log, with `env`.
  void Restart(Env* env) {
    pipeline_ = std::make_unique<DeliveryPipeline>(env, storage_.get(), audit_.get(), &gate_,
                                                   PipelineOptions{2});
    pipeline_->SetConfig(config_);
    ASSERT_TRUE(pipeline_->Start().ok());
  }
};

// Examined again, the transfer must not count the copy it placed itself against the recipient's
// quota: a byte quota and a file quota that the data fits, but the data twice does not.
TEST_F(RecoveryTest, ItsOwnPlacedCopyDoesNotCountAgainstTheQuotaWhenExaminedAgain) {
  config_->routes[0].recipients = {"flis", "lis"};
  SendAndDieBeforeTheFirstCommit("f.csv", "abc", "flis", "f.csv");
  SendAndDieBeforeTheFirstCommit("l.csv", "abcd", "lis", "l.csv");
  config_->accounts[1].quota_files = 1;  // flis: this one file
  config_->accounts[2].quota = 6;        // lis: 4 bytes fit, 8 do not
  Restart(Env::Default());
  ASSERT_TRUE(WaitFinished(2));
  for (const auto& [recipient, name, data] :
       {std::tuple{"flis", "f.csv", "abc"}, std::tuple{"lis", "l.csv", "abcd"}}) {
    SCOPED_TRACE(name);
    std::string receipt = Read(Path("vendor", "IN", std::string(name) + ".sftpreceipt"));
    EXPECT_NE(receipt.find("SUCCESS"), std::string::npos) << receipt;
    EXPECT_EQ(List(Path(recipient, "IN")),
              (std::set<std::string>{name, std::string(name) + ".metadata"}));
    EXPECT_EQ(Read(Path(recipient, "IN", name)), data);
  }
  for (const auto& t : Transfers()) {
    EXPECT_EQ(t.state, TransferState::kDelivered) << t.name;
    EXPECT_EQ(t.error_code, 0) << t.name;
  }
  // The quota still holds for the next transfer: flis's one file is in its /IN.
  Send("g.csv", "x", TriggerXml("g.csv", 1, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(3));
  EXPECT_NE(Read(Path("vendor", "IN", "g.csv.sftpreceipt")).find("<ErrorCode>3002</ErrorCode>"),
            std::string::npos);
}

// Examined again after the routes changed, the transfer is rejected: the copy it placed goes
// (durably, before the rejection is recorded as done), and a file of the same name that is not
// its own stays.
TEST_F(RecoveryTest, ARejectionOnReexaminationRemovesTheCopyItPlaced) {
  config_->routes[0].recipients = {"flis"};
  Put(Path("flis", "IN", "r.csv"), "older");  // another transfer's: the copy goes to r.csv.<uuid>
  // The name is known only once the uuid is: wait for any second entry in flis/IN.
  NeverCommits never(&audit_);
  StartPipeline(Env::Default(), &never);
  Send("r.csv", "abc", TriggerXml("r.csv", 3, "vendor", {"flis"}));
  for (int i = 0; i < 2000 && List(Path("flis", "IN")).size() < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pipeline_->Stop();
  pipeline_.reset();
  std::set<std::string> placed = List(Path("flis", "IN"));
  ASSERT_EQ(placed.size(), 2u);
  placed.erase("r.csv");
  const std::string copy = *placed.begin();
  ASSERT_TRUE(copy.starts_with("r.csv.")) << copy;
  const std::string uuid = copy.substr(6);
  EXPECT_EQ(Read(Path("flis", "IN", copy)), "abc");

  // And a placement into lis's /IN cut short between its link in staging and its rename.
  ASSERT_EQ(link((root_ + "/spool/" + uuid).c_str(), (root_ + "/staging/" + uuid + ".lis").c_str()),
            0);
  config_->routes.clear();  // a reload removed the route: NO_ROUTE
  RecordingEnv env(root_);
  Restart(&env);
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"r.csv"}));
  EXPECT_EQ(Read(Path("flis", "IN", "r.csv")), "older");
  std::string receipt = Read(Path("vendor", "IN", "r.csv.sftpreceipt"));
  EXPECT_NE(receipt.find("<ErrorCode>2002</ErrorCode>"), std::string::npos) << receipt;
  EXPECT_EQ(Read(root_ + "/quarantine/" + uuid + "/r.csv"), "abc");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/quarantine/" + uuid + "/r.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 1u) << "a link to the data is left somewhere";
  EXPECT_FALSE(Exists(root_ + "/staging/" + uuid + ".lis"));
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].uuid, uuid);
  EXPECT_EQ(transfers[0].state, TransferState::kRejected);

  // The copy is removed and its folder synced before the data moves to quarantine, and so
  // before the commit that records the rejection done.
  std::vector<std::string> ops = env.ops();
  auto at = [&](const std::string& op) { return std::find(ops.begin(), ops.end(), op); };
  auto unlink = at("unlink:flis/IN");
  ASSERT_NE(unlink, ops.end()) << "the placed copy was not removed";
  auto synced = std::find_if(unlink, ops.end(), [](const std::string& op) {
    return op.starts_with("fsyncs:") && op.find("flis/IN") != std::string::npos;
  });
  auto quarantined = std::find(unlink, ops.end(), std::string("rename:quarantine/<uuid>"));
  auto done = at("commit:done");
  ASSERT_NE(synced, ops.end()) << "flis/IN not synced after the removal";
  ASSERT_NE(done, ops.end());
  EXPECT_LT(synced, quarantined);
  EXPECT_LT(quarantined, done);
  EXPECT_EQ(std::count(ops.begin(), ops.end(), std::string("unlink:flis/IN")), 1);
}

// Examined again after the route lost a recipient, the transfer is delivered to the route's
// recipients now: the copy it placed for the former one goes (durably, before the commit), so
// that no data file without metadata is left in that /IN for good.
TEST_F(RecoveryTest, ARecipientTheRouteNoLongerNamesLosesTheCopyPlacedBeforeTheStop) {
  config_->routes[0].recipients = {"flis", "lis"};
  NeverCommits never(&audit_);
  StartPipeline(Env::Default(), &never);
  Send("c.csv", "abc", TriggerXml("c.csv", 3, "vendor", {"ROUTING_V1_0_0"}));
  for (int i = 0;
       i < 2000 && !(Exists(Path("flis", "IN", "c.csv")) && Exists(Path("lis", "IN", "c.csv")));
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  pipeline_->Stop();
  pipeline_.reset();
  ASSERT_TRUE(Transfers().empty());
  ASSERT_EQ(Read(Path("lis", "IN", "c.csv")), "abc");  // placed, no metadata yet
  ASSERT_FALSE(Exists(Path("lis", "IN", "c.csv.metadata")));

  config_->routes[0].recipients = {"flis"};  // a reload meanwhile
  RecordingEnv env(root_);
  Restart(&env);
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(List(Path("lis", "IN")), std::set<std::string>{});
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"c.csv", "c.csv.metadata"}));
  EXPECT_EQ(Read(Path("flis", "IN", "c.csv")), "abc");
  auto transfers = Transfers();
  ASSERT_EQ(transfers.size(), 1u);
  EXPECT_EQ(transfers[0].state, TransferState::kDelivered);
  auto deliveries = audit_->DeliveriesOf(transfers[0].uuid);
  ASSERT_TRUE(deliveries.ok());
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ((*deliveries)[0].recipient, "flis");
  struct stat st;
  ASSERT_EQ(stat((root_ + "/spool/" + transfers[0].uuid).c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u) << "spool and flis only";

  std::vector<std::string> ops = env.ops();
  auto unlink = std::find(ops.begin(), ops.end(), std::string("unlink:lis/IN"));
  ASSERT_NE(unlink, ops.end()) << "the copy in lis/IN was not removed";
  auto synced = std::find_if(unlink, ops.end(), [](const std::string& op) {
    return op.starts_with("fsyncs:") && op.find("lis/IN") != std::string::npos;
  });
  auto committed = std::find_if(ops.begin(), ops.end(),
                                [](const std::string& op) { return op.starts_with("commit:"); });
  ASSERT_NE(synced, ops.end()) << "lis/IN not synced after the removal";
  ASSERT_NE(committed, ops.end());
  EXPECT_LT(synced, committed);
}

}  // namespace
}  // namespace fordeler
