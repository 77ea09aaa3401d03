#include "audit/read_pool.h"

#include "audit/schema.h"

namespace fordeler {

Result<ReadPool::Lease> ReadPool::Acquire() {
  {
    MutexLock l(&mu_);
    if (!idle_.empty()) {
      Db db = std::move(idle_.back());
      idle_.pop_back();
      return Lease(this, std::move(db));
    }
  }
  auto db = OpenReadConnection(path_, busy_ms_);
  if (!db.ok()) return db.status();
  return Lease(this, std::move(db).value());
}

void ReadPool::Return(Db db) {
  MutexLock l(&mu_);
  if (idle_.size() < kMaxIdle) idle_.push_back(std::move(db));
}

}  // namespace fordeler
