#include "audit/schema.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>

#include "audit/audit_testing.h"
#include "audit/sql.h"

namespace fordeler {
namespace {

using testing::FakeEnv;
using testing::OpenOrDie;
using testing::RawDb;
using testing::TempDir;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// A database made by this version, then taken back to an older one by `sql`, opened again (which
// migrates it) and returned for inspection; null (and a failure) when `sql` does not run.
std::unique_ptr<RawDb> MigratedFrom(const TempDir& dir, const std::string& sql) {
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  if (RawDb old(dir.File("audit.db")); old.Exec(sql) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << old.last_error();
    return nullptr;
  }
  OpenOrDie(dir.File("audit.db"), &env).reset();
  return std::make_unique<RawDb>(dir.File("audit.db"));
}

TEST(Schema, CreatedInWalAtTheCurrentVersion) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  RawDb raw(dir.File("audit.db"));
  EXPECT_EQ(raw.Text("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(raw.Text("PRAGMA user_version"), std::to_string(sql::CurrentVersion()));
  EXPECT_EQ(sql::CurrentVersion(), 3);
  for (const char* table : {"transfers", "transfer_routes", "deliveries", "events"}) {
    EXPECT_EQ(
        raw.Text(std::string("SELECT count(*) FROM sqlite_schema WHERE name = '") + table + "'"),
        "1")
        << table;
  }
  EXPECT_EQ(raw.Text("SELECT count(*) FROM sqlite_schema WHERE type = 'trigger'"), "2");
}

// synchronous and foreign_keys are per connection: they are read back on the connection the
// writer uses, as OpenWriteConnection leaves it.
TEST(Schema, WriteConnectionIsDurableAndChecksForeignKeys) {
  TempDir dir;
  auto db = OpenWriteConnection(dir.File("audit.db"), 5000);
  ASSERT_TRUE(db.ok()) << db.status().ToString();
  EXPECT_EQ(*db->QueryText("PRAGMA synchronous"), "2");  // FULL
  EXPECT_EQ(*db->QueryText("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(*db->QueryText("PRAGMA busy_timeout"), "5000");
  EXPECT_EQ(*db->QueryText("PRAGMA journal_mode"), "wal");
  auto read = OpenReadConnection(dir.File("audit.db"), 250);
  ASSERT_TRUE(read.ok()) << read.status().ToString();
  EXPECT_EQ(*read->QueryText("PRAGMA foreign_keys"), "1");
  EXPECT_EQ(*read->QueryText("PRAGMA busy_timeout"), "250");
}

TEST(Schema, ReopeningMigratesNothingAndKeepsData) {
  TempDir dir;
  FakeEnv env;
  {
    auto store = OpenOrDie(dir.File("audit.db"), &env);
    ASSERT_TRUE(store->Commit(Batch().AddEvent("login", "", "vendor-a", "addr=10.0.0.1")).ok());
  }
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  EXPECT_EQ(store->Head()->seq, 1);
}

TEST(Schema, EventsRefuseUpdateAndDelete) {
  TempDir dir;
  FakeEnv env;
  auto store = OpenOrDie(dir.File("audit.db"), &env);
  ASSERT_TRUE(store->Commit(Batch().AddEvent("login", "", "vendor-a", "")).ok());
  RawDb raw(dir.File("audit.db"));
  EXPECT_EQ(raw.Exec("UPDATE events SET detail = 'x'"), SQLITE_CONSTRAINT);
  EXPECT_TRUE(Contains(raw.last_error(), "append-only"));
  EXPECT_EQ(raw.Exec("DELETE FROM events"), SQLITE_CONSTRAINT);
  EXPECT_EQ(raw.Text("SELECT count(*) FROM events"), "1");
}

TEST(Schema, NewerDatabaseIsRefusedClearly) {
  TempDir dir;
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  RawDb(dir.File("audit.db")).Exec("PRAGMA user_version = 99");
  for (bool read_only : {false, true}) {
    auto store = AuditStore::Open(dir.File("audit.db"), &env,
                                  read_only ? testing::ReadOnly() : AuditStore::Options{});
    ASSERT_FALSE(store.ok());
    const std::string& msg = store.status().message();
    EXPECT_TRUE(Contains(msg, "schema version 99")) << msg;
    EXPECT_TRUE(Contains(msg, "newer than this fordeler knows (3)")) << msg;
    EXPECT_TRUE(Contains(msg, dir.File("audit.db"))) << msg;
  }
}

TEST(Schema, ADatabaseThatCannotBeOpenedSaysWhy) {
  TempDir dir;
  FakeEnv env;
  const std::string path = dir.File("missing-folder/audit.db");
  auto store = AuditStore::Open(path, &env);
  ASSERT_FALSE(store.ok());
  const std::string& msg = store.status().message();
  EXPECT_TRUE(Contains(msg, path)) << msg;
  EXPECT_TRUE(Contains(msg, "unable to open database file (No such file or directory)")) << msg;
}

// Version 2 adds the indexes of the operator's queries to a version 1 database in place; version 3
// then replaces the index of every event by kind and account with partial ones.
TEST(Schema, MigratesVersionOneToTheCurrentVersion) {
  TempDir dir;
  auto db = MigratedFrom(dir,
                         "DROP INDEX deliveries_delivered; DROP INDEX events_receipts; "
                         "DROP INDEX events_logins; DROP INDEX events_alerts; "
                         "DROP INDEX events_route_watches; PRAGMA user_version = 1");
  ASSERT_NE(db, nullptr);
  RawDb& raw = *db;
  EXPECT_EQ(raw.Text("PRAGMA user_version"), std::to_string(sql::CurrentVersion()));
  EXPECT_EQ(raw.Text("SELECT group_concat(name, ' ') FROM (SELECT name FROM sqlite_schema WHERE "
                     "name IN ('deliveries_delivered', 'events_kind_account', 'events_receipts', "
                     "'events_logins', 'events_alerts', 'events_route_watches') ORDER BY name)"),
            "deliveries_delivered events_alerts events_logins events_receipts "
            "events_route_watches");
}

// A version 2 database keeps its events and loses only the index by kind and account.
TEST(Schema, MigratesVersionTwoToThree) {
  TempDir dir;
  auto db = MigratedFrom(dir,
                         "DROP INDEX events_receipts; DROP INDEX events_logins; "
                         "DROP INDEX events_alerts; DROP INDEX events_route_watches; "
                         "CREATE INDEX events_kind_account ON events (kind, account, time); "
                         "INSERT INTO events VALUES (1, '2026-01-01T00:00:00.000Z', 'login', '', "
                         "'kmd', '', '', 'h1'); PRAGMA user_version = 2");
  ASSERT_NE(db, nullptr);
  RawDb& raw = *db;
  EXPECT_EQ(raw.Text("PRAGMA user_version"), "3");
  EXPECT_EQ(raw.Text("SELECT count(*) FROM sqlite_schema WHERE name = 'events_kind_account'"), "0");
  EXPECT_EQ(raw.Text("SELECT MAX(time) FROM events WHERE kind = 'login' AND account = 'kmd'"),
            "2026-01-01T00:00:00.000Z");
}

// Each look-up of events by kind reads its own partial index, not the whole table: the query
// must name the kind exactly as the index's WHERE does.
TEST(Schema, EventLookupsByKindUseTheirIndex) {
  TempDir dir;
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  RawDb raw(dir.File("audit.db"));
  const std::pair<const char*, const char*> cases[] = {
      {sql::kSelectLastReceipt, "events_receipts"},
      {sql::kSelectLastLogin, "events_logins"},
      {sql::kSelectAlertRecorded, "events_alerts"},
      {sql::kSelectRouteWatched, "events_route_watches"},
  };
  for (const auto& [query, index] : cases) {
    const std::string plan = raw.QueryPlan(query);
    EXPECT_NE(plan.find(std::string("INDEX ") + index), std::string::npos) << query << plan;
    EXPECT_EQ(plan.find("SCAN events"), std::string::npos) << query << plan;
  }
}

// The rescan for pickups fordelerd did not see reads the deliveries still `delivered` off
// deliveries_state, in key order without a sort: never the whole deliveries table.
TEST(Schema, TheDeliveredDeliveriesAreReadOffTheirIndexWithoutASort) {
  TempDir dir;
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  RawDb raw(dir.File("audit.db"));
  const std::string plan = raw.QueryPlan(sql::kSelectAllDelivered);
  EXPECT_NE(plan.find("INDEX deliveries_state (state=?)"), std::string::npos) << plan;
  EXPECT_EQ(plan.find("TEMP B-TREE"), std::string::npos) << plan;
}

TEST(Schema, ReadOnlyOpenOfAMissingFileIsNotFoundNamingThePath) {
  TempDir dir;
  FakeEnv env;
  auto store = AuditStore::Open(dir.File("nope.db"), &env, testing::ReadOnly());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kNotFound);
  EXPECT_TRUE(Contains(store.status().message(), dir.File("nope.db")));
  struct stat st;
  EXPECT_NE(stat(dir.File("nope.db").c_str(), &st), 0) << "read-only open created the file";
}

TEST(Schema, ReadOnlyOpenOfSomethingElseSaysSo) {
  TempDir dir;
  FakeEnv env;
  std::ofstream(dir.File("notes.txt")) << "this is not a database, just words words words\n";
  auto store = AuditStore::Open(dir.File("notes.txt"), &env, testing::ReadOnly());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), "not a database")) << store.status().ToString();

