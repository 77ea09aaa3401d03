// ReadPool: read-only connections to one audit database, lent one per read call. A call takes an
// idle connection or opens another, and gives it back when done, so reads run concurrently and a
// read's row callback may itself read (nested calls simply use a second connection). Thread-safe.
#pragma once

#include <string>
#include <vector>

#include "audit/sqlite.h"
#include "core/mutex.h"

namespace fordeler {

class ReadPool {
 public:
  class Lease {
   public:
    Lease(ReadPool* pool, Db db) : pool_(pool), db_(std::move(db)) {}
    ~Lease() {
      if (pool_ != nullptr) pool_->Return(std::move(db_));
    }
    Lease(Lease&& other) noexcept : pool_(other.pool_), db_(std::move(other.db_)) {
      other.pool_ = nullptr;
    }
    Lease& operator=(Lease&&) = delete;
    Db& db() { return db_; }

   private:
    ReadPool* pool_;
    Db db_;
  };

  ReadPool(std::string path, int busy_ms) : path_(std::move(path)), busy_ms_(busy_ms) {}

  Result<Lease> Acquire() EXCLUDES(mu_);

 private:
  static constexpr size_t kMaxIdle = 4;  // connections kept open between calls
  void Return(Db db) EXCLUDES(mu_);

  const std::string path_;
  const int busy_ms_;
  Mutex mu_;
  std::vector<Db> idle_ GUARDED_BY(mu_);
};

}  // namespace fordeler
