// Storage: the directories under the storage root that delivery works in, as directory fds
// (O_RDONLY|O_DIRECTORY, so they can be fsynced):
//
//   <root>/accounts/<id>/IN, OUT   the jails (created by the SFTP server's registry)
//   <root>/spool                   accepted data, one file per transfer (<uuid>, mode 0440),
//                                  and triggers being processed (<uuid>.trigger)
//   <root>/staging                 temp files and links on their way into an /IN
//   <root>/quarantine/<uuid>       rejected pairs with their receipt
//
// Open() creates spool, staging and quarantine and refuses a root whose parts are not on one
// filesystem (renames and hard links must work between them; contract §9). The jails are
// checked when the SFTP server's registry opens them (AccountRegistry::Configure).
//
// spool, staging and quarantine ("own folders") are held open, so a step pays no lookup by path
// for them: spool() and the others are one atomic load. An operator may still remove, move away
// or replace one while fordelerd runs; Refresh() compares each with what is at its path now (one
// fstatat each) and follows it: a folder that is back (or new) is opened, with the checks of
// Open(); one that is missing, not a folder (a symlink is never followed) or on another
// filesystem is let go, and its accessor returns -1 until it is back, on which every operation
// fails (EBADF): nothing is written into a folder moved away, through a symlink or across
// filesystems. Refresh() is the caller's to run: fordelerd runs it when the folder watch reports
// a change in the root, after a step failed, once a second, and at a reload (docs/architecture.md,
// "fordeler's own folders").
//
// Thread-safe. Every fd handed out stays open, on the same folder, as long as the Storage: an fd
// let go is kept (another thread may still be using its number) and TakeOver() links from it what
// transfers in flight left there.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/mutex.h"
#include "core/status.h"

namespace fordeler {

enum class OwnFolder { kSpool = 0, kStaging = 1, kQuarantine = 2 };
// "spool", "staging", "quarantine": the folder's name under the storage root.
const char* OwnFolderName(OwnFolder folder);

class Storage {
 public:
  static Result<std::unique_ptr<Storage>> Open(Env* env, const std::string& root);

  int root() const { return root_.get(); }
  // The folder as Refresh() last found it at its path; -1 while it is missing or refused.
  int own(OwnFolder folder) const {
    return current_[Index(folder)].load(std::memory_order_acquire);
  }
  int spool() const { return own(OwnFolder::kSpool); }
  int staging() const { return own(OwnFolder::kStaging); }
  int quarantine() const { return own(OwnFolder::kQuarantine); }
  // Counts the own folders opened anew since Open(). Read it before the fds: a caller that saw
  // generation G and then an fd has an fd of generation G or later.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  // Follows spool, staging and quarantine to the folders at their paths (above); with
  // `make_missing` (a reload), first makes a missing one (mode 0750). Returns why the first one
  // that cannot be used now cannot, naming it (what the operator is told when a step failed).
  // Logs each change once: `event=storage_reopened`, `storage_failed`, `storage_made`.
  Status Refresh(bool make_missing = false) EXCLUDES(mu_);
  // Refresh() of `folder` alone (an operator action that failed in it).
  Status CheckOwnFolder(OwnFolder folder) EXCLUDES(mu_);

  // For each of `names` missing from `folder`: a hard link to the file of that name in a folder
  // it replaced (the newest first), so that what a transfer in flight left in a folder moved away
  // (or wrote there before Refresh() noticed) is found where the transfer looks; nothing is
  // written into the old folder. Synced when anything was linked. Returns the names linked. Fails
  // while `folder` itself cannot be used. Costs nothing while no folder was replaced.
  Result<std::vector<std::string>> TakeOver(OwnFolder folder, std::span<const std::string> names)
      EXCLUDES(mu_);

  // The account's IN or OUT folder; opened on first use and kept while root/accounts/<id>/IN
  // (OUT) is still that folder: opened again when an operator replaced it. Fails, naming the
  // folder, when it does not exist (yet), is not a folder (a symlink is not followed) or is not on
  // the storage root's filesystem. The fd stays valid as long as the Storage.
  Result<int> InOf(const std::string& account) EXCLUDES(mu_);
  Result<int> OutOf(const std::string& account) EXCLUDES(mu_);

