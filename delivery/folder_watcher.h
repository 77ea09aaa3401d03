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
// Thread safety: Watch() and Stop() may be called from any thread; callbacks run on the
// watcher's own thread.
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

  Callback callback_;
  int inotify_ = -1;
  int wake_ = -1;  // eventfd that ends Loop()
  std::thread thread_;
  Mutex mu_;
  std::map<int, Watched> watches_ GUARDED_BY(mu_);
  std::map<std::string, Watched> lost_ GUARDED_BY(mu_);  // by path
};

}  // namespace fordeler
