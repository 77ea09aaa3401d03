// VerifyLog: the walk of `fordeler audit verify` (AuditStore::Verify) on one read connection,
// so in one snapshot: every event in seq order through the hash chain (ChainVerifier), and each
// transfer's sha256 and size against the digest fields of its events (DigestCheck, which reads
// the transfers rows beside the events). Stops at the first bad row.
#pragma once

#include <optional>

#include "audit/audit_store.h"
#include "audit/sqlite.h"

namespace fordeler {

Result<VerifyReport> VerifyLog(Db& db, const std::optional<ChainHead>& head);

}  // namespace fordeler
