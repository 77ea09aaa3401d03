// `fordeler explain TRIGGER-FILE --as ACCOUNT [--json]` (contract §10): what fordeler would do
// with this trigger file if ACCOUNT uploaded it, without sending anything. The file is parsed as
// the pipeline parses it (metadata/trigger_parser.h), FileName is checked against the file's own
// name when that is <name>.trigger (a sample called trigger.xml is resolved without that check,
// and the answer says so), and the trigger is resolved against the configuration
// (routing/resolver.h). Size and checksum need the data file and are not checked here.
//
// Accepted: the data area, authority, routes and recipients, exit 0. Rejected: the error code,
// its name and the description the receipt would carry, exit 1. An unreadable file or an
// unknown --as account: exit 2.
// --json: {accepted, trigger_file, account, file_name, name_checked, data_area, data_area_name,
// authority, routes, recipients, error_code, error_name, error_description} (null / [] where not
// known).
#pragma once

#include <string>

#include "cli/cli_support.h"
#include "cli/command.h"
#include "config/config.h"
#include "routing/resolver.h"

namespace fordeler::cli {

struct Explanation {
  bool accepted = false;
  std::string file_name;     // from the trigger, "" when it did not parse
  bool name_checked = true;  // FileName compared with the file's name (<name>.trigger)
  Resolution resolution;     // when accepted
  Rejection rejection;       // when not
};

// `trigger_name` is the file's own name (its last path component).
Explanation ExplainTrigger(const Config& config, const std::string& account,
                           const std::string& trigger_name, const std::string& bytes);

int RunExplain(const std::string& config_path, const std::string& trigger_path,
               const std::string& account, bool json, const Io& io);

Command AddExplainCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
