// `fordeler audit verify [--head SEQ:HASH] [--json]` (contract §10): walks the hash chain of the
// audit events and checks the transfers' digests against it (AuditStore::Verify). OK: "audit log
// OK: N events, head SEQ HASH", then a line on the file digests checked, exit 0. Broken: "audit
// log BROKEN at seq N: <problem>" (the first bad row; a transfer row whose sha256 or size differs
// from its events is named with the column), exit 1. A --head that is not SEQ:HASH (decimal, 64
// hex digits) is a usage error, exit 2.
// --json: {ok, events, digests, head: {seq, hash}, first_bad_seq, problem, transfer} (the last
// three null when ok; transfer also when the problem is not a transfer's row).
#pragma once

#include <optional>
#include <string>

#include "audit/audit_store.h"
#include "cli/cli_support.h"
#include "cli/command.h"

namespace fordeler::cli {

// Parses "SEQ:HASH", and "0:" (the head fordelerd logs for an empty log, which every chain
// extends); false for anything else.
bool ParseChainHead(const std::string& text, ChainHead* head);

int VerifyAudit(AuditStore& audit, const std::optional<ChainHead>& head, bool json, const Io& io);

Command AddAuditCommand(CLI::App& parent, const GlobalOptions& global);

}  // namespace fordeler::cli
