#include "audit/digest_check.h"

#include <charconv>

#include "audit/chain.h"
#include "core/names.h"

namespace fordeler {

namespace {

// "transfers.<column> of transfer <uuid> is <stored>, but this event (<kind>) says <claimed>".
std::string Mismatch(std::string_view column, std::string_view uuid, std::string_view stored,
                     std::string_view kind, std::string_view claimed) {
  return "transfers." + std::string(column) + " of transfer " + std::string(uuid) + " is " +
         std::string(stored) + ", but this event (" + std::string(kind) + ") says " +
         std::string(claimed);
}

}  // namespace

Result<std::string> DigestCheck::Check(std::string_view kind, std::string_view transfer_uuid,
                                       std::string_view detail) {
  DigestClaim claim = DigestFieldsOf(kind, detail);
  if (claim.empty() || transfer_uuid.empty()) return std::string();
  auto row = RowOf(transfer_uuid);
  if (!row.ok()) return row.status();
  ++checked_;
  if (*row == nullptr) {
    return "this event (" + std::string(kind) + ") names transfer " + std::string(transfer_uuid) +
           ", which has no row in transfers";
  }
  const Row& r = **row;
  if (claim.sha256 && (!r.has_sha256 || r.sha256 != *claim.sha256)) {
    return Mismatch("sha256", r.uuid, r.has_sha256 ? LogValue(r.sha256) : "NULL", kind,
                    *claim.sha256);
  }
  if (claim.size) {
    int64_t size = 0;
    const char* end = claim.size->data() + claim.size->size();
    bool parsed = std::from_chars(claim.size->data(), end, size).ptr == end;
    if (!parsed || !r.has_size || r.size != size) {
      return Mismatch("size", r.uuid, r.has_size ? std::to_string(r.size) : "NULL", kind,
                      *claim.size);
    }
  }
  return std::string();
}

Result<const DigestCheck::Row*> DigestCheck::RowOf(std::string_view uuid) {
  if (kept_ > 0 && ring_[(kept_ - 1) % kWindow].uuid == uuid) {  // the usual case: no hashing
    return &ring_[(kept_ - 1) % kWindow];
  }
  if (auto it = index_.find(uuid); it != index_.end()) return &ring_[it->second];
  for (size_t i = 0; i < kLookAhead && !at_end_; ++i) {
    Row* slot = FreeSlot();
    auto read = rows_->Next(slot);
    if (!read.ok()) return read.status();
    if (!*read) {
      at_end_ = true;
      break;
    }
    Keep();
    last_rowid_ = slot->rowid;
    if (slot->uuid == uuid) return slot;
  }
  Row* slot = FreeSlot();
  auto found = rows_->Find(uuid, slot);
  if (!found.ok()) return found.status();
  if (!*found) return nullptr;
  Keep();
  if (slot->rowid > last_rowid_) {  // far ahead: the walk goes on from there
    if (Status s = rows_->SeekAfter(slot->rowid); !s.ok()) return s;
    last_rowid_ = slot->rowid;
    at_end_ = false;
  }
  return slot;
}

DigestCheck::Row* DigestCheck::FreeSlot() {
  size_t i = kept_ % kWindow;
  if (auto it = index_.find(ring_[i].uuid); it != index_.end() && it->second == i) {
    index_.erase(it);
  }
  ring_[i].uuid.clear();  // whatever happens next, this slot holds no row of the index
  return &ring_[i];
}

void DigestCheck::Keep() {
  size_t i = kept_++ % kWindow;
  std::string_view key = ring_[i].uuid;
  index_.erase(key);  // the key must view this slot's string, not an older one's
  index_.emplace(key, i);
}

}  // namespace fordeler
