#include "delivery/quota_ledger.h"

#include <utility>

namespace fordeler {

QuotaLedger::Hold& QuotaLedger::Hold::operator=(Hold&& other) noexcept {
  if (this != &other) {
    Release();
    ledger_ = std::move(other.ledger_);
    recipient_ = std::move(other.recipient_);
    bytes_ = other.bytes_;
    other.ledger_.reset();
  }
  return *this;
}

void QuotaLedger::Hold::Release() {
  if (ledger_ == nullptr) return;
  ledger_->GiveBack(recipient_, bytes_);
  ledger_.reset();
}

QuotaUse QuotaLedger::Promised(const std::string& recipient) const {
  MutexLock lock(&mu_);
  auto it = promised_.find(recipient);
  return it == promised_.end() ? QuotaUse{} : it->second;
}

QuotaLedger::Hold QuotaLedger::Promise(const std::string& recipient, uint64_t bytes) {
  {
    MutexLock lock(&mu_);
    QuotaUse& use = promised_[recipient];
    ++use.files;
    use.bytes += bytes;
  }
  return Hold(shared_from_this(), recipient, bytes);
}

void QuotaLedger::GiveBack(const std::string& recipient, uint64_t bytes) {
  MutexLock lock(&mu_);
  auto it = promised_.find(recipient);
  if (it == promised_.end()) return;
  it->second.files -= 1;
  it->second.bytes -= bytes;
  if (it->second.files == 0) promised_.erase(it);
}

}  // namespace fordeler
