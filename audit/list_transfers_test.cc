// ListTransfers: the filters of `fordeler transfers`, newest first, streamed.
#include <gtest/gtest.h>

#include <sqlite3.h>

#include <chrono>
#include <string>
#include <variant>

#include "audit/audit_store.h"
#include "audit/audit_testing.h"
#include "audit/list_query.h"

namespace fordeler {
namespace {

using testing::At;
using testing::FakeEnv;
using testing::Filter;
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;

std::string Uuid(int i) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "00000000-0000-4000-8000-%012d", i);
  return buf;
}

// Transfer i: received at i seconds; sender s<i%3>; route r<i%4> (and "shared" for even i);
// data area a<i%2> (none for i%5 == 0); delivered, except every 7th which is rejected.
TransferRecord Numbered(int i) {
  TransferRecord t = testing::SampleTransfer(Uuid(i), At(int64_t{i} * 1000));
  t.sender = "s" + std::to_string(i % 3);
  t.route_ids = {"r" + std::to_string(i % 4)};
  if (i % 2 == 0) t.route_ids.push_back("shared");
  if (i % 5 != 0) t.data_area = "a" + std::to_string(i % 2);
  t.state = i % 7 == 0 ? TransferState::kRejected : TransferState::kDelivered;
  t.step = TransferStep::kDone;
  return t;
}

class ListTransfersTest : public ::testing::Test {
 protected:
  void SetUp() override {
    store_ = OpenOrDie(dir_.File("audit.db"), &env_);
    Batch batch;
    for (int i = 1; i <= 60; ++i) batch.PutTransfer(Numbered(i));
    ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  }

  // The transfer numbers `filter` lists, in order.
  std::vector<int> List(TransferFilter filter) {
    std::vector<int> out;
    Status s = store_->ListTransfers(filter, [&](const TransferRecord& t) {
      out.push_back(std::stoi(t.uuid.substr(24)));
      return true;
    });
    EXPECT_TRUE(s.ok()) << s.ToString();
    return out;
  }

  // What `keep` selects among 1..60, newest first, at most `limit`.
  static std::vector<int> Expected(const std::function<bool(const TransferRecord&)>& keep,
                                   int limit = 100) {
    std::vector<int> out;
    for (int i = 60; i >= 1 && static_cast<int>(out.size()) < limit; --i) {
      if (keep(Numbered(i))) out.push_back(i);
    }
    return out;
  }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
};

TEST_F(ListTransfersTest, NewestFirstUpToTheLimit) {
  EXPECT_EQ(List({}), Expected([](auto&) { return true; }));
  EXPECT_EQ(List(Filter([](auto& f) { f.limit = 5; })), (std::vector<int>{60, 59, 58, 57, 56}));
  EXPECT_TRUE(List(Filter([](auto& f) { f.limit = 0; })).empty());
}

