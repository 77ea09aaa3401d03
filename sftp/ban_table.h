// BanTable: failed logins per (source, account), and the bans they lead to.
//
// A failed login is a connection that tried to authenticate as an account and ended without
// succeeding (SshSession counts one per connection, not per key tried). After `ban_after`
// failures of one (source, account) the pair is banned for `ban_duration`: its logins are
// refused without looking at the key, while the same source may still log in as other
// accounts and other sources as that account, so that one vendor's NAT never locks out
// another's. The count starts at a pair's first failure and starts again once `ban_window` has
// passed since then. A success clears the pair. A source is an IPv4 address, or the /64 of an
// IPv6 address (SourceGroupOf); addresses matching `ban_allow` are never banned.
//
// Memory is bounded: at most `max_entries` pairs are remembered. When the table is full, pairs
// whose window and ban have passed are dropped, then the pair that failed longest ago and is not
// banned; when every pair is banned, the new failure is not recorded.
//
// The limits are passed with each call, so a reload applies to the next failure. Times are the
// caller's steady clock (tests inject them). Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/mutex.h"

namespace fordeler {

// The source an address is counted as: an IPv4 address as it is ("192.0.2.7"), an IPv6 address
// as its /64 ("2001:db8:1:2::/64"), an IPv4-mapped IPv6 address as the IPv4 address. Text that
// is no IP address is returned as it is.
std::string SourceGroupOf(std::string_view ip);

class BanTable {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  static constexpr size_t kDefaultMaxEntries = 65536;

  explicit BanTable(size_t max_entries = kDefaultMaxEntries) : max_entries_(max_entries) {}

  // True while (ip's source, account) is banned; *left receives how long the ban still lasts.
  bool IsBanned(std::string_view ip, const std::string& account, TimePoint now,
                std::chrono::milliseconds* left = nullptr) EXCLUDES(mu_);

  // Records one failed login. True when it starts a ban (the caller logs and audits it once).
  bool RecordFailure(const ServerConfig& limits, std::string_view ip, const std::string& account,
                     TimePoint now) EXCLUDES(mu_);

  // A successful login: the pair's failures are forgotten.
  void RecordSuccess(std::string_view ip, const std::string& account) EXCLUDES(mu_);

  size_t size() const EXCLUDES(mu_);

 private:
  struct Entry {
    TimePoint first;         // first failure of the current window
    TimePoint last;          // latest failure
    TimePoint banned_until;  // meaningful when banned
    int failures = 0;
    bool banned = false;
  };
  static std::string KeyOf(std::string_view ip, const std::string& account);
  bool MakeRoom(const ServerConfig& limits, TimePoint now) REQUIRES(mu_);

  const size_t max_entries_;
  mutable Mutex mu_;
  std::map<std::string, Entry> entries_ GUARDED_BY(mu_);
};

}  // namespace fordeler
