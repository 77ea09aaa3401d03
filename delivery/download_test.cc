// Downloads of files in /IN (contract §10: who read a transfer's files is part of its record): the
// server's report is recorded as `downloaded` with the transfer whose data, metadata or receipt
// was read, and without one when no transfer is known for the file.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "delivery/pipeline.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using testing::Eventually;
using testing::PipelineFixture;
using testing::TriggerXml;

// The system clock, or a time set by the test: a report can then be dated before a pickup that
// the pipeline looks at first (the two race on the workers).
class SettableClockEnv : public EnvWrapper {
 public:
  SettableClockEnv() : EnvWrapper(Env::Default()) {}
  std::chrono::system_clock::time_point Now() const override {
    int64_t ms = ms_.load();
    return ms == 0 ? EnvWrapper::Now() : std::chrono::system_clock::time_point(milliseconds(ms));
  }
  void Set(std::chrono::system_clock::time_point t) {
    ms_ = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
  }

 private:
  std::atomic<int64_t> ms_{0};
};

struct Download {
  std::string account;
  std::string detail;
};

class DownloadTest : public PipelineFixture {
 protected:
  void SetUp() override {
    PipelineFixture::SetUp();
    config_->routes[0].recipients = {"flis"};
  }
  void Report(const std::string& account, const std::string& name) {
    SessionEvent e{
        SessionEvent::Kind::kDownloaded, account, "127.0.0.1:50000", "", Folder::kIn, name, ""};
    pipeline_->OnSessionEvent(e);
  }
  std::vector<Download> Downloads(const std::string& uuid) {
    std::vector<Download> out;
    audit_->EventsOf(uuid, [&](const EventRecord& e) {
      if (e.kind == "downloaded") out.push_back({e.account, e.detail});
      return true;
    });
    return out;
  }
  // Waits (bounded) until `n` downloads are recorded with transfer `uuid`.
  bool WaitDownloads(const std::string& uuid, size_t n) {
    return Eventually([&] { return Downloads(uuid).size() >= n; });
  }
  std::string SendAndWait(const std::string& name, const std::string& data, int64_t finished) {
    Send(name, data, TriggerXml(name, data.size(), "vendor", {"flis"}));
    EXPECT_TRUE(WaitFinished(finished));
    return Transfers().at(0).uuid;
  }
  bool WaitDeliveryState(const std::string& uuid, DeliveryState state) {
    return Eventually([&] {
      auto d = audit_->DeliveriesOf(uuid);
      return d.ok() && !d->empty() && d->front().state == state;
    });
  }
};

TEST_F(DownloadTest, DataMetadataAndReceiptDownloadsAreRecordedWithTheirTransfer) {
  StartPipeline();
  const std::string uuid = SendAndWait("d.csv", "abc", 1);
  Report("flis", "d.csv");
  Report("flis", "d.csv.metadata");
  Report("vendor", "d.csv.sftpreceipt");
  ASSERT_TRUE(WaitDownloads(uuid, 3));
  auto got = Downloads(uuid);
  ASSERT_EQ(got.size(), 3u);
  // One worker may record a later report first.
  std::vector<std::string> seen;
  for (const auto& d : got) seen.push_back(d.account + " " + d.detail);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, (std::vector<std::string>{"flis name=d.csv", "flis name=d.csv.metadata",
                                            "vendor name=d.csv.sftpreceipt"}));
  EXPECT_TRUE(Downloads("").empty());
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

// A file no transfer is known for is recorded as before: a download, with no transfer. So is a
// receipt name read by an account that sent no such file, and the recipient reading the
// sender's receipt name in its own /IN.
TEST_F(DownloadTest, ADownloadOfAFileNoTransferIsKnownForIsRecordedWithoutOne) {
  StartPipeline();
  const std::string uuid = SendAndWait("k.csv", "abc", 1);
  Report("flis", "other.csv");
  Report("lis", "k.csv");
  Report("flis", "k.csv.sftpreceipt");
  Report("vendor", "k.csv.metadata");
  ASSERT_TRUE(Eventually([&] { return Downloads("").size() >= 4; }));
  EXPECT_TRUE(Downloads(uuid).empty());
}