  RawDb(dir.File("empty.db")).Exec("CREATE TABLE t (x)");
  store = AuditStore::Open(dir.File("empty.db"), &env, testing::ReadOnly());
  ASSERT_FALSE(store.ok());
  EXPECT_TRUE(Contains(store.status().message(), "no audit schema")) << store.status().ToString();
}

TEST(Schema, ReadOnlyOpenOfALockedDatabaseSaysItIsLocked) {
  TempDir dir;
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  RawDb holder(dir.File("audit.db"));
  // An exclusive locking-mode connection keeps every other connection out, readers included.
  ASSERT_EQ(holder.Exec("PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE;"), SQLITE_OK);
  auto store = AuditStore::Open(dir.File("audit.db"), &env, testing::BusyTimeout(50, true));
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.status().code(), Status::Code::kUnavailable) << store.status().ToString();
  EXPECT_TRUE(Contains(store.status().message(), "locked")) << store.status().ToString();
}

TEST(Schema, ReadOnlyStoreRefusesWrites) {
  TempDir dir;
  FakeEnv env;
  OpenOrDie(dir.File("audit.db"), &env).reset();
  auto store = OpenOrDie(dir.File("audit.db"), &env, testing::ReadOnly());
  Status s = store->Commit(Batch().AddEvent("login", "", "a", ""));
  EXPECT_EQ(s.code(), Status::Code::kPermissionDenied);
  EXPECT_EQ(store->Head()->seq, 0);
  EXPECT_EQ(store->commit_count(), 0);
}

}  // namespace
}  // namespace fordeler
