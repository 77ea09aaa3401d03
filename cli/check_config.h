// `fordeler [--config FILE] check-config [--json]`: loads the configuration the way fordelerd
// does (config/config.h LoadConfig) and says whether it is good.
//
// Good: a summary on stdout (counts of accounts, data areas and routes, the listen addresses),
// exit 0. Bad: every error as `file:line: message` on stderr, exit 2. With --json, one JSON object
// on stdout either way: {"ok", "config", "errors": [{"file", "line", "message"}], "accounts",
// "data_areas", "routes", "listen"}; the counts and listen are null when the configuration is
// bad, and line is 0 for an error about a whole file.
#pragma once

#include <ostream>
#include <string>

#include "cli/command.h"

namespace fordeler::cli {

Command AddCheckConfigCommand(CLI::App& parent, const GlobalOptions& global);

// The command's work, apart from option parsing: returns the exit status.
int RunCheckConfig(const std::string& config_path, bool json, std::ostream& out, std::ostream& err);

}  // namespace fordeler::cli
