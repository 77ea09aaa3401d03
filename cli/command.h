// The shape every `fordeler` command takes, so that adding one (status, transfers, show, retry,
// ...) is one new .h/.cc pair and one line in main.cc's command table.
//
// A command registers a CLI11 subcommand with its own options on the top-level app, and returns a
// Command whose `run` main() calls when that subcommand was given. `run` prints its answer
// (human text, or one JSON document on stdout with --json) and returns the exit status of
// contract §10. Nothing here is thread-safe; the CLI is single-threaded.
#pragma once

#include <functional>
#include <string>

#include <CLI/CLI.hpp>

namespace fordeler::cli {

// Exit statuses of contract §10.
enum ExitCode : int {
  kExitOk = 0,
  kExitBadNews = 1,  // the answer is bad news (status: stuck transfers; audit verify: broken)
  kExitUsage = 2,    // usage or configuration error
};

inline constexpr const char* kDefaultConfigPath = "/etc/fordeler/fordeler.toml";

// Options that stand before (or, thanks to fallthrough, after) the command name.
struct GlobalOptions {
  std::string config_path = kDefaultConfigPath;
};

struct Command {
  CLI::App* app = nullptr;  // the subcommand, owned by the top-level app
  std::function<int()> run;
};

// REQUIRES: `global` outlives the returned Command; it is filled in by parsing before run().
using CommandFactory = Command (*)(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
