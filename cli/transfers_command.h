// `fordeler transfers [--since T] [--state S] [--sender A] [--route R] [--data-area D]
// [--limit N] [--json]` and `fordeler show UUID [--json]` (contract §10), from the audit log.
//
// transfers: newest first, at most --limit (default 100; 0: no limit), streamed row by row as
// the database yields them (never all in memory). --since takes an RFC 3339 time or a duration
// back from now ("24h", "7d", "1h30m"). A bad filter value is a usage error (exit 2). Table: one
// line per transfer (uuid, state, error code, received) and an indented line (sender → name,
// data area). --json: an array of {uuid, state, sender, name, data_area, error_code,
// received_at} (data_area and error_code null when none).
//
// show: the transfer's whole history: its record, every delivery with its pickup, every event,
// the receipt sent. --json: the transfer's fields as in `transfers` plus trigger_name,
// senders_file_id, size, sha256, authority, routes, step, error_name, error_description,
// updated_at, receipt (XML or null), trigger (XML), deliveries [{recipient, name, state,
// delivered_at, picked_up_at, expired_at, recalled_at}] and events [{seq, time, kind, account,
// detail}]. Exit 2 when the argument is no UUID, 1 when there is no such transfer.
#pragma once

#include <optional>
#include <string>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"

namespace fordeler::cli {

struct TransferOptions {
  std::optional<std::string> since, state, sender, route, data_area;
  int limit = 100;
};

// Turns the command-line filters into a TransferFilter; false with *error for a bad value.
bool MakeTransferFilter(const TransferOptions& options, TimePoint now, TransferFilter* filter,
                        std::string* error);

Json TransferSummaryJson(const TransferRecord& t);

// The commands' work on an open store; return the exit status.
int ListTransfersTo(AuditStore& audit, const TransferFilter& filter, bool json, const Io& io);
int ShowTransfer(AuditStore& audit, const std::string& uuid, bool json, const Io& io);

Command AddTransfersCommand(CLI::App& parent, const GlobalOptions& global);
Command AddShowCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
