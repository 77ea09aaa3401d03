// The settings fordelerd takes only at restart (docs/operations.md, "Configuration"): the
// listening sockets, host keys and thread counts, the storage root, the database and the whole
// [http] table. A reload (SIGHUP) names those that differ (event=reload_partial) and applies the
// new configuration with them as the daemon started, so that no part of the daemon follows a new
// value the others do not. Pure functions of their arguments; thread-compatible.
#pragma once

#include <memory>
#include <string>

#include "config/config.h"

namespace fordeler {

// The restart-only settings whose values in `fresh` differ from `started`'s, comma-separated
// in a fixed order ("server.listen,http.password_hash"); "" when none do. Names only, never
// values: a password hash is no log's business.
std::string RestartOnlyChanges(const Config& fresh, const Config& started);

// `fresh` with every restart-only setting as in `started`.
std::shared_ptr<const Config> KeepRestartOnly(const Config& fresh, const Config& started);

}  // namespace fordeler
