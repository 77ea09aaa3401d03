// Opening audit connections and keeping the schema current: pragmas, the user_version check and
// the migrations of sql.cc.
#pragma once

#include <string>

#include "audit/sqlite.h"
#include "core/status.h"

namespace fordeler {

// Opens the writer's connection to `path` (created if missing) in WAL mode with
// synchronous=FULL, foreign keys on and `busy_ms` of busy time-out, and migrates the schema to
// sql::CurrentVersion() in one transaction. Fails with a clear message for a database newer than
// this code.
Result<Db> OpenWriteConnection(const std::string& path, int busy_ms);

// Opens a read-only connection to an existing database (foreign keys on, `busy_ms` of busy
// time-out) and checks that its schema version is one this code knows. A missing file is
// kNotFound naming `path`; a database locked past the time-out is kUnavailable.
Result<Db> OpenReadConnection(const std::string& path, int busy_ms);

// The database's user_version.
Result<int> SchemaVersion(Db& db);

}  // namespace fordeler
