#include "delivery/folder_watcher.h"
#include "core/names.h"
#include "core/thread_name.h"

#include <dirent.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <string_view>
#include <vector>

namespace fordeler {
namespace {

constexpr std::chrono::seconds kRetryEvery{1};

const char* FolderText(Folder folder) { return folder == Folder::kIn ? "IN" : "OUT"; }

}  // namespace

FolderWatcher::FolderWatcher(Callback callback) : callback_(std::move(callback)) {}

FolderWatcher::~FolderWatcher() {
  Stop();
  if (inotify_ >= 0) close(inotify_);
  if (wake_ >= 0) close(wake_);
}

Status FolderWatcher::Start() {
  inotify_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (inotify_ < 0) return Status::FromErrno(errno, "inotify_init1");
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) return Status::FromErrno(errno, "eventfd");
  thread_ = std::thread([this] {
    NameThisThread("folder-watch");
    Loop();
  });
  return Status::Ok();
}

void FolderWatcher::Watch(const Config& config) {
  MutexLock lock(&mu_);
  for (const auto& account : config.accounts) {
    for (Folder folder : {Folder::kIn, Folder::kOut}) {
      Watched w{account.id, folder,
                config.storage.root + "/accounts/" + account.id + "/" + FolderText(folder)};
      if (Add(w)) {
        lost_.erase(w.path);
      } else if (lost_.count(w.path) == 0) {
        spdlog::warn("event=watch_failed path={} error={} note=\"tried again every second\"",
                     LogValue(w.path), LogValue(std::strerror(errno)));
        lost_[w.path] = std::move(w);
      }
    }
  }
}

Status FolderWatcher::WatchStorageRoot(const std::string& root, std::function<void()> changed) {
  constexpr uint32_t kEvents = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR;
  MutexLock lock(&mu_);
  int wd = inotify_add_watch(inotify_, root.c_str(), kEvents);
  if (wd < 0) return Status::FromErrno(errno, "watch " + root);
  root_wd_ = wd;
  root_changed_ = std::move(changed);
  return Status::Ok();
}

bool FolderWatcher::Add(const Watched& w) {
  uint32_t events =
      w.folder == Folder::kOut ? (IN_CLOSE_WRITE | IN_MOVED_TO) : (IN_DELETE | IN_MOVED_FROM);
  int wd = inotify_add_watch(inotify_, w.path.c_str(),
                             events | IN_MOVE_SELF | IN_DELETE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW);
  if (wd < 0) return false;
  watches_[wd] = w;
  return true;
}

void FolderWatcher::Lose(int wd) {
  MutexLock lock(&mu_);
  auto it = watches_.find(wd);
  if (it == watches_.end()) return;
  Watched w = std::move(it->second);
  watches_.erase(it);
  inotify_rm_watch(inotify_, wd);  // a folder moved away would still be watched where it went
  spdlog::warn(
      "event=watch_lost account={} folder={} note=\"removed or moved away; watched again once it "
      "is back\"",
      w.account, FolderText(w.folder));
  lost_[w.path] = std::move(w);
}

void FolderWatcher::RetryLost() {
  std::vector<Watched> restored;
  {
    MutexLock lock(&mu_);
    for (auto it = lost_.begin(); it != lost_.end();) {
      if (Add(it->second)) {
        restored.push_back(std::move(it->second));
        it = lost_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const Watched& w : restored) {
    spdlog::info("event=watch_restored account={} folder={}", w.account, FolderText(w.folder));
    if (w.folder != Folder::kOut) continue;
    // What was put there while nobody listened (removals from a new /IN cannot be told).
    DIR* dir = opendir(w.path.c_str());
    if (dir == nullptr) continue;
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] != '.' && (e->d_type == DT_REG || e->d_type == DT_UNKNOWN)) {
        callback_(w.account, w.folder, e->d_name, /*removed=*/false);
      }
    }
    closedir(dir);
  }
}

bool FolderWatcher::OwnFolderChanged(const inotify_event* e) {
  std::function<void()> changed;
  {
    MutexLock lock(&mu_);
    if (e != nullptr && e->wd != root_wd_) return false;
    changed = root_changed_;
  }
  const std::string_view name = e != nullptr ? e->name : "";
  bool own = e == nullptr;
  for (std::string_view folder : {"spool", "staging", "quarantine"}) {  // storage.h OwnFolder
    own = own || name == folder;
  }
  if (own && changed) changed();
  return true;
}

void FolderWatcher::Stop() {
  if (!thread_.joinable()) return;
  uint64_t one = 1;
  ssize_t ignored = write(wake_, &one, sizeof one);
  (void)ignored;
  thread_.join();
}

void FolderWatcher::Loop() {
  alignas(inotify_event) char buf[64 * 1024];
  auto next_retry = std::chrono::steady_clock::now() + kRetryEvery;
  for (;;) {
    int timeout = -1;
    {
      MutexLock lock(&mu_);
      if (!lost_.empty()) {
        auto left = next_retry - std::chrono::steady_clock::now();
        timeout = static_cast<int>(std::max<int64_t>(
            0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
      }
    }
    pollfd fds[2] = {{inotify_, POLLIN, 0}, {wake_, POLLIN, 0}};
    if (poll(fds, 2, timeout) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if (std::chrono::steady_clock::now() >= next_retry) {
      RetryLost();
      next_retry = std::chrono::steady_clock::now() + kRetryEvery;
    }
    if (fds[0].revents == 0) continue;
    ssize_t n = read(inotify_, buf, sizeof buf);
    if (n <= 0) continue;
    for (char* p = buf; p < buf + n;) {
      auto* e = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        spdlog::warn("event=watch_overflow note=\"events lost; the hourly rescan catches up\"");
        OwnFolderChanged(nullptr);
        continue;
      }
      if (e->mask & (IN_MOVE_SELF | IN_DELETE_SELF)) {
        Lose(e->wd);
        continue;
      }
      if (e->len != 0 && OwnFolderChanged(e)) continue;
      if (e->len == 0 || (e->mask & IN_ISDIR)) continue;
      std::pair<std::string, Folder> where;
      {
        MutexLock lock(&mu_);
        auto it = watches_.find(e->wd);
        if (it == watches_.end()) continue;
        where = {it->second.account, it->second.folder};
      }
      bool removed = (e->mask & (IN_DELETE | IN_MOVED_FROM)) != 0;
      callback_(where.first, where.second, e->name, removed);
    }
  }
}

}  // namespace fordeler
