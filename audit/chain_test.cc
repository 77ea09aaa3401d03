// The events hash chain: its canonical form, `audit verify`, and continuity across restarts.
#include "audit/chain.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <sstream>

#include "audit/audit_testing.h"
#include "core/sha256.h"

namespace fordeler {
namespace {

using testing::FakeEnv;
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;

TEST(EventHash, IsTheDocumentedCanonicalForm) {
  std::string expected = ToHex(
      Sha256::Of("abc\n12\n2026-11-22T02:00:00.000Z\nreceived\n5f0c3b1e\nvendor-a\nname=x size=1"));
  EXPECT_EQ(EventHash("abc", 12, "2026-11-22T02:00:00.000Z", "received", "5f0c3b1e", "vendor-a",
                      "name=x size=1"),
            expected);
  EXPECT_EQ(EventHash("", 1, "t", "k", "", "", ""), ToHex(Sha256::Of("\n1\nt\nk\n\n\n")));
}

class ChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(path(), &env_);
    for (int i = 0; i < 10; ++i) {
      env_.Advance(std::chrono::milliseconds(7));
      ASSERT_TRUE(
          store_->Commit(Batch().AddEvent("login", "", "a", "n=" + std::to_string(i))).ok());
    }
  }

  std::string path() const { return dir_.File("audit.db"); }

  VerifyReport Verify(std::optional<ChainHead> head = std::nullopt) {
    auto r = store_->Verify(head);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  // Drops the append-only triggers, as someone editing the file behind fordeler's back would.
  void Tamper(const std::string& sql) {
    RawDb raw(path());
    ASSERT_EQ(raw.Exec("DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;"), SQLITE_OK);
    ASSERT_EQ(raw.Exec(sql), SQLITE_OK) << raw.last_error();
  }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
};

TEST_F(ChainTest, AnIntactChainVerifies) {
  VerifyReport r = Verify(store_->Head().value());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.rows, 10);
  RawDb raw(path());
  EXPECT_EQ(raw.Text("SELECT prev_hash FROM events WHERE seq = 1"), "");
  EXPECT_EQ(raw.Text("SELECT prev_hash FROM events WHERE seq = 5"),
            raw.Text("SELECT hash FROM events WHERE seq = 4"));
}

TEST_F(ChainTest, AnEmptyChainVerifies) {
  TempDir other;
  auto store = OpenOrDie(other.File("audit.db"), &env_);
  auto r = store->Verify(ChainHead{});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok);
  EXPECT_EQ(r->rows, 0);
}

TEST_F(ChainTest, DetectsAChangedRow) {
  Tamper("UPDATE events SET detail = 'n=forged' WHERE seq = 4");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 4);
  EXPECT_EQ(r.problem, "hash mismatch");
}

TEST_F(ChainTest, DetectsARowWhoseHashWasRecomputed) {
  // A forger who fixes the row's own hash still breaks the next row's link.
  RawDb raw(path());
  std::string prev = raw.Text("SELECT prev_hash FROM events WHERE seq = 4");
  std::string time = raw.Text("SELECT time FROM events WHERE seq = 4");
  std::string forged = EventHash(prev, 4, time, "login", "", "a", "n=forged");
  Tamper("UPDATE events SET detail = 'n=forged', hash = '" + forged + "' WHERE seq = 4");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 5);
  EXPECT_EQ(r.problem, "prev_hash does not match row 4");
}

TEST_F(ChainTest, DetectsADeletedRowInTheMiddle) {
  Tamper("DELETE FROM events WHERE seq = 6");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 6);
  EXPECT_EQ(r.problem, "seq gap: expected 6, found 7");
}

TEST_F(ChainTest, DetectsReorderedRows) {
  Tamper(
      "UPDATE events SET seq = -1 WHERE seq = 3; UPDATE events SET seq = 3 WHERE seq = 2;"
      "UPDATE events SET seq = 2 WHERE seq = -1;");
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 2);
  EXPECT_EQ(r.problem, "prev_hash does not match row 1");
}

