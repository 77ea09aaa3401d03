// The commands that change things (contract §10), each asked of the running fordelerd over its
// control socket (cli/control_client.h), which records them in the audit log:
//   retry UUID                        run an unfinished transfer's next step now
//   recall UUID [--recipient ID]      withdraw deliveries not yet picked up
//   redeliver UUID --recipient ID     place the transfer again in ID's /IN, from the spool
//   quarantine release UUID           put a rejected pair back into the sender's /OUT
//   quarantine purge UUID             delete a rejected pair's quarantine folder
// and one that only reads:
//   quarantine list                   rejected transfers whose quarantine folder still exists
//
// Output: the daemon's message (table form) or its whole reply object (--json). Exit 0 when
// done; 1 when refused (no such transfer, wrong state), when the daemon is not running or failed;
// 2 for usage (an argument that is no UUID) or configuration errors.
// quarantine list --json: [{uuid, sender, name, error_code, error_name, error_description,
// received_at, folder, files}].
#pragma once

#include <string>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"
#include "config/config.h"

namespace fordeler::cli {

// Sends `request` to the daemon of `config` and prints the outcome; returns the exit status.
int AskDaemon(const Config& config, const Json& request, bool json, const Io& io);

// Streams the rejected transfers with a quarantine folder under `storage_root`.
int ListQuarantine(AuditStore& audit, const std::string& storage_root, bool json, const Io& io);

Command AddRetryCommand(CLI::App& parent, const GlobalOptions& global);
Command AddRecallCommand(CLI::App& parent, const GlobalOptions& global);
Command AddRedeliverCommand(CLI::App& parent, const GlobalOptions& global);
Command AddQuarantineCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
