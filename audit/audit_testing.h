// Helpers for the audit tests: a temporary directory, a settable clock, a raw sqlite3 connection
// and sample records.
#pragma once

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>

#include "audit/audit_store.h"
#include "core/env.h"

namespace fordeler::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "audit_test.XXXXXX").string();
    path_ = mkdtemp(tmpl.data()) != nullptr ? tmpl : "";
    EXPECT_FALSE(path_.empty());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The whole of the file at `path`; "" when it cannot be read.
inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A clock that stands still unless moved; thread-safe.
class FakeEnv : public Env {
 public:
  std::chrono::system_clock::time_point Now() const override {
    return std::chrono::system_clock::time_point(std::chrono::milliseconds(ms_.load()));
  }
  void Set(std::chrono::system_clock::time_point t) {
    ms_ = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  }
  void Advance(std::chrono::milliseconds d) { ms_ += d.count(); }

 private:
  std::atomic<int64_t> ms_{1'795'000'000'000};  // 2026-11-18
};

// A plain sqlite3 connection, for looking at (and tampering with) the file behind the store.
class RawDb {
 public:
  explicit RawDb(const std::string& path) {
    EXPECT_EQ(sqlite3_open(path.c_str(), &db_), SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
  }
  ~RawDb() { sqlite3_close(db_); }
  int Exec(const std::string& sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err);
    if (err != nullptr) {
      last_error_ = err;
      sqlite3_free(err);
    }
    return rc;
  }
  std::string Text(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    std::string out;
    if (sqlite3_prepare_v2(db_, sql.c_str(), -1, &st, nullptr) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0) != nullptr) {
      out = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
    return out;
  }
  // SQLite's plan for `sql` (EXPLAIN QUERY PLAN): each step's detail followed by "; ", or
  // "cannot prepare: <error>" (which names no index, so an assertion about the plan fails).
  std::string QueryPlan(const std::string& sql) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(db_, ("EXPLAIN QUERY PLAN " + sql).c_str(), -1, &st, nullptr) !=
        SQLITE_OK) {
      return std::string("cannot prepare: ") + sqlite3_errmsg(db_);
    }
    std::string plan;
    while (sqlite3_step(st) == SQLITE_ROW) {
      plan += reinterpret_cast<const char*>(sqlite3_column_text(st, 3));
      plan += "; ";
    }
    sqlite3_finalize(st);
    return plan;
  }
  const std::string& last_error() const { return last_error_; }
  sqlite3* get() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::string last_error_;
};

inline TimePoint At(int64_t ms_since_epoch) {
  return TimePoint(std::chrono::milliseconds(ms_since_epoch));
}

inline TransferRecord SampleTransfer(const std::string& uuid, TimePoint received) {
  TransferRecord t;
  t.uuid = uuid;
  t.sender = "vendor-a";
  t.trigger_name = "orders.xml.trigger";
  t.name = "orders.xml";
  t.route_ids = {"r1"};
  t.trigger_xml = "<trigger/>";
  t.received_at = received;
  return t;
}

inline AuditStore::Options ReadOnly() {
  AuditStore::Options o;
  o.read_only = true;
  return o;
}

inline AuditStore::Options BusyTimeout(int ms, bool read_only = false) {
  AuditStore::Options o;
  o.read_only = read_only;
  o.busy_timeout_ms = ms;
  return o;
}

inline DeliveryRecord Delivery(std::string uuid, std::string recipient, std::string name,
                               DeliveryState state) {
  DeliveryRecord d;
  d.transfer_uuid = std::move(uuid);
  d.recipient = std::move(recipient);
  d.name_in_in = std::move(name);
  d.state = state;
  return d;
}

// A filter set up by `set`: Filter([](auto& f) { f.limit = 5; }).
template <typename Set>
TransferFilter Filter(Set set) {
  TransferFilter f;
  set(f);
  return f;
}

inline std::unique_ptr<AuditStore> OpenOrDie(const std::string& path, Env* env,
                                             AuditStore::Options options = {}) {
  auto store = AuditStore::Open(path, env, options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  return store.ok() ? std::move(store).value() : nullptr;
}

}  // namespace fordeler::testing