TEST_F(ChainTest, DetectsATailCutOffOnlyWithTheHead) {
  ChainHead head = store_->Head().value();
  ASSERT_EQ(head.seq, 10);
  Tamper("DELETE FROM events WHERE seq > 7");
  EXPECT_TRUE(Verify().ok) << "without the head a clean cut is invisible";
  VerifyReport r = Verify(head);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 8);
  EXPECT_EQ(r.problem, "chain ends at seq 7, before the head seq 10 (rows cut from the end)");
}

TEST_F(ChainTest, DetectsAHeadThatDoesNotMatch) {
  ChainHead head = store_->Head().value();
  head.hash[0] = head.hash[0] == '0' ? '1' : '0';
  VerifyReport r = Verify(head);
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 10);
  // An older head (from an earlier log line) still verifies.
  ChainHead older;
  ASSERT_TRUE(store_
                  ->EventsOf("",
                             [&](const EventRecord& e) {
                               if (e.seq == 5) older = ChainHead{e.seq, e.hash};
                               return true;
                             })
                  .ok());
  EXPECT_TRUE(Verify(older).ok);
}

TEST_F(ChainTest, ReopeningContinuesTheChain) {
  ChainHead before = store_->Head().value();
  store_.reset();
  store_ = OpenOrDie(path(), &env_);
  EXPECT_EQ(store_->Head()->seq, before.seq);
  EXPECT_EQ(store_->Head()->hash, before.hash);
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("login", "", "a", "after restart")).ok());
  EXPECT_EQ(store_->Head()->seq, 11);
  EXPECT_EQ(RawDb(path()).Text("SELECT prev_hash FROM events WHERE seq = 11"), before.hash);
  VerifyReport r = Verify(store_->Head().value());
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.rows, 11);
}

TEST_F(ChainTest, AReadOnlyStoreVerifiesWhileTheWriterRuns) {
  auto reader = OpenOrDie(path(), &env_, testing::ReadOnly());
  EXPECT_EQ(reader->Head()->seq, 10);
  EXPECT_EQ(reader->Head()->hash, store_->Head()->hash);
  auto r = reader->Verify(store_->Head().value());
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ok) << r->problem;
}

// The daemon's log carries the head at Open, after each commit that crosses a multiple of 1,000
// events, and at Close (contract §10); each of those heads must verify the chain up to it.
TEST(ChainHeadLog, LoggedAtOpenEveryThousandEventsAndAtClose) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "capture", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  for (int i = 0; i < 300; ++i) {  // 2,100 events in batches of 7: crosses 1,000 and 2,000
    Batch batch;
    for (int j = 0; j < 7; ++j) batch.AddEvent("login", "", "a", "n=" + std::to_string(i));
    ASSERT_TRUE(store->Commit(std::move(batch)).ok());
  }
  store.reset();
  spdlog::set_default_logger(previous);

  std::vector<ChainHead> heads;
  std::string text = log.str();
  std::regex line(R"(event=audit_head seq=(\d+) hash=([0-9a-f]*))");
  for (auto it = std::sregex_iterator(text.begin(), text.end(), line); it != std::sregex_iterator();
       ++it) {
    heads.push_back(ChainHead{std::stoll((*it)[1]), (*it)[2]});
  }
  ASSERT_EQ(heads.size(), 4u) << text;
  EXPECT_EQ(heads[0].seq, 0);  // Open, empty log
  EXPECT_EQ(heads[0].hash, "");
  EXPECT_EQ(heads[1].seq, 1001);  // the batch that reached seq 1,000
  EXPECT_EQ(heads[2].seq, 2002);
  EXPECT_EQ(heads[3].seq, 2100);  // Close

  auto reader = OpenOrDie(dir.File("audit.db"), &env, testing::ReadOnly());
  for (const ChainHead& head : heads) {
    auto r = reader->Verify(head);
    ASSERT_TRUE(r.ok()) << r.status().ToString();
    EXPECT_TRUE(r->ok) << "head " << head.seq << ": " << r->problem;
  }
}

}  // namespace
}  // namespace fordeler
