#include "audit/schema.h"

#include <sqlite3.h>
#include <sys/stat.h>

#include <cerrno>

#include "audit/sql.h"

namespace fordeler {
namespace {

Status TooNew(const std::string& path, int version) {
  return Status::InvalidArgument("audit database " + path + " has schema version " +
                                 std::to_string(version) + ", newer than this fordeler knows (" +
                                 std::to_string(sql::CurrentVersion()) +
                                 "); run a fordeler at least as new as the one that wrote it");
}

Status Explain(const Status& s, const std::string& path) {
  if (s.code() == Status::Code::kUnavailable) {
    return Status::Unavailable("audit database " + path +
                               " is locked by another process; try again (" + s.message() + ")");
  }
  return s;
}

Status Configure(Db& db, const std::string& path) {
  auto mode = db.QueryText(sql::kJournalModeWal);
  if (!mode.ok()) return Explain(mode.status(), path);
  if (*mode != "wal") {
    return Status::Internal("audit database " + path + " refused WAL journal mode (got " + *mode +
                            ")");
  }
  Status s = db.Exec(sql::kSynchronousFull);
  if (s.ok()) s = db.Exec(sql::kForeignKeysOn);
  return s;
}

// Applies the migrations the database lacks, in one transaction.
Status Migrate(Db& db, const std::string& path) {
  Status s = db.Exec(sql::kBeginImmediate);
  if (!s.ok()) return Explain(s, path);
  auto version = SchemaVersion(db);
  if (!version.ok() || *version > sql::CurrentVersion()) {
    db.Exec(sql::kRollback);
    return version.ok() ? TooNew(path, *version) : version.status();
  }
  for (const sql::Migration& m : sql::Migrations()) {
    if (m.version <= *version) continue;
    s = db.Exec(m.sql);
    if (s.ok()) s = db.Exec(sql::SetUserVersion(m.version));
    if (!s.ok()) {
      db.Exec(sql::kRollback);
      return Status::Internal("audit database " + path + ": migration to schema version " +
                              std::to_string(m.version) + " failed: " + s.message());
    }
  }
  s = db.Exec(sql::kCommit);
  if (!s.ok()) {
    db.Exec(sql::kRollback);
    return Explain(s, path);
  }
  return Status::Ok();
}

}  // namespace

Result<int> SchemaVersion(Db& db) {
  auto text = db.QueryText(sql::kUserVersion);
  if (!text.ok()) return text.status();
  return std::stoi(text->empty() ? "0" : *text);
}

Result<Db> OpenWriteConnection(const std::string& path, int busy_ms) {
  auto db = Db::Open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  if (!db.ok()) return db.status();
  db->SetBusyTimeout(busy_ms);
  Status s = Configure(*db, path);
  if (s.ok()) s = Migrate(*db, path);
  if (!s.ok()) return s;
  return std::move(db).value();
}

Result<Db> OpenReadConnection(const std::string& path, int busy_ms) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return Status::NotFound("audit database " + path + " does not exist");
    return Status::FromErrno(errno, "audit database " + path);
  }
  auto db = Db::Open(path, SQLITE_OPEN_READONLY);
  if (!db.ok()) return db.status();
  db->SetBusyTimeout(busy_ms);
  Status s = db->Exec(sql::kForeignKeysOn);
  if (!s.ok()) return s;
  auto version = SchemaVersion(*db);
  if (!version.ok()) {
    if (version.status().code() == Status::Code::kUnavailable) {
      return Explain(version.status(), path);
    }
    return Status::Internal("audit database " + path +
                            " cannot be read: " + version.status().message());
  }
  if (*version > sql::CurrentVersion()) return TooNew(path, *version);
  if (*version == 0) {
    return Status::InvalidArgument("audit database " + path +
                                   " has no audit schema (is it a fordeler audit database?)");
  }
  return std::move(db).value();
}

}  // namespace fordeler
