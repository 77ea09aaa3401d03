#include "audit/sqlite.h"

#include <sqlite3.h>

#include <cstring>
#include <string>

namespace fordeler {

Status SqliteStatus(sqlite3* db, int rc, std::string_view context) {
  std::string msg(context);
  msg += ": ";
  // The connection's message describes the last error on it; fall back to the code's text.
  msg +=
      db != nullptr && sqlite3_extended_errcode(db) == rc ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  // "unable to open database file" alone leaves the operator guessing: add what the OS said.
  if ((rc & 0xff) == SQLITE_CANTOPEN && db != nullptr && sqlite3_system_errno(db) != 0) {
    msg += " (" + std::string(std::strerror(sqlite3_system_errno(db))) + ")";
  }
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Status::Unavailable(std::move(msg));
    case SQLITE_READONLY:
    case SQLITE_PERM:
    case SQLITE_AUTH:
    case SQLITE_CANTOPEN:
      return Status::PermissionDenied(std::move(msg));
    case SQLITE_FULL:
      return Status::FromErrno(ENOSPC, std::move(msg));
    case SQLITE_IOERR:
      return Status::FromErrno(EIO, std::move(msg));
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return Status::InvalidArgument(std::move(msg));
    default:
      return Status::Internal(std::move(msg));
  }
}

bool IsBatchError(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
    case SQLITE_MISMATCH:
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return true;
    default:
      return false;
  }
}

Db::~Db() { sqlite3_close_v2(db_); }

Db& Db::operator=(Db&& other) noexcept {
  if (this != &other) {
    sqlite3_close_v2(db_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}

Result<Db> Db::Open(const std::string& path, int flags) {
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // closes on failure too
  if (rc != SQLITE_OK) return SqliteStatus(raw, rc, "open audit database " + path);
  sqlite3_extended_result_codes(raw, 1);
  return db;
}

Status Db::Exec(const std::string& sql) {
  int rc = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "audit database");
  return Status::Ok();
}

Result<std::string> Db::QueryText(const std::string& sql) {
  auto stmt = Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  auto row = stmt->Step();
  if (!row.ok()) return row.status();
  return *row ? stmt->Text(0) : std::string();
}

Result<Stmt> Db::Prepare(std::string_view sql, bool persistent) {
  sqlite3_stmt* raw = nullptr;
  int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                              persistent ? SQLITE_PREPARE_PERSISTENT : 0, &raw, nullptr);
  if (rc != SQLITE_OK) return SqliteStatus(db_, rc, "prepare");
  return Stmt(db_, raw);
}

void Db::SetBusyTimeout(int ms) { sqlite3_busy_timeout(db_, ms); }

bool Db::autocommit() const { return sqlite3_get_autocommit(db_) != 0; }

int64_t Db::changes() const { return sqlite3_changes64(db_); }

Stmt::~Stmt() { sqlite3_finalize(stmt_); }

Stmt& Stmt::operator=(Stmt&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    db_ = other.db_;
    stmt_ = other.stmt_;
    other.stmt_ = nullptr;
  }
  return *this;
}

void Stmt::Bind(int i, std::string_view text) {
  sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
}

void Stmt::Bind(int i, int64_t value) { sqlite3_bind_int64(stmt_, i, value); }

void Stmt::BindNull(int i) { sqlite3_bind_null(stmt_, i); }

void Stmt::BindOptional(int i, const std::optional<std::string>& text) {
  if (text) {
    Bind(i, std::string_view(*text));
  } else {
    BindNull(i);
  }
}

Result<bool> Stmt::Step(int* rc_out) {
  int rc = sqlite3_step(stmt_);
  if (rc_out != nullptr) *rc_out = rc;
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  // With sqlite3_prepare_v3 the step's own code is the detailed one.
  return SqliteStatus(db_, rc, "audit database");
}

Status Stmt::Run(int* rc) {
  for (;;) {
    auto row = Step(rc);
    if (!row.ok()) return row.status();
    if (!*row) return Status::Ok();
  }
}

void Stmt::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
}

bool Stmt::IsNull(int col) const { return sqlite3_column_type(stmt_, col) == SQLITE_NULL; }

int64_t Stmt::Int(int col) const { return sqlite3_column_int64(stmt_, col); }

std::string Stmt::Text(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(p), n);
}

std::string_view Stmt::TextView(int col) const {
  const unsigned char* p = sqlite3_column_text(stmt_, col);
  int n = sqlite3_column_bytes(stmt_, col);
  return p == nullptr ? std::string_view() : std::string_view(reinterpret_cast<const char*>(p), n);
}

std::optional<std::string> Stmt::OptionalText(int col) const {
  if (IsNull(col)) return std::nullopt;
  return Text(col);
}

}  // namespace fordeler
