// `fordeler routes [--json]` and `fordeler accounts [--json]` (contract §10): the configured
// routes and accounts, read from the configuration (accounts also from the audit log: the last
// login). Exit 0, or 2 for a configuration or database error.
//
// routes --json: [{id, data_area, sender, authorities, recipients, defined_at}]
// accounts --json: [{id, authority, it_system, keys: [{type, bits, fingerprint, comment}],
//                    last_login}]  (authority and it_system null when not configured;
//                                   last_login RFC 3339 or null)
#pragma once

#include <string>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"
#include "config/config.h"

namespace fordeler::cli {

void PrintRoutes(const Config& config, bool json, const Io& io);
// `audit` may be null (no last logins then).
Status PrintAccounts(const Config& config, AuditStore* audit, bool json, const Io& io);

int RunRoutes(const std::string& config_path, bool json, const Io& io);
int RunAccounts(const std::string& config_path, bool json, const Io& io);

Command AddRoutesCommand(CLI::App& parent, const GlobalOptions& global);
Command AddAccountsCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
