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
// filesystem (renames and hard links must work between them; contract §9).
// Thread-safe; fds live as long as the Storage.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/mutex.h"
#include "core/status.h"

namespace fordeler {

class Storage {
 public:
  static Result<std::unique_ptr<Storage>> Open(Env* env, const std::string& root);

  int root() const { return root_.get(); }
  int spool() const { return spool_.get(); }
  int staging() const { return staging_.get(); }
  int quarantine() const { return quarantine_.get(); }

  // The account's IN or OUT folder; opened on first use and kept while root/accounts/<id>/IN
  // (OUT) is still that folder: opened again when an operator replaced it. Fails, naming the
  // folder, when it does not exist (yet), is not a folder (a symlink is not followed) or is not on
  // the storage root's filesystem. The fd stays valid as long as the Storage.
  Result<int> InOf(const std::string& account) EXCLUDES(mu_);
  Result<int> OutOf(const std::string& account) EXCLUDES(mu_);

  // Fails, naming it, when spool, staging or quarantine is no longer at its place under the root
  // (removed or replaced while fordelerd runs: fordeler keeps working in the folder it opened at
  // start until it is restarted). What the operator is told when a step fails.
  Status CheckOwnFolders() const;

  // Opens (creating if needed) quarantine/<uuid>.
  Result<UniqueFd> QuarantineDir(const std::string& uuid);

 private:
  Storage(Env* env, UniqueFd root, UniqueFd spool, UniqueFd staging, UniqueFd quarantine,
          dev_t device);
  Result<int> FolderOf(const std::string& account, const char* folder) EXCLUDES(mu_);

  Env* env_;
  UniqueFd root_, spool_, staging_, quarantine_;
  dev_t device_;
  Mutex mu_;
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
