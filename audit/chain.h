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

 private:
  void Fail(int64_t seq, std::string problem);

  std::optional<ChainHead> head_;
  VerifyReport report_;
  int64_t expected_seq_ = 1;
  std::string prev_hash_;
  std::optional<std::string> hash_at_head_;
};

}  // namespace fordeler
