// A thin RAII layer over the SQLite C API: a connection (Db) and a prepared statement (Stmt), with
// SQLite result codes turned into Status. Neither is thread-safe: a connection is used by one
// thread at a time (connections are opened SQLITE_OPEN_NOMUTEX).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

struct sqlite3;
struct sqlite3_stmt;

namespace fordeler {

// A Status for SQLite result code `rc` on `db` (which may be null): busy and locked become
// kUnavailable, read-only and permission errors kPermissionDenied, a full disk kNoSpace, I/O
// errors kIoError, constraint and type errors kInvalidArgument, anything else kInternal.
// The message is "<context>: <sqlite message>".
Status SqliteStatus(sqlite3* db, int rc, std::string_view context);

// True for errors caused by one batch's content (a constraint, a type mismatch, too big): the
// batch is at fault, not the database, and retrying it cannot help.
bool IsBatchError(int rc);

class Stmt;

class Db {
 public:
  Db() = default;
  ~Db();
  Db(Db&& other) noexcept : db_(other.db_) { other.db_ = nullptr; }
  Db& operator=(Db&& other) noexcept;
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  // Opens `path` with SQLITE_OPEN_* `flags` (NOMUTEX and extended result codes are added).
  static Result<Db> Open(const std::string& path, int flags);

  // Runs one or more statements that return no rows of interest.
  Status Exec(const std::string& sql);
  // Runs `sql` and returns its first row's first column as text ("" without a row).
  Result<std::string> QueryText(const std::string& sql);
  Result<Stmt> Prepare(std::string_view sql, bool persistent = false);
  void SetBusyTimeout(int ms);
  bool autocommit() const;  // false while a transaction is open
  int64_t changes() const;  // rows changed by the last INSERT, UPDATE or DELETE

  sqlite3* get() const { return db_; }

 private:
  explicit Db(sqlite3* db) : db_(db) {}
  sqlite3* db_ = nullptr;
};

// A prepared statement. Parameter indexes are 1-based, column indexes 0-based (as in SQLite).
class Stmt {
 public:
  Stmt() = default;
  ~Stmt();
  Stmt(Stmt&& other) noexcept : db_(other.db_), stmt_(other.stmt_) { other.stmt_ = nullptr; }
  Stmt& operator=(Stmt&& other) noexcept;
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;

  void Bind(int i, std::string_view text);
  void Bind(int i, int64_t value);
  void BindNull(int i);
  void BindOptional(int i, const std::optional<std::string>& text);  // NULL when absent

  // Steps once: true with a row, false when done. A failure is returned as the status; its SQLite
  // code is in *rc when `rc` is given.
  Result<bool> Step(int* rc = nullptr);
  // Steps to completion, for statements without rows.
  Status Run(int* rc = nullptr);
  // Resets the statement and clears its bindings, for the next use.
  void Reset();

  bool IsNull(int col) const;
  int64_t Int(int col) const;
  std::string Text(int col) const;
  // The column's text without a copy: valid until the statement steps again or is reset.
  std::string_view TextView(int col) const;
  std::optional<std::string> OptionalText(int col) const;

 private:
  friend class Db;
  Stmt(sqlite3* db, sqlite3_stmt* stmt) : db_(db), stmt_(stmt) {}
  sqlite3* db_ = nullptr;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace fordeler
