// FolderWatcher: inotify on every account's /OUT and /IN, for files put there or removed by
// other means than fordeler's own SFTP server (e.g. an OpenSSH server sharing the storage root).
// A file closed after writing or moved into /OUT is reported as a change (the pipeline picks up
// triggers); a file removed from /IN is reported as removed (the pipeline records pickups).
// Events caused by fordeler's own server arrive too and are harmless: the pipeline ignores what
// it already handles.
//
// A watched folder that an operator removes or moves away (docs/operations.md, "A jail folder
// removed or replaced") is no longer listened to: what happens in `IN.old` is nobody's pickup.
// The watcher tries every second to watch the folder at its path again; once it can, it reports
// every file already in a new /OUT as changed, so that a trigger put there meanwhile is not left
// for the hourly rescan.
//
// It also watches the storage root itself, for fordeler's own folders (spool, staging,
// quarantine) removed, moved away or made there (WatchStorageRoot), so that fordelerd can follow
// them at once rather than when it next looks.
//
// Thread safety: Watch(), WatchStorageRoot() and Stop() may be called from any thread; callbacks
// run on the watcher's own thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "config/config.h"
#include "core/file_events.h"
#include "core/mutex.h"
#include "core/status.h"

struct inotify_event;

namespace fordeler {

class FolderWatcher {
 public:
  using Callback = std::function<void(const std::string& account, Folder folder,
                                      const std::string& name, bool removed)>;
  explicit FolderWatcher(Callback callback);
  ~FolderWatcher();

  Status Start();
  // Watches the folders of every account of `config` (adds new ones; keeps old ones).
  void Watch(const Config& config) EXCLUDES(mu_);
  // Calls `changed` whenever an entry called spool, staging or quarantine is made, removed or
  // renamed in `root` (or events were lost). Fails when the root cannot be watched.
  Status WatchStorageRoot(const std::string& root, std::function<void()> changed) EXCLUDES(mu_);
  void Stop();

 private:
  struct Watched {
    std::string account;
    Folder folder;
    std::string path;
  };
  void Loop();
  // Adds the watch of `w`; false when its folder cannot be watched now.
  bool Add(const Watched& w) REQUIRES(mu_);
  // The folder of `wd` was removed or moved away: forgets it and tries again later.
  void Lose(int wd) EXCLUDES(mu_);
  // Tries to watch the lost folders again; reports the files of each one of /OUT it now watches.
  void RetryLost() EXCLUDES(mu_);
  // An event of the storage root's watch (nullptr: events were lost): calls root_changed_ when it
  // is about an own folder. False when `e` is another watch's.
  bool OwnFolderChanged(const inotify_event* e) EXCLUDES(mu_);

  Callback callback_;
  int inotify_ = -1;
  int wake_ = -1;  // eventfd that ends Loop()
  std::thread thread_;
  Mutex mu_;
  std::map<int, Watched> watches_ GUARDED_BY(mu_);
  std::map<std::string, Watched> lost_ GUARDED_BY(mu_);  // by path
  int root_wd_ GUARDED_BY(mu_) = -1;
  std::function<void()> root_changed_ GUARDED_BY(mu_);
};

}  // namespace fordeler
