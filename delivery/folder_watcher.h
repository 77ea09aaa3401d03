// FolderWatcher: inotify on every account's /OUT and /IN, for files put there or removed by
// other means than fordeler's own SFTP server (e.g. an OpenSSH server sharing the storage root).
// A file closed after writing or moved into /OUT is reported as a change (the pipeline picks up
// triggers); a file removed from /IN is reported as removed (the pipeline records pickups).
// Events caused by fordeler's own server arrive too and are harmless: the pipeline ignores what
// it already handles.
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
  void Loop();

  Callback callback_;
  int inotify_ = -1;
  int wake_ = -1;  // eventfd that ends Loop()
  std::thread thread_;
  Mutex mu_;
  std::map<int, std::pair<std::string, Folder>> watches_ GUARDED_BY(mu_);
};

}  // namespace fordeler
