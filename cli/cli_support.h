// What the `fordeler` commands share: loading the configuration and opening the audit log the
// way every command reports their failures (exit status 2, contract §10), the forms of times and
// optional values in tables and JSON, and the --json flag.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <ostream>
#include <string>

#include <nlohmann/json.hpp>

#include "audit/audit_store.h"
#include "cli/command.h"
#include "config/config.h"

namespace fordeler::cli {

using Json = nlohmann::ordered_json;

// Where a command writes, and whether its tables may use colour (stdout is a terminal).
struct Io {
  std::ostream& out;
  std::ostream& err;
  bool color = false;
};

inline constexpr size_t kTableWidth = 80;

// Loads the configuration; on errors prints each as file:line: message on `err` and returns null.
std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err);

// Opens the configured audit database read-only (the daemon may be running: WAL lets both read).
// On failure says so on `err`, naming the path and the reason (missing, locked, too new), and
// returns null.
std::unique_ptr<AuditStore> OpenAuditOrReport(const Config& config, std::ostream& err);

// "2026-11-22 02:00:05Z" (UTC, to the second) for tables; "-" when unset.
std::string TableTime(std::optional<TimePoint> t);
// RFC 3339 UTC with milliseconds, or null.
Json JsonTime(std::optional<TimePoint> t);
Json JsonText(const std::optional<std::string>& s);  // the string, or null
// `doc` as JSON text (indented by `indent`, or on one line when -1). A name from the file system
// need not be UTF-8: each byte of one that is not becomes U+FFFD, as JSON text must be UTF-8.
std::string DumpJson(const Json& doc, int indent = -1);

// Adds --json to a command.
void AddJsonFlag(CLI::App* app, bool* json);

// True when fd 1 is a terminal (colour allowed).
bool StdoutIsTerminal();

// The current wall-clock time; commands take `now` as a parameter so tests can inject it.
inline TimePoint Now() { return std::chrono::system_clock::now(); }

}  // namespace fordeler::cli
