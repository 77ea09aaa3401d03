#include "delivery/storage.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
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

namespace {

Result<dev_t> DeviceOf(int fd) {
  struct stat st;
  if (fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat");
  return st.st_dev;
}

// `path` (under the storage root) could not be opened as a folder: says which, and why.
Status FolderError(const std::string& path, const Status& s) {
  if (s.os_errno() == ELOOP) return Status::FromErrno(ENOTDIR, path + " (a symlink)");
  if (s.os_errno() != 0) return Status::FromErrno(s.os_errno(), path);
  return s;
}

}  // namespace

Result<std::unique_ptr<Storage>> Storage::Open(Env* env, const std::string& root) {
  auto root_fd = env->OpenAt(AT_FDCWD, root, O_RDONLY | O_DIRECTORY, 0);
  if (!root_fd.ok()) return root_fd.status();
  UniqueFd r(*root_fd);
  UniqueFd parts[3];
  const char* names[3] = {"spool", "staging", "quarantine"};
  auto device = DeviceOf(r.get());
  if (!device.ok()) return device.status();
  for (int i = 0; i < 3; ++i) {
    auto fd = OpenDirectory(env, r.get(), names[i], true, 0750);
    if (!fd.ok()) return fd.status();
    parts[i] = std::move(*fd);
    auto dev = DeviceOf(parts[i].get());
    if (!dev.ok()) return dev.status();
    if (*dev != *device) {
      return Status::InvalidArgument(root + "/" + names[i] +
                                     " is on another filesystem than the storage root: fordeler "
                                     "moves and links files between them");
    }
  }
  return std::unique_ptr<Storage>(new Storage(env, std::move(r), std::move(parts[0]),
                                              std::move(parts[1]), std::move(parts[2]), *device));
}

Storage::Storage(Env* env, UniqueFd root, UniqueFd spool, UniqueFd staging, UniqueFd quarantine,
                 dev_t device)
    : env_(env),
      root_(std::move(root)),
      spool_(std::move(spool)),
      staging_(std::move(staging)),
      quarantine_(std::move(quarantine)),
      device_(device) {}

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

Status Storage::CheckOwnFolders() const {
  const std::pair<const char*, int> folders[] = {
      {"spool", spool_.get()}, {"staging", staging_.get()}, {"quarantine", quarantine_.get()}};
  for (const auto& [name, fd] : folders) {
    if (IsStillAt(fd, root_.get(), name)) continue;
    return Status::NotFound("the storage folder " + std::string(name) +
                            " was removed or replaced while fordelerd runs: make it again "
                            "(mode 0750) and restart fordelerd");
  }
  return Status::Ok();
}

Result<UniqueFd> Storage::QuarantineDir(const std::string& uuid) {
  return OpenDirectory(env_, quarantine_.get(), uuid, true, 0750);
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
