#include "delivery/folder_watcher.h"
#include "core/thread_name.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace fordeler {

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
      std::string path = config.storage.root + "/accounts/" + account.id +
                         (folder == Folder::kIn ? "/IN" : "/OUT");
      uint32_t mask =
          folder == Folder::kOut ? (IN_CLOSE_WRITE | IN_MOVED_TO) : (IN_DELETE | IN_MOVED_FROM);
      int wd = inotify_add_watch(inotify_, path.c_str(), mask | IN_ONLYDIR | IN_DONT_FOLLOW);
      if (wd < 0) {
        spdlog::warn("event=watch_failed path=\"{}\" error=\"{}\"", path, std::strerror(errno));
        continue;
      }
      watches_[wd] = {account.id, folder};
    }
  }
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
  for (;;) {
    pollfd fds[2] = {{inotify_, POLLIN, 0}, {wake_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    ssize_t n = read(inotify_, buf, sizeof buf);
    if (n <= 0) continue;
    for (char* p = buf; p < buf + n;) {
      auto* e = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        spdlog::warn("event=watch_overflow note=\"events lost; the hourly rescan catches up\"");
        continue;
      }
      if (e->len == 0 || (e->mask & IN_ISDIR)) continue;
      std::pair<std::string, Folder> where;
      {
        MutexLock lock(&mu_);
        auto it = watches_.find(e->wd);
        if (it == watches_.end()) continue;
        where = it->second;
      }
      bool removed = (e->mask & (IN_DELETE | IN_MOVED_FROM)) != 0;
      callback_(where.first, where.second, e->name, removed);
    }
  }
}

}  // namespace fordeler
