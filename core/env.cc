#include "core/env.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "core/thread_name.h"

namespace fordeler {
namespace {

Status Errno(const char* what, const std::string& name) {
  return Status::FromErrno(errno, std::string(what) + " " + name);
}

// The helper threads of Env::FsyncAll: tasks that only ever wait for the disk, so a caller that
// waits for them cannot deadlock. A thread is started when a task finds no idle one, up to
// kMaxThreads: on a journaling file system every sync waiting for the same journal commit is
// completed by it, so the more of them wait at once, the more transfers a commit serves, and a
// fixed number would cap that as the delivery workers grow (docs/performance.md, "Syncs that
// wait together"). Threads are never stopped (a task may still be finishing when the process
// exits); those not needed since sleep.
class SyncHelpers {
 public:
  static constexpr size_t kMaxThreads = 64;

  static SyncHelpers& Get() {
    static SyncHelpers* helpers = new SyncHelpers;
    return *helpers;
  }

  void Run(std::function<void()> task) {
    std::unique_lock<std::mutex> lock(mu_);
    if (tasks_.size() >= idle_ && threads_ < kMaxThreads) {
      ++threads_;
      ++idle_;  // counted as idle from now on, so that the next task does not start another
      try {
        std::thread([this] { Serve(); }).detach();
      } catch (const std::system_error&) {
        // Not started (the service's task limit, say): those there are do the work.
        --threads_;
        --idle_;
      }
    }
    if (threads_ == 0) {  // none could be started: the caller's thread it is
      lock.unlock();
      task();
      return;
    }
    tasks_.push_back(std::move(task));
    lock.unlock();
    wake_.notify_one();
  }

 private:
  void Serve() {
    NameThisThread("fsync");
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [this] { return !tasks_.empty(); });
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      --idle_;
      lock.unlock();
      task();
      lock.lock();
      ++idle_;
    }
  }

  std::mutex mu_;
  std::condition_variable wake_;
  // Under mu_:
  std::deque<std::function<void()>> tasks_;
  size_t threads_ = 0;
  size_t idle_ = 0;  // threads waiting for a task, or starting
};

}  // namespace

Env* Env::Default() {
  static Env env;
  return &env;
}

Result<int> Env::OpenAt(int dir, const std::string& name, int flags, mode_t mode) {
  int fd;
  do {
    fd = ::openat(dir, name.c_str(), flags | O_CLOEXEC | O_NOFOLLOW, mode);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return Errno("open", name);
  return fd;
}

Status Env::Close(int fd) {
  if (::close(fd) != 0 && errno != EINTR) return Status::FromErrno(errno, "close");
  return Status::Ok();
}

Status Env::Write(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = ::write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write");
    }
    p += n;
    len -= static_cast<size_t>(n);
  }
  return Status::Ok();
}

Status Env::Fsync(int fd) {
  if (::fsync(fd) != 0) return Status::FromErrno(errno, "fsync");
  return Status::Ok();
}

void Env::StartWriteBack(int fd) { ::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE); }

Status Env::RenameAt(int from_dir, const std::string& from, int to_dir, const std::string& to,
                     bool no_replace) {
  unsigned flags = no_replace ? RENAME_NOREPLACE : 0;
  if (::syscall(SYS_renameat2, from_dir, from.c_str(), to_dir, to.c_str(), flags) != 0) {
    return Errno("rename", from + " -> " + to);
  }
  return Status::Ok();
}

Status Env::LinkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) {
  if (::linkat(from_dir, from.c_str(), to_dir, to.c_str(), 0) != 0) {
    return Errno("link", from + " -> " + to);
  }
  return Status::Ok();
}

Status Env::UnlinkAt(int dir, const std::string& name) {
  if (::unlinkat(dir, name.c_str(), 0) != 0) return Errno("unlink", name);
  return Status::Ok();
}

Status Env::MkdirAt(int dir, const std::string& name, mode_t mode) {
  if (::mkdirat(dir, name.c_str(), mode) != 0) return Errno("mkdir", name);
  return Status::Ok();
}

Status Env::Fchmod(int fd, mode_t mode) {
  if (::fchmod(fd, mode) != 0) return Status::FromErrno(errno, "chmod");
  return Status::Ok();
}

void Env::CrashPoint(std::string_view name) {
  static const char* target = std::getenv("FORDELER_CRASH_AT");
  if (target != nullptr && name == target) ::_exit(86);
}

// A sync quicker than this is cheaper done at once than handed to a helper thread (a wake-up
// there and one back here, some 10-30 us on a busy machine).
constexpr int64_t kQuickSyncNs = 25'000;

void Env::NoteSyncTime(std::chrono::nanoseconds took) {
  int64_t average = sync_ns_.load(std::memory_order_relaxed);
  sync_ns_.store(average + (took.count() - average) / 8, std::memory_order_relaxed);
}

