#include "sftp/ban_table.h"

#include <arpa/inet.h>

#include <cstring>

#include "config/address_pattern.h"

namespace fordeler {

std::string SourceGroupOf(std::string_view ip) {
  std::string text(ip.substr(0, ip.find('%')));  // no zone
  unsigned char bytes[16];
  if (inet_pton(AF_INET, text.c_str(), bytes) == 1) return text;
  if (inet_pton(AF_INET6, text.c_str(), bytes) != 1) return std::string(ip);
  static constexpr unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  char out[INET6_ADDRSTRLEN];
  if (std::memcmp(bytes, kMapped, sizeof kMapped) == 0) {
    inet_ntop(AF_INET, bytes + 12, out, sizeof out);
    return out;
  }
  std::memset(bytes + 8, 0, 8);
  inet_ntop(AF_INET6, bytes, out, sizeof out);
  return std::string(out) + "/64";
}

std::string BanTable::KeyOf(std::string_view ip, const std::string& account) {
  return SourceGroupOf(ip) + " " + account;  // a space is in no address and no account id
}

bool BanTable::IsBanned(std::string_view ip, const std::string& account, TimePoint now,
                        std::chrono::milliseconds* left) {
  MutexLock lock(&mu_);
  auto it = entries_.find(KeyOf(ip, account));
  if (it == entries_.end() || !it->second.banned) return false;
  if (now >= it->second.banned_until) {  // served: start afresh
    entries_.erase(it);
    return false;
  }
  if (left != nullptr) {
    *left = std::chrono::ceil<std::chrono::milliseconds>(it->second.banned_until - now);
  }
  return true;
}

bool BanTable::RecordFailure(const ServerConfig& limits, std::string_view ip,
                             const std::string& account, TimePoint now) {
  if (limits.ban_after <= 0) return false;
  if (!limits.ban_allow.empty() && AddressMatchesPatterns(ip, limits.ban_allow)) return false;
  MutexLock lock(&mu_);
  std::string key = KeyOf(ip, account);
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= max_entries_ && !MakeRoom(limits, now)) return false;
    it = entries_.emplace(std::move(key), Entry{}).first;
  }
  Entry& e = it->second;
  if (e.banned) {
    if (now < e.banned_until) return false;  // a connection that began before the ban
    e = Entry{};
  }
  if (e.failures == 0 || now - e.first >= limits.ban_window) {
    e.first = now;
    e.failures = 0;
  }
  e.last = now;
  if (++e.failures < limits.ban_after) return false;
  e.banned = true;
  e.banned_until = now + limits.ban_duration;
  return true;
}

void BanTable::RecordSuccess(std::string_view ip, const std::string& account) {
  MutexLock lock(&mu_);
  auto it = entries_.find(KeyOf(ip, account));
  if (it != entries_.end() && !it->second.banned) entries_.erase(it);
}

size_t BanTable::size() const {
  MutexLock lock(&mu_);
  return entries_.size();
}

bool BanTable::MakeRoom(const ServerConfig& limits, TimePoint now) {
  auto oldest = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end();) {
    const Entry& e = it->second;
    bool over = e.banned ? now >= e.banned_until : now - e.first >= limits.ban_window;
    if (over) {
      it = entries_.erase(it);
      continue;
    }
    if (!e.banned && (oldest == entries_.end() || e.last < oldest->second.last)) oldest = it;
    ++it;
  }
  if (entries_.size() < max_entries_) return true;
  if (oldest == entries_.end()) return false;
  entries_.erase(oldest);
  return true;
}

}  // namespace fordeler
