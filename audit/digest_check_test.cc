// The transfers' digests in the hash chain (contract §10: every transfer with its digest,
// append-only): the digest fields of the events, and `audit verify` finding a `transfers` row
// whose sha256 or size was changed behind fordeler's back.
#include "audit/digest_check.h"

#include <gtest/gtest.h>

#include <map>

#include "audit/audit_testing.h"
#include "audit/chain.h"

namespace fordeler {
namespace {

using testing::At;
using testing::Delivery;
using testing::FakeEnv;
using testing::OpenOrDie;
using testing::RawDb;
using testing::SampleTransfer;
using testing::TempDir;

constexpr char kUuid[] = "01a20976-3ba4-7a3c-8435-d45d30b07412";
constexpr char kSha[] = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

TEST(DigestFields, AreWhatTheTransferKnows) {
  TransferRecord t = SampleTransfer(kUuid, At(0));
  EXPECT_EQ(DigestFields(t), "");
  t.size = 1234;
  EXPECT_EQ(DigestFields(t), " size=1234");
  t.sha256 = kSha;
  EXPECT_EQ(DigestFields(t), std::string(" sha256=") + kSha + " size=1234");
}

TEST(DigestFields, AreReadFromTheEventsThatCarryThem) {
  const std::string fields = std::string(" sha256=") + kSha + " size=7";
  const std::string detail = "name=a.csv" + fields;  // the claim's views point into it
  for (const char* kind : {"delivered", "redelivered", "rejected", "picked_up"}) {
    DigestClaim c = DigestFieldsOf(kind, detail);
    ASSERT_TRUE(c.sha256 && c.size) << kind;
    EXPECT_EQ(*c.sha256, kSha);
    EXPECT_EQ(*c.size, "7");
  }
  EXPECT_TRUE(DigestFieldsOf("received", "trigger=a.csv.trigger" + fields).empty());
  EXPECT_TRUE(DigestFieldsOf("delivered", "name=a.csv").empty());  // written before they were
  // Quoted values are read whole: a name holding " sha256=" is no field.
  DigestClaim quoted =
      DigestFieldsOf("delivered", "name=\"q\\x22 size=0 sha256=x how=forged \\x22.csv\"");
  EXPECT_TRUE(quoted.empty());
  const std::string redelivered = "name=\"a b.csv\"" + fields + " by=operator uid=0";
  quoted = DigestFieldsOf("redelivered", redelivered);
  ASSERT_TRUE(quoted.sha256 && quoted.size);
  EXPECT_EQ(*quoted.sha256, kSha);
  EXPECT_EQ(*quoted.size, "7");
}

class VerifyDigestsTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenOrDie(dir_.File("audit.db"), &env_); }

  // A delivered transfer as the pipeline records it: sha256 and size in its row and in its
  // `delivered` events (`with_fields`; false: as fordeler wrote them before).
  void Deliver(const std::string& uuid, bool with_fields = true) {
    TransferRecord t = SampleTransfer(uuid, env_.Now());
    t.sha256 = kSha;
    t.size = 3;
    t.state = TransferState::kDelivered;
    Batch batch;
    batch.PutTransfer(t).AddEvent("received", uuid, t.sender, "trigger=orders.xml.trigger");
    for (const char* recipient : {"clinic-a", "clinic-b"}) {
      batch.PutDelivery(Delivery(uuid, recipient, "orders.xml", DeliveryState::kDelivered))
          .AddEvent("delivered", uuid, recipient,
                    "name=orders.xml" + (with_fields ? DigestFields(t) : ""));
    }
    ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  }
  VerifyReport Verify() {
    auto r = store_->Verify(std::nullopt);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : VerifyReport{};
  }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
};

TEST_F(VerifyDigestsTest, AnUntouchedLogPasses) {
  Deliver(kUuid);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.rows, 3);
  EXPECT_EQ(r.digests, 2);  // both `delivered` events
}

TEST_F(VerifyDigestsTest, AChangedSha256IsFoundNamingTheTransferAndTheColumn) {
  Deliver(kUuid);
  RawDb raw(dir_.File("audit.db"));
  ASSERT_EQ(raw.Exec("UPDATE transfers SET sha256 = '" + std::string(64, 'e') + "'"), SQLITE_OK);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.first_bad_seq, 2);  // the first `delivered` event
  EXPECT_EQ(r.transfer, kUuid);
  EXPECT_EQ(r.problem, "transfers.sha256 of transfer " + std::string(kUuid) + " is " +
                           std::string(64, 'e') + ", but this event (delivered) says " + kSha);
}

