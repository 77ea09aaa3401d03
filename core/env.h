// Env: the one seam for the clock and for the file operations whose order and failure matter to
// crash safety (open, write, fsync, rename, link, unlink), so that tests can inject time and
// faults and record the order of operations (LevelDB's Env). Env::Default() is the real system.
//
// Directory-relative: every name is a single path component resolved beneath a directory fd
// (AT_FDCWD allowed for absolute paths); nothing follows a symlink in the last component.
// Errors come back as Status with errno's meaning (Status::FromErrno).
//
// CrashPoint(name) is a test hook: the default Env ends the process at once (_exit(86), no
// cleanup: like SIGKILL) when the environment variable FORDELER_CRASH_AT equals `name`; the
// crash tests use it to stop the daemon right after each step of the delivery state machine.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fordeler {

class Env {
 public:
  virtual ~Env() = default;
  static Env* Default();

  // Wall-clock time, for records shown to people.
  virtual std::chrono::system_clock::time_point Now() const {
    return std::chrono::system_clock::now();
  }
  // Monotonic time, for time-outs and expiries.
  virtual std::chrono::steady_clock::time_point Steady() const {
    return std::chrono::steady_clock::now();
  }

  // open(2) beneath `dir` with O_CLOEXEC|O_NOFOLLOW added. Returns the fd.
  virtual Result<int> OpenAt(int dir, const std::string& name, int flags, mode_t mode);
  virtual Status Close(int fd);
  // Writes all of [data, data+len) at the current offset (loops over short writes).
  virtual Status Write(int fd, const void* data, size_t len);
  virtual Status Fsync(int fd);
  // Fsync() of every fd in `fds`, issued together: on a journaling file system one journal
  // commit then covers them all, and a disk completes concurrent syncs in about the time of
  // one. Returns once all have finished: OK, or the first failure in `fds` order. Each goes
  // through Fsync(), so that a wrapper's Fsync sees it; they run on helper threads ("fsync")
  // besides the caller's, one started whenever a sync finds none idle (up to 64). Where syncs
  // have lately been quicker than such a hand-off (tmpfs, a disk with a power-safe cache) they
  // run on the caller's thread, one after another.
  // A round for the helpers first starts the write-back of every fd (StartWriteBack), so that
  // the commit the first sync starts also holds the blocks the others' files are given.
  virtual Status FsyncAll(std::span<const int> fds);
  // Starts writing fd's dirty pages to disk and returns without waiting for them
  // (sync_file_range with SYNC_FILE_RANGE_WRITE): a hint with no promise, and no error to
  // report. On a file system that allocates blocks at write-back (ext4, XFS: delayed
  // allocation), the allocation is recorded in the journal's running transaction now; made
  // inside fsync, after another sync of the same round has started that transaction's commit,
  // it would need a commit of its own. Nothing to do for a directory.
  virtual void StartWriteBack(int fd);
  // renameat2; with no_replace, fails with kAlreadyExists instead of replacing.
  virtual Status RenameAt(int from_dir, const std::string& from, int to_dir, const std::string& to,
                          bool no_replace);
  virtual Status LinkAt(int from_dir, const std::string& from, int to_dir, const std::string& to);
  virtual Status UnlinkAt(int dir, const std::string& name);
  virtual Status MkdirAt(int dir, const std::string& name, mode_t mode);
  virtual Status Fchmod(int fd, mode_t mode);

  virtual void CrashPoint(std::string_view name);

 private:
  void NoteSyncTime(std::chrono::nanoseconds took);
  // A moving average of how long one of FsyncAll's syncs took, in ns (updated without a lock:
  // an estimate).
  std::atomic<int64_t> sync_ns_{0};
};

// Forwards everything to another Env; tests derive from it and override what they inject.
class EnvWrapper : public Env {
 public:
  explicit EnvWrapper(Env* target) : target_(target) {}
  std::chrono::system_clock::time_point Now() const override { return target_->Now(); }
  std::chrono::steady_clock::time_point Steady() const override { return target_->Steady(); }
  Result<int> OpenAt(int dir, const std::string& name, int flags, mode_t mode) override {
    return target_->OpenAt(dir, name, flags, mode);
  }
  Status Close(int fd) override { return target_->Close(fd); }
  Status Write(int fd, const void* data, size_t len) override {
    return target_->Write(fd, data, len);
  }
  Status Fsync(int fd) override { return target_->Fsync(fd); }
  void StartWriteBack(int fd) override { target_->StartWriteBack(fd); }
  Status RenameAt(int from_dir, const std::string& from, int to_dir, const std::string& to,
                  bool no_replace) override {
    return target_->RenameAt(from_dir, from, to_dir, to, no_replace);
  }
  Status LinkAt(int from_dir, const std::string& from, int to_dir, const std::string& to) override {
    return target_->LinkAt(from_dir, from, to_dir, to);
  }
  Status UnlinkAt(int dir, const std::string& name) override {
    return target_->UnlinkAt(dir, name);
  }
  Status MkdirAt(int dir, const std::string& name, mode_t mode) override {
    return target_->MkdirAt(dir, name, mode);
  }
  Status Fchmod(int fd, mode_t mode) override { return target_->Fchmod(fd, mode); }
  void CrashPoint(std::string_view name) override { target_->CrashPoint(name); }

 protected:
  Env* target() const { return target_; }

 private:
  Env* target_;
};

// Opens dir/name for writing as a new, empty file with `mode`, first removing a file left there
// (a temp file of an earlier attempt, cut short by a crash). Reopening that file instead would
// fail when it is read-only (mode 0440) and the daemon runs without root's DAC override, as
// under its systemd unit.
Result<int> CreateReplacing(Env* env, int dir, const std::string& name, mode_t mode);

// Makes `data` appear as dir/name atomically and durably: written to temp_dir/temp_name, fsynced,
// renamed into place (replacing an existing file unless no_replace), and the directory fsynced.
// On failure the temp file is removed and nothing is visible under `name`. The file gets `mode`.
// REQUIRES: temp_dir and dir on one filesystem.
Status WriteFileDurably(Env* env, int temp_dir, const std::string& temp_name, int dir,
                        const std::string& name, std::string_view data, mode_t mode,
                        bool no_replace);

// fsync of a directory fd opened by path (O_RDONLY|O_DIRECTORY), for renames into it.
Status FsyncDir(Env* env, int dir);

// True when `name` beneath `dir_fd` (not following a final symlink) is still the file `fd` is
// open on: same device and inode. A folder held open since start-up may have been removed,
// renamed away or replaced by an operator while fordelerd runs.
bool IsStillAt(int fd, int dir_fd, const char* name);

// OK when the folder `fd` (any fd, O_PATH included), shown as `shown`, is on the filesystem of
// the storage root `root_fd`, shown as `root`. Otherwise kInvalidArgument naming both with
// their devices as major:minor (what /proc/self/mountinfo and findmnt show): fordeler renames
// and hard-links files between the storage root's folders, which works within one filesystem
// only (contract §9). An fstat failure is returned as it is.
Status CheckSameFilesystem(int root_fd, const std::string& root, int fd, const std::string& shown);

// RAII owner of a file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { Reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.Release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) {
      Reset();
      fd_ = o.Release();
    }
    return *this;
  }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int Release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void Reset(int fd = -1);

 private:
  int fd_ = -1;
};

}  // namespace fordeler