TEST_F(ListTransfersTest, SameTimeIsOrderedByUuidDescending) {
  TransferRecord a = testing::SampleTransfer(Uuid(900), At(500'000));
  TransferRecord b = testing::SampleTransfer(Uuid(901), At(500'000));
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(a).PutTransfer(b)).ok());
  EXPECT_EQ(List(Filter([](auto& f) { f.limit = 3; })), (std::vector<int>{901, 900, 60}));
}

TEST_F(ListTransfersTest, EachFilter) {
  EXPECT_EQ(List(Filter([](auto& f) { f.since = At(55'000); })),
            (std::vector<int>{60, 59, 58, 57, 56, 55}));
  EXPECT_EQ(List(Filter([](auto& f) { f.state = TransferState::kRejected; })),
            (std::vector<int>{56, 49, 42, 35, 28, 21, 14, 7}));
  EXPECT_EQ(List(Filter([](auto& f) { f.sender = "s1"; })),
            Expected([](auto& t) { return t.sender == "s1"; }));
  EXPECT_EQ(List(Filter([](auto& f) { f.route = "r3"; })),
            Expected([](auto& t) { return t.route_ids[0] == "r3"; }));
  EXPECT_EQ(List(Filter([](auto& f) { f.route = "shared"; })),
            Expected([](auto& t) { return t.route_ids.size() == 2; }));
  EXPECT_TRUE(
      List(Filter([](auto& f) { f.route = "r"; })).empty());  // ids match whole, not as prefixes
  EXPECT_EQ(List(Filter([](auto& f) { f.data_area = "a0"; })),
            Expected([](auto& t) { return t.data_area == "a0"; }));
  EXPECT_TRUE(List(Filter([](auto& f) { f.sender = "nobody"; })).empty());
}

TEST_F(ListTransfersTest, FiltersCombine) {
  TransferFilter f;
  f.since = At(20'000);
  f.state = TransferState::kDelivered;
  f.sender = "s0";
  f.route = "shared";
  f.data_area = "a0";
  f.limit = 3;
  EXPECT_EQ(List(f), Expected(
                         [](auto& t) {
                           return t.received_at >= At(20'000) &&
                                  t.state == TransferState::kDelivered && t.sender == "s0" &&
                                  t.route_ids.size() == 2 && t.data_area == "a0";
                         },
                         3));
}

TEST_F(ListTransfersTest, ReplacingATransferMovesItsRoutes) {
  TransferRecord t = Numbered(3);
  t.route_ids = {"moved"};
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
  EXPECT_EQ(List(Filter([](auto& f) { f.route = "moved"; })), std::vector<int>{3});
  EXPECT_EQ(List(Filter([](auto& f) { f.route = "r3"; })),
            Expected([](auto& t) { return t.route_ids[0] == "r3" && t.uuid != Uuid(3); }));
}

TEST_F(ListTransfersTest, StopsWhenTheCallbackSaysSo) {
  int rows = 0;
  ASSERT_TRUE(store_->ListTransfers({}, [&](const TransferRecord&) { return ++rows < 4; }).ok());
  EXPECT_EQ(rows, 4);
}

// The common filters stream straight off an index: no sort of the whole table before the first
// row, which is what keeps `fordeler transfers` fast on a large database.
TEST_F(ListTransfersTest, QueriesReadAnIndexInOrder) {
  RawDb raw(dir_.File("audit.db"));
  for (const TransferFilter& f :
       {TransferFilter{}, Filter([](auto& f) { f.since = At(1); }),
        Filter([](auto& f) { f.state = TransferState::kRejected; }),
        Filter([](auto& f) { f.sender = "s1"; }), Filter([](auto& f) { f.data_area = "a1"; }),
        Filter([](auto& f) { f.route = "r1"; }), Filter([](auto& f) {
          f.route = "r1";
          f.since = At(1);
          f.sender = "s1";
        })}) {
    ListQuery q = BuildListQuery(f);
    const std::string plan = raw.QueryPlan(q.sql);
    EXPECT_NE(plan.find("USING INDEX"), std::string::npos) << q.sql << "\n" << plan;
    EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << q.sql << "\n" << plan;
  }
}

// The virtual-machine steps SQLite takes to answer `q` in full: about proportional to the rows
// it looks at.
int64_t StepsToAnswer(sqlite3* db, const ListQuery& q, int* rows) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, q.sql.c_str(), -1, &st, nullptr) != SQLITE_OK) return -1;
  for (size_t i = 0; i < q.params.size(); ++i) {
    const int index = static_cast<int>(i) + 1;
    if (const auto* text = std::get_if<std::string>(&q.params[i])) {
      sqlite3_bind_text(st, index, text->data(), static_cast<int>(text->size()), SQLITE_TRANSIENT);
    } else {
      sqlite3_bind_int64(st, index, std::get<int64_t>(q.params[i]));
    }
  }
  *rows = 0;
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) ++*rows;
  int64_t steps = sqlite3_stmt_status(st, SQLITE_STMTSTATUS_VM_STEP, 0);
  sqlite3_finalize(st);
  return rc == SQLITE_DONE ? steps : -1;
}

// Answering from the indexes, not by reading the table: fewer steps than the table has rows,
// which no plan that visits every row can do. (ListTransfers runs BuildListQuery's query.)
TEST(ListTransfersScale, HundredThousandRowsAreNotScanned) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  constexpr int kRows = 100'000;
  for (int start = 1; start <= kRows; start += 10'000) {
    Batch batch;
    for (int i = start; i < start + 10'000; ++i) batch.PutTransfer(Numbered(i));
    ASSERT_TRUE(store->Commit(std::move(batch)).ok());
  }
  RawDb raw(dir.File("audit.db"));
  for (const TransferFilter& f :
       {TransferFilter{}, Filter([](auto& f) { f.state = TransferState::kRejected; }),
        Filter([](auto& f) { f.sender = "s2"; }), Filter([](auto& f) { f.route = "r1"; }),
        Filter([](auto& f) {
          f.data_area = "a1";
          f.limit = 1000;
        }),
        Filter([](auto& f) { f.route = "none"; })}) {
    ListQuery q = BuildListQuery(f);
    int rows = 0;
    int64_t steps = StepsToAnswer(raw.get(), q, &rows);
    ASSERT_GE(steps, 0) << q.sql;
    EXPECT_LE(rows, f.limit) << q.sql;
    EXPECT_LT(steps, kRows) << q.sql;
    int streamed = 0;
    ASSERT_TRUE(
        store->ListTransfers(f, [&](const TransferRecord&) { return ++streamed, true; }).ok());
    EXPECT_EQ(streamed, rows) << q.sql;
  }
}

}  // namespace
}  // namespace fordeler
