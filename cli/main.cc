// fordeler: the operator's command-line tool (contract §10). Each command lives in its own
// .h/.cc pair (cli/command.h); this file only wires them to CLI11 and maps parse failures to
// exit status 2 with the usage on stderr.
#include <iostream>
#include <string>
#include <vector>

#include "cli/audit_verify_command.h"
#include "cli/check_config.h"
#include "cli/command.h"
#include "cli/explain_command.h"
#include "cli/list_commands.h"
#include "cli/operator_commands.h"
#include "cli/status_command.h"
#include "cli/transfers_command.h"

namespace {

using fordeler::cli::CommandFactory;

// Every command of the tool, in the order `--help` lists them.
constexpr CommandFactory kCommands[] = {
    fordeler::cli::AddStatusCommand,      fordeler::cli::AddRoutesCommand,
    fordeler::cli::AddAccountsCommand,    fordeler::cli::AddTransfersCommand,
    fordeler::cli::AddShowCommand,        fordeler::cli::AddRetryCommand,
    fordeler::cli::AddRecallCommand,      fordeler::cli::AddRedeliverCommand,
    fordeler::cli::AddQuarantineCommand,  fordeler::cli::AddExplainCommand,
    fordeler::cli::AddCheckConfigCommand, fordeler::cli::AddAuditCommand,
};

// `--json` is an option of each command, so `fordeler --json status` fails to parse: say where it
// goes instead of leaving the operator with "not expected".
std::string JsonHint(const CLI::App& app, int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json") {
      for (int j = i + 1; j < argc; ++j) {
        for (const CLI::App* command : app.get_subcommands({})) {
          if (command->get_name() == argv[j]) {
            return "--json goes after the command: fordeler " + command->get_name() + " --json\n";
          }
        }
      }
      return "";
    }
    if (arg == "--config") {
      ++i;  // its value
    } else if (!arg.starts_with("-")) {
      return "";  // the command came first
    }
  }
  return "";
}

}  // namespace

int main(int argc, char** argv) {
  using namespace fordeler::cli;
  CLI::App app{"fordeler: operator commands for the fordeler SFTP broker", "fordeler"};
  app.fallthrough();  // --config may also follow the command name
  GlobalOptions global;
  app.add_option("--config", global.config_path, "Configuration file")->capture_default_str();
  app.set_version_flag("--version", "fordeler " FORDELER_VERSION);
  app.require_subcommand(0, 1);
  std::vector<Command> commands;
  for (CommandFactory add : kCommands) commands.push_back(add(app, global));
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "fordeler: " << e.what() << "\n"
              << JsonHint(app, argc, argv) << "\n"
              << app.help();
    return kExitUsage;
  }
  for (const Command& command : commands) {
    if (command.app->parsed()) return command.run();
  }
  std::cerr << "fordeler: a command is required\n\n" << app.help();
  return kExitUsage;
}