  // Opens (creating if needed) quarantine/<uuid>.
  Result<UniqueFd> QuarantineDir(const std::string& uuid);

 private:
  static constexpr size_t kOwnFolders = 3;
  static size_t Index(OwnFolder folder) { return static_cast<size_t>(folder); }
  struct Held {
    UniqueFd fd;          // invalid while the folder is missing or refused
    ino_t ino = 0;        // on device_: what the path must still lead to for `fd` to be used
    std::string problem;  // why it cannot be used now (logged once per problem)
    std::vector<UniqueFd> replaced;  // folders it replaced, oldest first
  };

  Storage(Env* env, UniqueFd root, std::array<UniqueFd, kOwnFolders> own, dev_t device);
  Result<int> FolderOf(const std::string& account, const char* folder) EXCLUDES(mu_);
  // Refresh() of one folder.
  Status RefreshOne(OwnFolder folder, bool make_missing) REQUIRES(mu_);
  // Lets go of the folder held for `folder` (kept in `replaced`): -1 is handed out from now on.
  // Logs `problem` unless it was the last one logged.
  void LetGo(OwnFolder folder, const std::string& problem) REQUIRES(mu_);

  Env* env_;
  UniqueFd root_;
  dev_t device_;
  std::array<std::atomic<int>, kOwnFolders> current_;  // written under mu_, read without
  std::atomic<uint64_t> generation_{0};                // written under mu_, read without
  Mutex mu_;
  std::array<Held, kOwnFolders> own_ GUARDED_BY(mu_);
  struct OpenFolder {
    UniqueFd fd;
    ino_t ino;  // on device_: what the path must still lead to for `fd` to be used
  };
  std::map<std::string, OpenFolder> folders_ GUARDED_BY(mu_);  // "<account>/IN" -> its folder
  std::vector<UniqueFd> retired_ GUARDED_BY(mu_);  // folders replaced since: fds handed out
};

// The name of a transfer's trigger in the spool. fordeler takes a trigger out of /OUT before the
// transfer is first recorded (docs/architecture.md, "the fast path"), so the name says whose it
// is: "<uuid>~<sender>~<trigger name>" (an account id never holds '~'), and start-up adopts such a
// file that has no record. nullopt when that would not fit in 255 bytes: such a transfer is
// recorded before its trigger is taken, and its trigger is spooled as LegacySpooledTrigger.
std::optional<std::string> SpooledTriggerName(std::string_view uuid, std::string_view sender,
                                              std::string_view trigger_name);
// "<uuid>.trigger": the name for a transfer recorded before its trigger was taken.
std::string LegacySpooledTrigger(std::string_view uuid);
// Where a transfer's trigger may be in the spool: first the name to take it to
// (SpooledTriggerName, or LegacySpooledTrigger when that does not fit), then the legacy name
// (transfers recorded by earlier builds).
std::vector<std::string> SpooledTriggerNames(std::string_view uuid, std::string_view sender,
                                             std::string_view trigger_name);

// An empty file "<uuid>.revealed" in staging while a transfer's metadata is revealed and its end
// not yet recorded: made durable with the metadata renames, removed once the end is committed
// (retention removes one a stop left behind). After a stop in between, it tells a copy in /IN
// that the recipient fetched meanwhile from one that was never placed, so the file is not
// delivered twice (docs/architecture.md).
std::string RevealedMarkName(std::string_view uuid);
// The uuid of a RevealedMarkName; nullopt for any other name.
std::optional<std::string> ParseRevealedMarkName(std::string_view name);

struct SpooledTrigger {
  std::string uuid;
  std::string sender;
  std::string trigger_name;
};
// The parts of a SpooledTriggerName; nullopt for any other name.
std::optional<SpooledTrigger> ParseSpooledTriggerName(std::string_view name);

// Opens `name` beneath `dir` as a directory (O_RDONLY|O_DIRECTORY|O_NOFOLLOW), creating it with
// `mode` first when `create` is set.
Result<UniqueFd> OpenDirectory(Env* env, int dir, const std::string& name, bool create,
                               mode_t mode);

}  // namespace fordeler
