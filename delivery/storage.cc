#include "delivery/storage.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "core/names.h"
#include "core/uuid.h"

namespace fordeler {

Result<UniqueFd> OpenDirectory(Env* env, int dir, const std::string& name, bool create,
                               mode_t mode) {
  if (create) {
    Status s = env->MkdirAt(dir, name, mode);
    if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
  }
  auto fd = env->OpenAt(dir, name, O_RDONLY | O_DIRECTORY, 0);
  if (!fd.ok()) return fd.status();
  return UniqueFd(*fd);
}

const char* OwnFolderName(OwnFolder folder) {
  switch (folder) {
    case OwnFolder::kSpool:
      return "spool";
    case OwnFolder::kStaging:
      return "staging";
    case OwnFolder::kQuarantine:
      return "quarantine";
  }
  return "?";
}

namespace {

constexpr OwnFolder kOwn[] = {OwnFolder::kSpool, OwnFolder::kStaging, OwnFolder::kQuarantine};

// `path` (under the storage root) could not be opened as a folder: says which, and why.
Status FolderError(const std::string& path, const Status& s) {
  if (s.os_errno() == ELOOP) return Status::FromErrno(ENOTDIR, path + " (a symlink)");
  if (s.os_errno() != 0) return Status::FromErrno(s.os_errno(), path);
  return s;
}

// Why an own folder cannot be used (`err`: errno, EXDEV for another filesystem), for the
// operator: which folder, and what to do.
Status OwnFolderProblem(const char* name, int err) {
  const std::string folder = std::string("the storage folder ") + name;
  const std::string again =
      "make it again (owned by fordelerd's user, mode 0750) or reload fordelerd; the transfers "
      "waiting for it then go on";
  switch (err) {
    case ENOENT:
      return Status::Unavailable(folder +
                                 " was removed or moved away while fordelerd runs: " + again);
    case ELOOP:
    case ENOTDIR:
      return Status::Unavailable(folder +
                                 " was replaced by a symlink or a file, which fordeler never "
                                 "follows: remove it, then " +
                                 again);
    case EXDEV:
      return Status::Unavailable(folder +
                                 " is on another filesystem than the storage root: fordeler moves "
                                 "and links files between them, so it must be a folder of the "
                                 "storage root's filesystem");
    default:
      return Status::Unavailable(folder + " cannot be opened: " + std::strerror(err));
  }
}

}  // namespace

Result<std::unique_ptr<Storage>> Storage::Open(Env* env, const std::string& root) {
  auto root_fd = env->OpenAt(AT_FDCWD, root, O_RDONLY | O_DIRECTORY, 0);
  if (!root_fd.ok()) return root_fd.status();
  UniqueFd r(*root_fd);
  struct stat root_st;
  if (fstat(r.get(), &root_st) != 0) return Status::FromErrno(errno, "stat");
  std::array<UniqueFd, kOwnFolders> parts;
  for (OwnFolder folder : kOwn) {
    const char* name = OwnFolderName(folder);
    auto fd = OpenDirectory(env, r.get(), name, true, 0750);
    if (!fd.ok()) return fd.status();
    parts[Index(folder)] = std::move(*fd);
    Status same = CheckSameFilesystem(r.get(), root, parts[Index(folder)].get(), root + "/" + name);
    if (!same.ok()) return same;
  }
  return std::unique_ptr<Storage>(new Storage(env, std::move(r), std::move(parts), root_st.st_dev));
}

Storage::Storage(Env* env, UniqueFd root, std::array<UniqueFd, kOwnFolders> own, dev_t device)
    : env_(env), root_(std::move(root)), device_(device) {
  MutexLock lock(&mu_);
  for (size_t i = 0; i < kOwnFolders; ++i) {
    struct stat st;
    own_[i].ino = fstat(own[i].get(), &st) == 0 ? st.st_ino : 0;
    current_[i].store(own[i].get(), std::memory_order_release);
    own_[i].fd = std::move(own[i]);
  }
}

Status Storage::Refresh(bool make_missing) {
  Status first;
  MutexLock lock(&mu_);
  for (OwnFolder folder : kOwn) {
    Status s = RefreshOne(folder, make_missing);
    if (first.ok()) first = std::move(s);
  }
  return first;
}

Status Storage::CheckOwnFolder(OwnFolder folder) {
  MutexLock lock(&mu_);
  return RefreshOne(folder, false);
}

// The usual case is one fstatat that finds the folder held. Otherwise the folder at the path is
// opened (O_NOFOLLOW|O_DIRECTORY) and checked as at start (the storage root's filesystem), and
// replaces the one held; a folder that cannot be used leaves nothing held (-1 handed out).
Status Storage::RefreshOne(OwnFolder folder, bool make_missing) {
  const size_t i = Index(folder);
  Held& held = own_[i];
  const char* name = OwnFolderName(folder);
  struct stat now;
  const bool there = fstatat(root_.get(), name, &now, AT_SYMLINK_NOFOLLOW) == 0;
  if (there && held.fd.valid() && now.st_dev == device_ && now.st_ino == held.ino) {
    return Status::Ok();
  }
  if (!there && errno == ENOENT && make_missing && env_->MkdirAt(root_.get(), name, 0750).ok()) {
    spdlog::info("event=storage_made folder={}", name);
  }
  int err = 0;
  UniqueFd fd;
  struct stat st;
  auto opened = env_->OpenAt(root_.get(), name, O_RDONLY | O_DIRECTORY, 0);
  if (!opened.ok()) {
    err = opened.status().os_errno() != 0 ? opened.status().os_errno() : EIO;
  } else {
    fd.Reset(*opened);
    if (fstat(fd.get(), &st) != 0) {
      err = errno;
    } else if (st.st_dev != device_) {
      err = EXDEV;
    }
  }
  if (err != 0) {
    Status problem = OwnFolderProblem(name, err);
    LetGo(folder, problem.message());
    return problem;
  }
  if (held.fd.valid() && st.st_ino == held.ino) return Status::Ok();  // changed back meanwhile
  if (held.fd.valid()) held.replaced.push_back(std::move(held.fd));
  held.ino = st.st_ino;
  held.problem.clear();
  current_[i].store(fd.get(), std::memory_order_release);
  held.fd = std::move(fd);
  generation_.fetch_add(1, std::memory_order_acq_rel);  // after the fd: see generation()
  spdlog::warn("event=storage_reopened folder={} note=\"the folder now at its path\"", name);
  return Status::Ok();
}

void Storage::LetGo(OwnFolder folder, const std::string& problem) {
  const size_t i = Index(folder);
  Held& held = own_[i];
  if (held.fd.valid()) {
    current_[i].store(-1, std::memory_order_release);
    held.replaced.push_back(std::move(held.fd));
  }
  if (held.problem == problem) return;  // said already
  spdlog::warn("event=storage_failed folder={} error={}", OwnFolderName(folder), LogValue(problem));
  held.problem = problem;
}

Result<std::vector<std::string>> Storage::TakeOver(OwnFolder folder,
                                                   std::span<const std::string> names) {
  std::vector<int> from;  // newest first; never closed while the Storage lives
  int to;
  {
    MutexLock lock(&mu_);
    const Held& held = own_[Index(folder)];
    for (auto it = held.replaced.rbegin(); it != held.replaced.rend(); ++it) {
      from.push_back(it->get());
    }
    if (from.empty()) return std::vector<std::string>{};
    if (!held.fd.valid()) return Status::Unavailable(held.problem);
    to = held.fd.get();
  }
  std::vector<std::string> linked;
  for (const std::string& name : names) {
    struct stat st;
    if (fstatat(to, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT) continue;
    for (int old : from) {
      Status s = env_->LinkAt(old, name, to, name);
      if (s.ok()) linked.push_back(name);
      if (!IsNotFound(s)) {
        if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
        break;
      }
    }
  }
  if (!linked.empty()) {
    if (Status s = FsyncDir(env_, to); !s.ok()) return s;
  }
  return linked;
}

Result<int> Storage::InOf(const std::string& account) { return FolderOf(account, "IN"); }

Result<int> Storage::OutOf(const std::string& account) { return FolderOf(account, "OUT"); }

// The folder is looked up by its path each time and the fd kept only while it is still that
// folder: an operator may remove, rename or replace a jail's folder while fordelerd runs
// (docs/operations.md, "A jail folder removed, moved away or replaced"), and fordeler must then
// neither write into the old folder (renamed away, or deleted and no longer visible to anyone) nor
// fail for ever once the folder is back.
Result<int> Storage::FolderOf(const std::string& account, const char* folder) {
  const std::string key = account + "/" + folder;
  const std::string path = "accounts/" + key;
  struct stat now;
  const bool there = fstatat(root_.get(), path.c_str(), &now, AT_SYMLINK_NOFOLLOW) == 0;
  const int lookup_errno = there ? 0 : errno;
  MutexLock lock(&mu_);
  auto it = folders_.find(key);
  if (it != folders_.end()) {
    if (there && now.st_dev == device_ && now.st_ino == it->second.ino) return it->second.fd.get();
    // Another thread may still use the old fd's number: it stays open (one per replacement).
    retired_.push_back(std::move(it->second.fd));
    folders_.erase(it);
  }
  if (!there) return Status::FromErrno(lookup_errno, path);
  auto accounts = OpenDirectory(env_, root_.get(), "accounts", false, 0);
  if (!accounts.ok()) return FolderError(path, accounts.status());
  auto jail = OpenDirectory(env_, accounts->get(), account, false, 0);
  if (!jail.ok()) return FolderError(path, jail.status());
  auto fd = OpenDirectory(env_, jail->get(), folder, false, 0);
  if (!fd.ok()) return FolderError(path, fd.status());
  struct stat opened;
  if (fstat(fd->get(), &opened) != 0) return Status::FromErrno(errno, "stat " + path);
  if (opened.st_dev != device_) {
    return Status::InvalidArgument(key + " is on another filesystem than the storage root");
  }
  int raw = fd->get();
  folders_.emplace(key, OpenFolder{std::move(*fd), opened.st_ino});
  return raw;
}

Result<UniqueFd> Storage::QuarantineDir(const std::string& uuid) {
  return OpenDirectory(env_, quarantine(), uuid, true, 0750);
}

std::optional<std::string> SpooledTriggerName(std::string_view uuid, std::string_view sender,
                                              std::string_view trigger_name) {
  std::string name =
      std::string(uuid) + "~" + std::string(sender) + "~" + std::string(trigger_name);
  if (name.size() > kMaxFileNameBytes) return std::nullopt;
  return name;
}

std::string LegacySpooledTrigger(std::string_view uuid) {
  return std::string(uuid) + std::string(kTriggerSuffix);
}

namespace {
constexpr std::string_view kRevealedSuffix = ".revealed";
}  // namespace

std::string RevealedMarkName(std::string_view uuid) {
  return std::string(uuid) + std::string(kRevealedSuffix);
}

std::optional<std::string> ParseRevealedMarkName(std::string_view name) {
  if (!name.ends_with(kRevealedSuffix)) return std::nullopt;
  std::string uuid(name.substr(0, name.size() - kRevealedSuffix.size()));
  if (!IsUuid(uuid)) return std::nullopt;
  return uuid;
}

std::vector<std::string> SpooledTriggerNames(std::string_view uuid, std::string_view sender,
                                             std::string_view trigger_name) {
  std::vector<std::string> names;
  if (auto name = SpooledTriggerName(uuid, sender, trigger_name)) names.push_back(*name);
  names.push_back(LegacySpooledTrigger(uuid));
  return names;
}

std::optional<SpooledTrigger> ParseSpooledTriggerName(std::string_view name) {
  constexpr size_t kUuidLength = 36;
  if (name.size() <= kUuidLength + 2 || name[kUuidLength] != '~') return std::nullopt;
  std::string_view uuid = name.substr(0, kUuidLength);
  std::string_view rest = name.substr(kUuidLength + 1);
  size_t tilde = rest.find('~');
  if (!IsUuid(uuid) || tilde == 0 || tilde == std::string_view::npos) return std::nullopt;
  std::string_view sender = rest.substr(0, tilde);
  std::string_view trigger = rest.substr(tilde + 1);
  if (!IsTriggerName(trigger) || !IsValidOutName(trigger)) return std::nullopt;
  return SpooledTrigger{std::string(uuid), std::string(sender), std::string(trigger)};
}

}  // namespace fordeler
