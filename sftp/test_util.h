// Test helpers for sftp/ unit tests: a real temporary directory, an injectable clock, and a
// FileEventListener that records what it is told. Test-only.
#pragma once

#include <ftw.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/env.h"
#include "core/file_events.h"
#include "core/mutex.h"

namespace fordeler {
namespace testing_util {

// A directory made with mkdtemp, removed (recursively) at destruction.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    path_ = std::string(tmp ? tmp : "/tmp") + "/fordeler-sftp-test-XXXXXX";
    if (mkdtemp(path_.data()) == nullptr) std::abort();
  }
  ~TempDir() {
    nftw(
        path_.c_str(),
        [](const char* p, const struct stat*, int, struct FTW*) { return ::remove(p); }, 16,
        FTW_DEPTH | FTW_PHYS);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// An Env whose steady clock only moves when told to.
class FakeEnv : public Env {
 public:
  std::chrono::steady_clock::time_point Steady() const override {
    MutexLock l(&mu_);
    return now_;
  }
  void Advance(std::chrono::milliseconds d) {
    MutexLock l(&mu_);
    now_ += d;
  }

 private:
  mutable Mutex mu_;
  std::chrono::steady_clock::time_point now_ GUARDED_BY(mu_){std::chrono::hours(1000)};
};

class EventRecorder : public FileEventListener {
 public:
  void OnUploadClosed(const UploadClosed& e) override {
    MutexLock l(&mu_);
    uploads_.push_back(e);
  }
  void OnSessionEvent(const SessionEvent& e) override {
    MutexLock l(&mu_);
    sessions_.push_back(e);
  }
  std::vector<UploadClosed> uploads() {
    MutexLock l(&mu_);
    return uploads_;
  }
  std::vector<SessionEvent> sessions() {
    MutexLock l(&mu_);
    return sessions_;
  }

 private:
  Mutex mu_;
  std::vector<UploadClosed> uploads_ GUARDED_BY(mu_);
  std::vector<SessionEvent> sessions_ GUARDED_BY(mu_);
};

}  // namespace testing_util
}  // namespace fordeler