// The recipient reads the file and removes it at once: the pickup may be recorded before the
// download's lookup runs. The download, reported before the pickup, is still the transfer's; so
// is its metadata, read after the data was fetched (the metadata stays in /IN).
TEST_F(DownloadTest, ADownloadLookedUpAfterThePickupStillFindsTheTransfer) {
  SettableClockEnv env;
  StartPipeline(&env);
  const std::string uuid = SendAndWait("r.csv", "abc", 1);
  auto reported = std::chrono::system_clock::now();
  env.Set(reported + milliseconds(50));
  ASSERT_EQ(unlink(Path("flis", "IN", "r.csv").c_str()), 0);
  pipeline_->OnFolderChange("flis", Folder::kIn, "r.csv", true);
  ASSERT_TRUE(WaitDeliveryState(uuid, DeliveryState::kPickedUp));
  env.Set(reported);  // the download was reported before the pickup, and looked up after it
  Report("flis", "r.csv");
  env.Set(reported + milliseconds(100));
  Report("flis", "r.csv.metadata");
  ASSERT_TRUE(WaitDownloads(uuid, 2));
  EXPECT_TRUE(Downloads("").empty());
}

// Read and removed at once: the pickup is recorded before the download, whose lookup runs later.
// The download is recorded with the time the server reported it, and the transfer's history
// lists it before the pickup, as it happened (`fordeler show`).
TEST_F(DownloadTest, ADownloadRecordedAfterThePickupIsListedBeforeIt) {
  SettableClockEnv env;
  StartPipeline(&env);
  const std::string uuid = SendAndWait("o.csv", "abc", 1);
  auto reported = std::chrono::floor<milliseconds>(std::chrono::system_clock::now());
  std::this_thread::sleep_for(milliseconds(5));  // the pickup comes in a later millisecond
  ASSERT_EQ(unlink(Path("flis", "IN", "o.csv").c_str()), 0);
  pipeline_->OnFolderChange("flis", Folder::kIn, "o.csv", true);
  ASSERT_TRUE(WaitDeliveryState(uuid, DeliveryState::kPickedUp));
  env.Set(reported);  // the download was reported before the removal
  Report("flis", "o.csv");
  ASSERT_TRUE(WaitDownloads(uuid, 1));

  std::vector<EventRecord> events;
  audit_->EventsOf(uuid, [&](const EventRecord& e) {
    if (e.kind == "downloaded" || e.kind == "picked_up") events.push_back(e);
    return true;
  });
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, "downloaded");
  EXPECT_EQ(events[0].time, reported);
  EXPECT_EQ(events[1].kind, "picked_up");
  EXPECT_GT(events[0].seq, events[1].seq);  // recorded after it
  EXPECT_TRUE(audit_->Verify(std::nullopt)->ok);
}

// The same name delivered again: a download is the newest delivery's, and a delivery gone from
// /IN before the download was reported (a later one of its name not yet recorded) is not taken
// for the file read.
TEST_F(DownloadTest, TheNewestDeliveryOfANameIsTheOneReadAndAFetchedOneIsNot) {
  StartPipeline();
  const std::string first = SendAndWait("s.csv", "abc", 1);
  ASSERT_EQ(unlink(Path("flis", "IN", "s.csv").c_str()), 0);
  ASSERT_EQ(unlink(Path("flis", "IN", "s.csv.metadata").c_str()), 0);
  pipeline_->OnFolderChange("flis", Folder::kIn, "s.csv", true);
  ASSERT_TRUE(WaitDeliveryState(first, DeliveryState::kPickedUp));
  std::this_thread::sleep_for(milliseconds(5));  // the report comes in a later millisecond
  Report("flis", "s.csv");
  ASSERT_TRUE(Eventually([&] { return Downloads("").size() == 1; }));
  EXPECT_TRUE(Downloads(first).empty());

  const std::string second = SendAndWait("s.csv", "defg", 2);
  ASSERT_NE(second, first);
  ASSERT_EQ(Read(Path("flis", "IN", "s.csv")), "defg");
  Report("flis", "s.csv");
  Report("vendor", "s.csv.sftpreceipt");  // replaced by the second transfer's
  ASSERT_TRUE(WaitDownloads(second, 2));
  EXPECT_TRUE(Downloads(first).empty());
  EXPECT_EQ(Downloads("").size(), 1u);
}

}  // namespace
}  // namespace fordeler