TEST_F(VerifyDigestsTest, AChangedOrRemovedSizeOrDigestIsFound) {
  Deliver(kUuid);
  RawDb raw(dir_.File("audit.db"));
  ASSERT_EQ(raw.Exec("UPDATE transfers SET size = 4"), SQLITE_OK);
  VerifyReport r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem, "transfers.size of transfer " + std::string(kUuid) +
                           " is 4, but this event (delivered) says 3");
  ASSERT_EQ(raw.Exec("UPDATE transfers SET size = 3, sha256 = NULL"), SQLITE_OK);
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.problem.find("transfers.sha256 of transfer " + std::string(kUuid) + " is NULL"),
            std::string::npos)
      << r.problem;
  ASSERT_EQ(raw.Exec("PRAGMA foreign_keys = OFF; DELETE FROM deliveries; DELETE FROM transfers"),
            SQLITE_OK);
  r = Verify();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.problem, "this event (delivered) names transfer " + std::string(kUuid) +
                           ", which has no row in transfers");
}

// A log written before the events carried the digest: nothing to compare, and no failure.
TEST_F(VerifyDigestsTest, EventsWithoutTheFieldsPassAndAreNotCounted) {
  Deliver(kUuid, /*with_fields=*/false);
  VerifyReport r = Verify();
  EXPECT_TRUE(r.ok) << r.problem;
  EXPECT_EQ(r.digests, 0);
  RawDb raw(dir_.File("audit.db"));
  ASSERT_EQ(raw.Exec("UPDATE transfers SET sha256 = NULL"), SQLITE_OK);
  EXPECT_TRUE(Verify().ok);  // the chain cannot tell: it never held that digest
}

// The transfers table in memory, counting what the check reads.
class FakeRows : public DigestCheck::Rows {
 public:
  explicit FakeRows(int n) {
    for (int i = 1; i <= n; ++i) rows_[i] = {i, Key(i), true, kSha, true, 3};
  }
  static std::string Key(int i) { return "t" + std::to_string(i); }
  Result<bool> Next(DigestCheck::Row* row) override {
    ++nexts;
    auto it = rows_.upper_bound(after_);
    if (it == rows_.end()) return false;
    after_ = it->first;
    *row = it->second;
    return true;
  }
  Status SeekAfter(int64_t rowid) override {
    after_ = rowid;
    return Status::Ok();
  }
  Result<bool> Find(std::string_view uuid, DigestCheck::Row* row) override {
    ++finds;
    for (const auto& [id, r] : rows_) {
      if (r.uuid == uuid) {
        *row = r;
        return true;
      }
    }
    return false;
  }
  std::map<int64_t, DigestCheck::Row> rows_;
  int64_t after_ = 0;
  int nexts = 0, finds = 0;
};

// Events mostly follow the rows' order; the rows are then read once, in order. One that comes
// long after its row left the window, and one whose row lies far ahead, are found by key.
TEST(DigestCheck, ReadsTheRowsOnceInOrderAndFindsTheOthersByKey) {
  const int n = 3 * static_cast<int>(DigestCheck::kWindow);
  FakeRows rows(n);
  rows.rows_[n - 1].sha256 = std::string(64, 'e');  // changed behind fordeler's back
  rows.rows_[n - 2].has_size = false;
  DigestCheck check(&rows);
  const std::string fields = std::string("name=x sha256=") + kSha + " size=3";
  auto event = [&](int i) { return check.Check("delivered", FakeRows::Key(i), fields); };
  for (int i = 1; i <= n / 2; ++i) {
    ASSERT_EQ(*event(i), "") << i;
    ASSERT_EQ(*event(i), "") << i;  // the second recipient's event: from the window
  }
  EXPECT_EQ(rows.finds, 0);
  EXPECT_EQ(*event(2), "");  // long evicted: by key
  EXPECT_EQ(rows.finds, 1);
  EXPECT_EQ(*event(n), "");  // far ahead: by key, and the walk goes on from there
  EXPECT_EQ(rows.finds, 2);
  EXPECT_NE(event(n - 1)->find("transfers.sha256 of transfer t" + std::to_string(n - 1)),
            std::string::npos);
  EXPECT_EQ(rows.finds, 3);
  EXPECT_EQ(*event(n - 2), "transfers.size of transfer t" + std::to_string(n - 2) +
                               " is NULL, but this event (delivered) says 3");
  EXPECT_EQ(rows.finds, 4);
  EXPECT_LE(rows.nexts, n / 2 + static_cast<int>(DigestCheck::kLookAhead) * 2 + 2);
  EXPECT_EQ(check.checked(), n + 4);
  EXPECT_NE(check.Check("delivered", "nobody", fields)->find("has no row"), std::string::npos);
}

}  // namespace
}  // namespace fordeler
