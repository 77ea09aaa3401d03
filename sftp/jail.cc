#include "sftp/jail.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <utility>

#include "core/env.h"

namespace fordeler {

namespace {

std::atomic<bool> force_openat_fallback{false};

// Opens (creating it when `create`) the directory `name` beneath `dir_fd`, never following a
// symlink, as an O_PATH fd. Errors name `shown`, its path under the storage root.
Result<int> OpenDirBeneath(int dir_fd, const std::string& name, bool create, mode_t mode,
                           const std::string& shown) {
  if (create && mkdirat(dir_fd, name.c_str(), mode) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + shown);
  }
  int fd = openat(dir_fd, name.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "folder " + shown);
  return fd;
}

bool ValidComponent(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos &&
         s.find('\0') == std::string::npos;
}

int OpenBeneath(int dir_fd, const char* name, int flags, mode_t mode) {
  flags |= O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
  if (!force_openat_fallback.load(std::memory_order_relaxed)) {
    struct open_how how = {};
    how.flags = static_cast<uint64_t>(flags);
    how.mode = (flags & O_CREAT) ? mode : 0;
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    long fd = syscall(SYS_openat2, dir_fd, name, &how, sizeof(how));
    // ENOSYS: an old kernel; EPERM: a seccomp policy that refuses openat2. The names are single
    // validated components, so openat with O_NOFOLLOW confines them the same way.
    if (fd >= 0 || (errno != ENOSYS && errno != EPERM)) return static_cast<int>(fd);
  }
  return openat(dir_fd, name, flags, mode);
}

Status NotRegular(const std::string& name) { return Status::NotFound(name + ": no such file"); }

}  // namespace

void Jail::ForceOpenatFallbackForTesting(bool force) { force_openat_fallback = force; }

Jail::Jail(std::string account, int root_fd, int in_fd, int out_fd)
    : account_(std::move(account)), root_fd_(root_fd), in_fd_(in_fd), out_fd_(out_fd) {}

Jail::~Jail() {
  close(root_fd_);
  close(in_fd_);
  close(out_fd_);
}

Result<std::shared_ptr<Jail>> Jail::Open(const std::string& storage_root,
                                         const std::string& account, bool create) {
  if (!ValidComponent(account)) return Status::InvalidArgument("bad account id: " + account);
  int top = open(storage_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) return Status::FromErrno(errno, "open storage root " + storage_root);
  Result<int> accounts = OpenDirBeneath(top, "accounts", create, 0750, "accounts");
  close(top);
  if (!accounts.ok()) return accounts.status();
  const std::string shown = "accounts/" + account;
  Result<int> root = OpenDirBeneath(*accounts, account, create, 0750, shown);
  close(*accounts);
  if (!root.ok()) return root.status();
  Result<int> in = OpenDirBeneath(*root, "IN", create, 0750, shown + "/IN");
  if (!in.ok()) {
    close(*root);
    return in.status();
  }
  Result<int> out = OpenDirBeneath(*root, "OUT", create, 0770, shown + "/OUT");
  if (!out.ok()) {
    close(*root);
    close(*in);
    return out.status();
  }
  return std::shared_ptr<Jail>(new Jail(account, *root, *in, *out));
}

