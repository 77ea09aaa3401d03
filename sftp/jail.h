// Jail: one account's view of the storage root, root/accounts/<id>/{IN,OUT}, as directory fds.
//
// The three directories are opened once (O_PATH|O_DIRECTORY, each component beneath the storage
// root with O_NOFOLLOW) and every later operation works beneath one of them with a single
// file-name component that path.cc has already validated: no string path from a client ever
// reaches open(2). Files are opened with openat2(RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|
// RESOLVE_NO_MAGICLINKS) plus O_NOFOLLOW|O_NONBLOCK (openat + O_NOFOLLOW where the kernel has no
// openat2), and only regular files are kept: a FIFO, device, directory or symlink is refused
// without blocking.
//
// What a client sees of entries that are not regular files (decided here, for all operations):
// they do not exist. Stat, open, remove and rename answer kNotFound for them, and List skips
// them; a planted symlink is never followed, only reported absent.
//
// Hard links: a client cannot create one (there is no link request and no hardlink extension).
// The delivery pipeline itself hard-links one spooled file into several recipients' /IN, so a
// link count above 1 is normal in /IN and allowed there. In /OUT a file only ever has one link
// (uploads create it; files arriving by other means are copied): a file there with more links
// is refused for reading and writing (kPermissionDenied), so writing through /OUT can never
// change bytes that are also visible elsewhere.
//
// Thread-safe: the fds are immutable after Open; every method may be called concurrently.
#pragma once

#include <dirent.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <initializer_list>
#include <memory>
#include <string>

#include "core/file_events.h"
#include "core/status.h"

namespace fordeler {

class Jail {
 public:
  // Opens (creating them when `create`) root/accounts/<account>/{IN,OUT}. The account folder is
  // made mode 0750, IN 0750 and OUT 0770 (less the umask). REQUIRES: `account` is one path
  // component.
  static Result<std::shared_ptr<Jail>> Open(const std::string& storage_root,
                                            const std::string& account, bool create);
  ~Jail();
  Jail(const Jail&) = delete;
  Jail& operator=(const Jail&) = delete;

  const std::string& account() const { return account_; }

  // True while each of `folders` (kRoot: root/accounts/<account> itself) is still the folder this
  // jail opened: false once an operator removed, renamed or replaced one of them while fordelerd
  // runs (AccountRegistry then opens the jail again). Two system calls per folder.
  bool IsCurrent(const std::string& storage_root,
                 std::initializer_list<Folder> folders = {Folder::kRoot, Folder::kIn,
                                                          Folder::kOut}) const;
  // OK when storage_root/accounts and this jail's three folders are all on the storage root's
  // filesystem, as delivery needs (it renames and hard-links files between the jails and its
  // spool); otherwise an error naming the first that is not, with both devices
  // (CheckSameFilesystem). A mount point anywhere below the root is what makes them differ.
  Status CheckFilesystem(const std::string& storage_root) const;
  // The O_PATH directory fd of a folder; owned by the jail.
  int folder_fd(Folder folder) const;

  // Opens `name` in `folder`. `flags` is O_RDONLY, O_WRONLY or O_RDWR, optionally with O_CREAT,
  // O_EXCL, O_TRUNC, O_APPEND. O_TRUNC is applied only after the file was found to be a regular
  // file with one link (so refusing never truncates). On success returns the fd (the caller
  // owns it) and fills *st. New files get mode 0640.
  Result<int> OpenFile(Folder folder, const std::string& name, int flags, struct stat* st) const;

  // lstat semantics: fills *st for a regular file `name`; kNotFound for anything else. An empty
  // name stats the folder itself.
  Status Stat(Folder folder, const std::string& name, struct stat* st) const;

  // Unlinks the regular file `name`.
  Status Remove(Folder folder, const std::string& name) const;

  // Renames the regular file `from` to `to`. Without `overwrite`, an existing `to` is kept and
  // the call fails with kAlreadyExists (SFTP v3 rename); with it, a regular `to` is replaced
  // atomically (posix-rename@openssh.com).
  Status Rename(Folder from_folder, const std::string& from, Folder to_folder,
                const std::string& to, bool overwrite) const;

  // Sets the access and modification times of the regular file `name` (no symlink followed).
  Status SetTimes(Folder folder, const std::string& name, time_t atime, time_t mtime) const;

  // Opens the folder for listing. The caller owns the DIR* (closedir).
  Result<DIR*> OpenDir(Folder folder) const;

  Status StatVfs(Folder folder, struct statvfs* st) const;

  // For tests: act as if the kernel had no openat2 (exercises the O_NOFOLLOW fallback).
  static void ForceOpenatFallbackForTesting(bool force);

 private:
  Jail(std::string account, int root_fd, int in_fd, int out_fd);

  std::string account_;
  int root_fd_;
  int in_fd_;
  int out_fd_;
};

}  // namespace fordeler
