#include "sftp/handle_table.h"

#include <algorithm>
#include <utility>

#include "sftp/account_registry_impl.h"

namespace fordeler {

bool Handle::revoked() const { return ticket && !ticket->ok(); }

bool Handle::shared_with_another_writer() const {
  return ticket && ticket->overlapping_writers.load(std::memory_order_acquire) != overlaps_seen;
}

HandleTable::HandleTable(size_t max, std::shared_ptr<size_t> shared)
    : max_(std::clamp<size_t>(max, 1, 65535)),
      total_(shared ? std::move(shared) : std::make_shared<size_t>(0)) {}

Handle* HandleTable::Allocate(Handle::Kind kind, char id[kIdSize]) {
  if (full()) return nullptr;
  uint16_t index;
  if (!free_.empty()) {
    index = free_.back();
    free_.pop_back();
  } else {
    index = static_cast<uint16_t>(slots_.size());
    slots_.emplace_back();
  }
  Handle* h = &slots_[index];
  h->kind = kind;
  ++*total_;
  id[0] = static_cast<char>(index >> 8);
  id[1] = static_cast<char>(index);
  id[2] = static_cast<char>(h->generation >> 8);
  id[3] = static_cast<char>(h->generation);
  return h;
}

Handle* HandleTable::Find(std::string_view id) {
  if (id.size() != kIdSize) return nullptr;
  auto b = [&](int i) { return static_cast<uint16_t>(static_cast<uint8_t>(id[i])); };
  uint16_t index = static_cast<uint16_t>(b(0) << 8 | b(1));
  uint16_t generation = static_cast<uint16_t>(b(2) << 8 | b(3));
  if (index >= slots_.size()) return nullptr;
  Handle* h = &slots_[index];
  if (h->kind == Handle::Kind::kFree || h->generation != generation) return nullptr;
  return h;
}

void HandleTable::Free(Handle* h) {
  h->kind = Handle::Kind::kFree;
  ++h->generation;
  h->fd = -1;
  h->dir = nullptr;
  h->ticket.reset();
  h->readable = h->writable = h->append = h->hash_valid = h->write_failed = h->marked = false;
  h->download_reported = h->root_listed = false;
  h->next_offset = h->written_back = h->quota_room = h->overlaps_seen = 0;
  h->name.clear();
  --*total_;
  free_.push_back(static_cast<uint16_t>(h - slots_.data()));
}

}  // namespace fordeler
