// The writer: group commit under concurrency, retry while the database is unavailable, and what
// Close does to batches it holds.
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

#include "audit/audit_store.h"
#include "audit/audit_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using testing::FakeEnv;
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;

// Counts `done` calls and the errors among them.
struct Tally {
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  std::promise<void> all;
  int expected = 0;

  AuditStore::Done Callback() {
    return [this](const Status& s) {
      if (!s.ok()) ++failed;
      if (++done == expected) all.set_value();
    };
  }
};

TEST(GroupCommit, ConcurrentSubmitsShareCommitsAndKeepOneChain) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 200;
  Tally tally;
  tally.expected = kThreads * kPerThread;
  auto all = tally.all.get_future();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        store->Submit(
            Batch().AddEvent("login", "", "acct" + std::to_string(t), "i=" + std::to_string(i)),
            tally.Callback());
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(all.wait_for(std::chrono::seconds(60)), std::future_status::ready);
  EXPECT_EQ(tally.failed.load(), 0);

  EXPECT_EQ(store->Head()->seq, kThreads * kPerThread);
  EXPECT_LT(store->commit_count(), kThreads * kPerThread) << "no two batches shared a commit";
  auto report = store->Verify(store->Head().value());
  ASSERT_TRUE(report.ok());
  EXPECT_TRUE(report->ok) << report->problem;
  EXPECT_EQ(report->rows, kThreads * kPerThread);
  // Each thread's batches were applied in the order it submitted them.
  RawDb raw(dir.File("audit.db"));
  EXPECT_EQ(raw.Text("SELECT count(*) FROM events e1 JOIN events e2 ON e1.account = e2.account "
                     "AND e1.seq < e2.seq AND CAST(substr(e1.detail, 3) AS INTEGER) > "
                     "CAST(substr(e2.detail, 3) AS INTEGER)"),
            "0");
}

TEST(GroupCommit, DoneRunsAfterTheCommitAndMaySubmitTheNextStep) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  std::promise<int64_t> second;
  store->Submit(Batch().AddEvent("received", "", "a", ""), [&](const Status& s) {
    ASSERT_TRUE(s.ok());
    EXPECT_EQ(store->Head()->seq, 1);  // durable and visible before done runs
    EXPECT_EQ(store->Commit(Batch()).code(), Status::Code::kInternal);  // would deadlock
    store->Submit(Batch().AddEvent("delivered", "", "a", ""),
                  [&](const Status&) { second.set_value(store->Head()->seq); });
  });
  auto f = second.get_future();
  ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(f.get(), 2);
}

// Another process holds the database's write lock for 300 ms; the store's busy time-out is
// shorter, so the writer must back off and retry, and loses nothing.
TEST(GroupCommit, RetriesWhileTheDatabaseIsLockedAndLosesNothing) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env, testing::BusyTimeout(20));
  ASSERT_TRUE(store->Commit(Batch().AddEvent("login", "", "a", "")).ok());

  RawDb holder(dir.File("audit.db"));
  ASSERT_EQ(holder.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);
  auto start = std::chrono::steady_clock::now();
  std::thread release([&] {
    std::this_thread::sleep_for(milliseconds(300));
    holder.Exec("COMMIT");
  });
  Tally tally;
  tally.expected = 20;
  auto all = tally.all.get_future();
  for (int i = 0; i < 20; ++i) {
    store->Submit(Batch().AddEvent("login", "", "b", std::to_string(i)), tally.Callback());
  }
  ASSERT_EQ(all.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  release.join();
  EXPECT_GE(std::chrono::steady_clock::now() - start, milliseconds(250));
  EXPECT_EQ(tally.failed.load(), 0);
  EXPECT_EQ(store->Head()->seq, 21);
  EXPECT_TRUE(store->Verify(std::nullopt)->ok);
}

TEST(GroupCommit, CloseWhileFailingCompletesHeldBatchesWithTheError) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env, testing::BusyTimeout(20));
  RawDb holder(dir.File("audit.db"));
  ASSERT_EQ(holder.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);

  Tally tally;
  tally.expected = 3;
  auto all = tally.all.get_future();
  for (int i = 0; i < 3; ++i)
    store->Submit(Batch().AddEvent("login", "", "a", ""), tally.Callback());
  std::this_thread::sleep_for(milliseconds(100));  // the writer is retrying by now
  EXPECT_EQ(tally.done.load(), 0) << "batches were given up before Close";
  store->Close();
  ASSERT_EQ(all.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_EQ(tally.failed.load(), 3);
  holder.Exec("COMMIT");
  EXPECT_EQ(RawDb(dir.File("audit.db")).Text("SELECT count(*) FROM events"), "0");
}

