// Room in recipients' /IN promised to transfers that passed the quota check (contract §7, 3002)
// but whose copy is not in that /IN yet. Without it, transfers examined at the same time would
// each find the same room free and together pass the quota. Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/mutex.h"

namespace fordeler {

// Data files and bytes, as the quota counts them (FolderUsage in file_ops.h).
struct QuotaUse {
  uint64_t files = 0;
  uint64_t bytes = 0;
};

class QuotaLedger : public std::enable_shared_from_this<QuotaLedger> {
 public:
  // One file of `bytes` promised in one recipient's /IN; given back when released or destroyed
  // (a transfer that ends without placing it, rejected or abandoned, gives it back with its job).
  class Hold {
   public:
    Hold() = default;
    Hold(Hold&& other) noexcept { *this = std::move(other); }
    Hold& operator=(Hold&& other) noexcept;
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Release(); }

    void Release();
    const std::string& recipient() const { return recipient_; }

   private:
    friend class QuotaLedger;
    Hold(std::shared_ptr<QuotaLedger> ledger, std::string recipient, uint64_t bytes)
        : ledger_(std::move(ledger)), recipient_(std::move(recipient)), bytes_(bytes) {}

    std::shared_ptr<QuotaLedger> ledger_;  // null once released
    std::string recipient_;
    uint64_t bytes_ = 0;
  };

  // What is promised in `recipient`'s /IN and not yet placed there.
  QuotaUse Promised(const std::string& recipient) const EXCLUDES(mu_);
  // Promises one file of `bytes` in `recipient`'s /IN. The ledger must be owned by a shared_ptr.
  Hold Promise(const std::string& recipient, uint64_t bytes) EXCLUDES(mu_);

 private:
  void GiveBack(const std::string& recipient, uint64_t bytes) EXCLUDES(mu_);

  mutable Mutex mu_;
  std::map<std::string, QuotaUse, std::less<>> promised_ GUARDED_BY(mu_);
};

}  // namespace fordeler
