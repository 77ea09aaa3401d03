// The events hash chain.
//
// Canonical form. Each event row's `hash` is the lowercase hex SHA-256 of the UTF-8 bytes
//
//   prev_hash + "\n" + seq + "\n" + time + "\n" + kind + "\n" + transfer_uuid + "\n" +
//   account + "\n" + detail
//
// where prev_hash is the previous row's hash in hex ("" for seq 1), seq is decimal without
// leading zeros, time is the stored RFC 3339 text ("2026-11-22T02:00:00.000Z"), transfer_uuid and
// account are "" when absent, and there is no trailing newline. The row also stores prev_hash.
// So that the form is unambiguous, kind, transfer_uuid and account never contain "\n" (the store
// refuses such an event); detail, the last field, may hold anything. seq starts at 1 and grows by
// exactly 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "audit/audit_store.h"

namespace fordeler {

std::string EventHash(std::string_view prev_hash, int64_t seq, std::string_view time,
                      std::string_view kind, std::string_view transfer_uuid,
                      std::string_view account, std::string_view detail);

// True when the event fields may go into the chain (no "\n" in kind, transfer_uuid, account).
bool ChainableEvent(const EventRecord& e);

// The digest fields. A transfer's sha256 and size live in its `transfers` row, which later steps
// rewrite in place, so the events that place or refuse its data also carry them, in the chain:
// `delivered`, `redelivered`, `rejected`, and the `picked_up` of a delivery fetched before it was
// recorded end their detail with " sha256=<hex> size=<bytes>" (each field once it is known).
// Verify checks each transfer's columns against its events' fields (DigestCheck). Events written
// before fordeler did this have no such fields: there is nothing to compare.
//
// " sha256=… size=…" for `t` (what it knows of the two), to append to an event's detail.
std::string DigestFields(const TransferRecord& t);

// The digest fields of a chained event, as written (the size in decimal); none for other kinds
// and for details without them. The detail is read as key=value fields, a value either one word
// or "…" (LogValue), so a quoted name holding " sha256=" is not taken for the field. The claim's
// views point into `detail`, which must outlive it.
struct DigestClaim {
  std::optional<std::string_view> sha256;
  std::optional<std::string_view> size;
  bool empty() const { return !sha256 && !size; }
};
DigestClaim DigestFieldsOf(std::string_view kind, std::string_view detail);

// Checks rows fed in seq order; stops judging at the first bad one.
class ChainVerifier {
 public:
  explicit ChainVerifier(std::optional<ChainHead> head) : head_(std::move(head)) {}

  // One stored row: its fields as stored (time as text).
  void Row(int64_t seq, std::string_view time, std::string_view kind,
           std::string_view transfer_uuid, std::string_view account, std::string_view detail,
           std::string_view prev_hash, std::string_view hash);
  // After the last row: checks the chain reached the expected head.
  VerifyReport Finish();

  bool failed() const { return !report_.ok; }
  // Row `seq` is bad for a reason another check found (DigestCheck); `transfer` is the transfer
  // whose row it is about, if any. Judging stops here.
  void Fail(int64_t seq, std::string problem, std::string transfer = "");

 private:
  std::optional<ChainHead> head_;
  VerifyReport report_;
  int64_t expected_seq_ = 1;
  std::string prev_hash_;
  std::optional<std::string> hash_at_head_;
};

}  // namespace fordeler
