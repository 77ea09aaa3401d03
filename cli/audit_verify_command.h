// `fordeler audit verify [--head SEQ:HASH] [--json]` (contract §10): walks the hash chain of the
// audit events (AuditStore::Verify). OK: "audit log OK: N events, head SEQ HASH", exit 0.
// Broken: "audit log BROKEN at seq N: <problem>" (the first bad row), exit 1. A --head that is
// not SEQ:HASH (decimal, 64 hex digits) is a usage error, exit 2.
// --json: {ok, events, head: {seq, hash}, first_bad_seq, problem} (the last two null when ok).
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