TEST(GroupCommit, GoodBatchesQueuedWithABadOneAreAllCommitted) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env, testing::BusyTimeout(20));
  RawDb holder(dir.File("audit.db"));
  ASSERT_EQ(holder.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);  // so they queue up into one group
  std::vector<std::promise<Status>> results(5);
  for (int i = 0; i < 5; ++i) {
    Batch b;
    b.AddEvent("login", "", "a", std::to_string(i));
    if (i == 2) {
      b.PutDelivery(testing::Delivery("no-such-transfer", "r", "", DeliveryState::kPending));
    }
    store->Submit(std::move(b), [&results, i](const Status& s) { results[i].set_value(s); });
  }
  std::this_thread::sleep_for(milliseconds(50));
  holder.Exec("COMMIT");
  for (int i = 0; i < 5; ++i) {
    Status s = results[i].get_future().get();
    EXPECT_EQ(s.ok(), i != 2) << i << ": " << s.ToString();
  }
  EXPECT_EQ(store->Head()->seq, 4);
  EXPECT_TRUE(store->Verify(std::nullopt)->ok);
}

// Two writers that both saw a delivery `delivered` (a pickup reported twice, a pickup and the
// retention sweep): queued into one group, only the first one's change is recorded.
TEST(GroupCommit, ADeliveryStateCheckLetsOnlyTheFirstChangeThrough) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env, testing::BusyTimeout(20));
  const std::string uuid = "01a200fb-5d2d-76b1-bad0-998dc359be25";
  ASSERT_TRUE(store
                  ->Commit(Batch()
                               .PutTransfer(testing::SampleTransfer(uuid, testing::At(0)))
                               .PutDelivery(testing::Delivery(uuid, "flis", "a.csv",
                                                              DeliveryState::kDelivered)))
                  .ok());
  RawDb holder(dir.File("audit.db"));
  ASSERT_EQ(holder.Exec("BEGIN EXCLUSIVE"), SQLITE_OK);  // so they queue up into one group
  std::vector<std::promise<Status>> results(3);
  const DeliveryState to[] = {DeliveryState::kPickedUp, DeliveryState::kPickedUp,
                              DeliveryState::kExpired};
  for (int i = 0; i < 3; ++i) {
    Batch b;
    b.RequireDeliveryState(uuid, "flis", DeliveryState::kDelivered)
        .PutDelivery(testing::Delivery(uuid, "flis", "a.csv", to[i]))
        .AddEvent(std::string(ToString(to[i])), uuid, "flis", std::to_string(i));
    store->Submit(std::move(b), [&results, i](const Status& s) { results[i].set_value(s); });
  }
  std::this_thread::sleep_for(milliseconds(50));
  holder.Exec("COMMIT");
  EXPECT_TRUE(results[0].get_future().get().ok());
  for (int i = 1; i < 3; ++i) {
    EXPECT_EQ(results[i].get_future().get().code(), Status::Code::kAlreadyExists) << i;
  }
  auto deliveries = store->DeliveriesOf(uuid);
  ASSERT_TRUE(deliveries.ok());
  EXPECT_EQ(deliveries->at(0).state, DeliveryState::kPickedUp);
  std::vector<std::string> kinds;
  store->EventsOf(uuid, [&](const EventRecord& e) {
    kinds.push_back(e.kind);
    return true;
  });
  EXPECT_EQ(kinds, std::vector<std::string>{"picked_up"});
  EXPECT_TRUE(store->Verify(std::nullopt)->ok);
}

TEST(GroupCommit, CloseFromADoneCallbackStopsTheWriter) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  std::promise<Status> later;
  store->Submit(Batch().AddEvent("login", "", "a", ""), [&](const Status&) {
    store->Close();
    store->Submit(Batch().AddEvent("login", "", "a", ""),
                  [&](const Status& s) { later.set_value(s); });
  });
  EXPECT_EQ(later.get_future().get().code(), Status::Code::kUnavailable);
  store.reset();
}

TEST(GroupCommit, CloseCommitsWhatIsQueued) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  Tally tally;
  tally.expected = 500;
  for (int i = 0; i < 500; ++i)
    store->Submit(Batch().AddEvent("login", "", "a", ""), tally.Callback());
  store.reset();  // the destructor closes
  EXPECT_EQ(tally.done.load(), 500);
  EXPECT_EQ(tally.failed.load(), 0);
  EXPECT_EQ(RawDb(dir.File("audit.db")).Text("SELECT max(seq) FROM events"), "500");
}

}  // namespace
}  // namespace fordeler
