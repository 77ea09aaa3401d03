// A std::mutex with clang thread-safety annotations, so that GUARDED_BY(mu_) is checked by
// -Wthread-safety (libstdc++'s own mutex carries none).
#pragma once

#include <mutex>

#if defined(__clang__)
#define FORDELER_TSA(x) __attribute__((x))
#else
#define FORDELER_TSA(x)
#endif

#define CAPABILITY(x) FORDELER_TSA(capability(x))
#define SCOPED_CAPABILITY FORDELER_TSA(scoped_lockable)
#define GUARDED_BY(x) FORDELER_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) FORDELER_TSA(pt_guarded_by(x))
#define REQUIRES(...) FORDELER_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) FORDELER_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) FORDELER_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) FORDELER_TSA(release_capability(__VA_ARGS__))

namespace fordeler {

class CAPABILITY("mutex") Mutex {
 public:
  void Lock() ACQUIRE() { mu_.lock(); }
  void Unlock() RELEASE() { mu_.unlock(); }
  std::mutex& native() { return mu_; }

 private:
  std::mutex mu_;
};

class SCOPED_CAPABILITY MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ACQUIRE(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() RELEASE() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* mu_;
};

}  // namespace fordeler