Status Jail::CheckFilesystem(const std::string& storage_root) const {
  int top = open(storage_root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (top < 0) return Status::FromErrno(errno, "open storage root " + storage_root);
  const std::string accounts_path = storage_root + "/accounts";
  Result<int> accounts = OpenDirBeneath(top, "accounts", false, 0, "accounts");
  Status s = accounts.status();
  if (s.ok()) {
    s = CheckSameFilesystem(top, storage_root, *accounts, accounts_path);
    close(*accounts);
  }
  const std::string jail = accounts_path + "/" + account_;
  const std::pair<int, std::string> folders[] = {
      {root_fd_, jail}, {in_fd_, jail + "/IN"}, {out_fd_, jail + "/OUT"}};
  for (const auto& [fd, shown] : folders) {
    if (s.ok()) s = CheckSameFilesystem(top, storage_root, fd, shown);
  }
  close(top);
  return s;
}

bool Jail::IsCurrent(const std::string& storage_root, std::initializer_list<Folder> folders) const {
  std::string path;
  for (Folder folder : folders) {
    path = storage_root + "/accounts/" + account_;
    if (folder == Folder::kIn) path += "/IN";
    if (folder == Folder::kOut) path += "/OUT";
    if (!IsStillAt(folder_fd(folder), AT_FDCWD, path.c_str())) return false;
  }
  return true;
}

int Jail::folder_fd(Folder folder) const {
  switch (folder) {
    case Folder::kIn:
      return in_fd_;
    case Folder::kOut:
      return out_fd_;
    case Folder::kRoot:
      break;
  }
  return root_fd_;
}

Result<int> Jail::OpenFile(Folder folder, const std::string& name, int flags,
                           struct stat* st) const {
  if (folder == Folder::kRoot || name.empty()) return NotRegular(name);
  int fd = OpenBeneath(folder_fd(folder), name.c_str(), flags & ~O_TRUNC, kUploadMode);
  if (fd < 0) {
    int err = errno;
    // ELOOP: a symlink; ENXIO: a FIFO without reader; EISDIR: a directory. None exists for us.
    if (err == ELOOP || err == ENXIO || err == EISDIR || err == EXDEV) return NotRegular(name);
    return Status::FromErrno(err, name);
  }
  Status refusal;
  if (fstat(fd, st) != 0) {
    refusal = Status::FromErrno(errno, name);
  } else if (!S_ISREG(st->st_mode)) {
    refusal = NotRegular(name);
  } else if (folder == Folder::kOut && st->st_nlink > 1) {
    refusal = Status::PermissionDenied(name + ": file has other links");
  } else if ((flags & O_TRUNC) && st->st_size != 0) {
    if (ftruncate(fd, 0) != 0) refusal = Status::FromErrno(errno, name);
    st->st_size = 0;
  }
  if (!refusal.ok()) {
    close(fd);
    return refusal;
  }
  return fd;
}

Status Jail::Stat(Folder folder, const std::string& name, struct stat* st) const {
  if (name.empty()) {
    if (fstat(folder_fd(folder), st) != 0) return Status::FromErrno(errno, "stat");
    return Status::Ok();
  }
  if (folder == Folder::kRoot) return NotRegular(name);
  if (fstatat(folder_fd(folder), name.c_str(), st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, name);
  }
  if (!S_ISREG(st->st_mode)) return NotRegular(name);
  return Status::Ok();
}

Status Jail::Remove(Folder folder, const std::string& name) const {
  struct stat st;
  Status s = Stat(folder, name, &st);
  if (!s.ok()) return s;
  // unlinkat never follows a symlink; a race that swaps the file for another entry removes that
  // entry of our own folder, nothing outside it.
  if (unlinkat(folder_fd(folder), name.c_str(), 0) != 0) return Status::FromErrno(errno, name);
  return Status::Ok();
}

Status Jail::Rename(Folder from_folder, const std::string& from, Folder to_folder,
                    const std::string& to, bool overwrite) const {
  struct stat st;
  Status s = Stat(from_folder, from, &st);
  if (!s.ok()) return s;
  if (overwrite) {
    struct stat dst;
    if (fstatat(folder_fd(to_folder), to.c_str(), &dst, AT_SYMLINK_NOFOLLOW) == 0 &&
        !S_ISREG(dst.st_mode)) {
      return Status::PermissionDenied(to + ": cannot replace what is not a file");
    }
  }
  unsigned int flags = overwrite ? 0 : RENAME_NOREPLACE;
  if (renameat2(folder_fd(from_folder), from.c_str(), folder_fd(to_folder), to.c_str(), flags) !=
      0) {
    return Status::FromErrno(errno, from);
  }
  return Status::Ok();
}

Status Jail::SetTimes(Folder folder, const std::string& name, time_t atime, time_t mtime) const {
  struct stat st;
  Status s = Stat(folder, name, &st);
  if (!s.ok()) return s;
  struct timespec times[2] = {{atime, 0}, {mtime, 0}};
  if (utimensat(folder_fd(folder), name.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, name);
  }
  return Status::Ok();
}

Result<DIR*> Jail::OpenDir(Folder folder) const {
  int fd = openat(folder_fd(folder), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    return Status::FromErrno(errno, std::string(folder == Folder::kRoot ? "/" : "folder"));
  DIR* dir = fdopendir(fd);
  if (dir == nullptr) {
    int err = errno;
    close(fd);
    return Status::FromErrno(err, "folder");
  }
  return dir;
}

Status Jail::StatVfs(Folder folder, struct statvfs* st) const {
  if (fstatvfs(folder_fd(folder), st) != 0) return Status::FromErrno(errno, "statvfs");
  return Status::Ok();
}

}  // namespace fordeler
