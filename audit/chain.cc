#include "audit/chain.h"

#include <algorithm>
#include <charconv>

#include "core/names.h"
#include "core/sha256.h"

namespace fordeler {

std::string EventHash(std::string_view prev_hash, int64_t seq, std::string_view time,
                      std::string_view kind, std::string_view transfer_uuid,
                      std::string_view account, std::string_view detail) {
  // One context per thread, set up once: setting up a context took OpenSSL's locks each time,
  // a tenth of `audit verify`.
  thread_local Sha256 sha;
  char seq_text[24];
  auto seq_end = std::to_chars(seq_text, seq_text + sizeof seq_text, seq).ptr;
  bool first = true;
  for (std::string_view field : {prev_hash, std::string_view(seq_text, seq_end - seq_text), time,
                                 kind, transfer_uuid, account, detail}) {
    if (!first) sha.Update("\n", 1);
    sha.Update(field.data(), field.size());
    first = false;
  }
  return ToHex(sha.Finish());
}

bool ChainableEvent(const EventRecord& e) {
  for (const std::string* field : {&e.kind, &e.transfer_uuid, &e.account}) {
    if (field->find('\n') != std::string::npos) return false;
  }
  return true;
}

void ChainVerifier::Row(int64_t seq, std::string_view time, std::string_view kind,
                        std::string_view transfer_uuid, std::string_view account,
                        std::string_view detail, std::string_view prev_hash,
                        std::string_view hash) {
  if (failed()) return;
  ++report_.rows;
  if (seq != expected_seq_) {
    return Fail(expected_seq_, "seq gap: expected " + std::to_string(expected_seq_) + ", found " +
                                   std::to_string(seq));
  }
  if (prev_hash != prev_hash_) {
    return Fail(seq, "prev_hash does not match row " + std::to_string(seq - 1));
  }
  if (EventHash(prev_hash, seq, time, kind, transfer_uuid, account, detail) != hash) {
    return Fail(seq, "hash mismatch");
  }
  if (head_ && head_->seq == seq) hash_at_head_ = std::string(hash);
  prev_hash_.assign(hash);
  ++expected_seq_;
}

VerifyReport ChainVerifier::Finish() {
  if (failed() || !head_ || head_->seq <= 0) return report_;
  int64_t last = expected_seq_ - 1;
  if (!hash_at_head_) {
    Fail(last + 1, "chain ends at seq " + std::to_string(last) + ", before the head seq " +
                       std::to_string(head_->seq) + " (rows cut from the end)");
  } else if (*hash_at_head_ != head_->hash) {
    Fail(head_->seq, "hash at seq " + std::to_string(head_->seq) + " does not match the head");
  }
  return report_;
}

void ChainVerifier::Fail(int64_t seq, std::string problem, std::string transfer) {
  report_.ok = false;
  report_.first_bad_seq = seq;
  report_.problem = std::move(problem);
  report_.transfer = std::move(transfer);
}

std::string DigestFields(const TransferRecord& t) {
  std::string out;
  if (t.sha256) out += " sha256=" + LogValue(*t.sha256);
  if (t.size) out += " size=" + std::to_string(*t.size);
  return out;
}

DigestClaim DigestFieldsOf(std::string_view kind, std::string_view detail) {
  DigestClaim claim;
  if (kind != "delivered" && kind != "redelivered" && kind != "rejected" && kind != "picked_up") {
    return claim;
  }
  if (detail.find(" sha256=") == std::string_view::npos &&
      detail.find(" size=") == std::string_view::npos) {
    return claim;  // most events: no need to read the fields
  }
  for (size_t i = 0; i < detail.size();) {
    size_t eq = detail.find('=', i);
    if (eq == std::string_view::npos) break;
    std::string_view key = detail.substr(i, eq - i);
    size_t end;
    if (eq + 1 < detail.size() && detail[eq + 1] == '"') {  // "…" holds no '"' (LogValue)
      end = detail.find('"', eq + 2);
      if (end == std::string_view::npos) break;
      ++end;
    } else {
      end = std::min(detail.find(' ', eq + 1), detail.size());
    }
    std::string_view value = detail.substr(eq + 1, end - eq - 1);
    if (key == "sha256") claim.sha256 = value;
    if (key == "size") claim.size = value;
    i = end + 1;
  }
  return claim;
}

}  // namespace fordeler