Status Env::FsyncAll(std::span<const int> fds) {
  SyncHelpers& helpers = SyncHelpers::Get();  // started at the first call, whatever the disk
  auto timed_fsync = [this](int fd) {
    auto start = Steady();
    Status s = Fsync(fd);
    NoteSyncTime(Steady() - start);
    return s;
  };
  // While syncs are quick, one after another here; the first slow one sends the rest to the
  // helpers, as on a disk that has to write.
  Status first_failure;
  size_t quick = 0;
  while (quick < fds.size() && sync_ns_.load(std::memory_order_relaxed) < kQuickSyncNs) {
    Status s = timed_fsync(fds[quick++]);
    if (first_failure.ok()) first_failure = std::move(s);
  }
  std::span<const int> rest = fds.subspan(quick);
  if (rest.size() <= 1) {
    Status s = rest.empty() ? Status::Ok() : timed_fsync(rest[0]);
    return first_failure.ok() ? s : first_failure;
  }
  // Every file's blocks allocated before the first sync starts a journal commit, so that one
  // commit covers the round: with ext4's delayed allocation, a file whose write-back began
  // inside its own fsync, after another sync had started the commit, needed a second one (1.8
  // journal commits per routed transfer instead of 1.1-1.4, docs/performance.md).
  for (int fd : rest) StartWriteBack(fd);
  struct Shared {
    std::mutex mu;
    std::condition_variable done;
    size_t left;
    std::vector<Status> results;
  };
  auto shared = std::make_shared<Shared>();
  shared->left = rest.size() - 1;
  shared->results.resize(rest.size());
  for (size_t i = 0; i + 1 < rest.size(); ++i) {  // all but the last to the helpers
    helpers.Run([timed_fsync, fd = rest[i], i, shared] {
      Status s = timed_fsync(fd);
      std::lock_guard<std::mutex> lock(shared->mu);
      shared->results[i] = std::move(s);
      if (--shared->left == 0) shared->done.notify_one();
    });
  }
  Status last = timed_fsync(rest.back());
  std::unique_lock<std::mutex> lock(shared->mu);
  shared->done.wait(lock, [&] { return shared->left == 0; });
  shared->results.back() = std::move(last);
  if (!first_failure.ok()) return first_failure;
  for (Status& s : shared->results) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status FsyncDir(Env* env, int dir) { return env->Fsync(dir); }

bool IsStillAt(int fd, int dir_fd, const char* name) {
  struct stat held, now;
  return fstat(fd, &held) == 0 && fstatat(dir_fd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
         held.st_dev == now.st_dev && held.st_ino == now.st_ino;
}

Status CheckSameFilesystem(int root_fd, const std::string& root, int fd, const std::string& shown) {
  struct stat root_st, st;
  if (fstat(root_fd, &root_st) != 0) return Status::FromErrno(errno, "stat " + root);
  if (fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat " + shown);
  if (st.st_dev == root_st.st_dev) return Status::Ok();
  auto device = [](dev_t dev) {
    return std::to_string(major(dev)) + ":" + std::to_string(minor(dev));
  };
  return Status::InvalidArgument(shown + " is on another filesystem (device " + device(st.st_dev) +
                                 ") than the storage root " + root + " (device " +
                                 device(root_st.st_dev) +
                                 "): fordeler moves and links files between them");
}

Result<int> CreateReplacing(Env* env, int dir, const std::string& name, mode_t mode) {
  constexpr int kFlags = O_WRONLY | O_CREAT | O_EXCL;
  auto fd = env->OpenAt(dir, name, kFlags, mode);
  if (fd.ok() || fd.status().code() != Status::Code::kAlreadyExists) return fd;
  Status gone = env->UnlinkAt(dir, name);  // left by an attempt cut short
  if (!gone.ok() && !IsNotFound(gone)) return gone;
  return env->OpenAt(dir, name, kFlags, mode);
}

Status WriteFileDurably(Env* env, int temp_dir, const std::string& temp_name, int dir,
                        const std::string& name, std::string_view data, mode_t mode,
                        bool no_replace) {
  auto fd = CreateReplacing(env, temp_dir, temp_name, mode);
  if (!fd.ok()) return fd.status();
  Status s = env->Write(*fd, data.data(), data.size());
  if (s.ok()) s = env->Fsync(*fd);
  Status c = env->Close(*fd);
  if (s.ok()) s = c;
  if (s.ok()) s = env->RenameAt(temp_dir, temp_name, dir, name, no_replace);
  if (!s.ok()) {
    env->UnlinkAt(temp_dir, temp_name);  // best effort; nothing was made visible
    return s;
  }
  return FsyncDir(env, dir);
}

void UniqueFd::Reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

}  // namespace fordeler
