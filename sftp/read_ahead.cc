// This file defines recv(2) and poll(2) for the whole process (see read_ahead.h). glibc's
// fortified inline wrappers of the two would clash with the definitions.
#undef _FORTIFY_SOURCE

#include "sftp/read_ahead.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

namespace fordeler {

namespace {

thread_local ReadAhead* active = nullptr;       // the open Scope's, if any
thread_local std::unique_ptr<uint8_t[]> spare;  // the thread's buffer between scopes

// The kernel's calls, under names this file does not define.
ssize_t SystemRecv(int fd, void* out, size_t len, int flags) {
  return ::recvfrom(fd, out, len, flags, nullptr, nullptr);
}

int SystemPoll(pollfd* fds, nfds_t count, int timeout_ms) {
  if (timeout_ms < 0) return ::ppoll(fds, count, nullptr, nullptr);
  timespec timeout{timeout_ms / 1000, (timeout_ms % 1000) * 1'000'000L};
  return ::ppoll(fds, count, &timeout, nullptr);
}

}  // namespace

ReadAhead::Scope::Scope(ReadAhead& ahead, int fd) : ahead_(ahead) {
  ahead.fd_ = fd;
  if (!ahead.data_) {
    ahead.data_ = spare ? std::move(spare) : std::make_unique_for_overwrite<uint8_t[]>(kCapacity);
  }
  active = &ahead;
}

ReadAhead::Scope::~Scope() {
  active = nullptr;
  if (ahead_.leftover() > 0) return;  // the input stays with its socket
  ahead_.begin_ = ahead_.end_ = 0;
  if (!spare) spare = std::move(ahead_.data_);
  ahead_.data_.reset();
}

ssize_t ReadAhead::Recv(int fd, void* out, size_t len, int flags) {
  ReadAhead* ahead = active;
  if (ahead == nullptr || ahead->fd_ != fd) return SystemRecv(fd, out, len, flags);
  if (ahead->leftover() == 0) {
    if ((flags & ~MSG_DONTWAIT) != 0 || len >= kCapacity) return SystemRecv(fd, out, len, flags);
    ssize_t n = SystemRecv(fd, ahead->data_.get(), kCapacity, flags);
    if (n <= 0) return n;
    ahead->begin_ = 0;
    ahead->end_ = static_cast<size_t>(n);
  } else if ((flags & ~MSG_DONTWAIT) != 0) {
    errno = EINVAL;  // MSG_PEEK and the like would see the socket's input out of order
    return -1;
  }
  size_t n = std::min(len, ahead->leftover());
  std::memcpy(out, ahead->data_.get() + ahead->begin_, n);
  ahead->begin_ += n;
  return static_cast<ssize_t>(n);
}

int ReadAhead::Poll(pollfd* fds, nfds_t count, int timeout_ms) {
  ReadAhead* ahead = active;
  if (ahead == nullptr || ahead->leftover() == 0) return SystemPoll(fds, count, timeout_ms);
  // The buffered input makes the scope's socket readable now. Its other events (POLLOUT) wait
  // for the first poll after the buffer is empty, at most 16 libssh reads later: libssh asks
  // for POLLOUT on nearly every round of an upload (it stops clearing the flag once a round has
  // read anything), and answering that would cost the system call this saves. Other descriptors
  // are asked about without waiting, and then the kernel's answer for this one is kept too.
  bool ours_readable = false;
  bool others = false;
  for (nfds_t i = 0; i < count; ++i) {
    if (fds[i].fd == ahead->fd_) {
      ours_readable |= (fds[i].events & POLLIN) != 0;
    } else if (fds[i].fd >= 0 && fds[i].events != 0) {
      others = true;
    }
  }
  if (!ours_readable) return SystemPoll(fds, count, timeout_ms);
  if (others) {
    int asked = SystemPoll(fds, count, 0);
    if (asked < 0) return asked;
  }
  int ready = 0;
  for (nfds_t i = 0; i < count; ++i) {
    if (!others) fds[i].revents = 0;  // no system call: nothing from the kernel to keep
    if (fds[i].fd == ahead->fd_ && (fds[i].events & POLLIN) != 0) fds[i].revents |= POLLIN;
    if (fds[i].revents != 0) ++ready;
  }
  return ready;
}

}  // namespace fordeler

// The process-wide definitions. They take precedence over libc's for every shared library,
// libssh included; fordelerd's dynamic symbol table exports them because libssh refers to them.
extern "C" ssize_t recv(int fd, void* out, size_t len, int flags) {
  return fordeler::ReadAhead::Recv(fd, out, len, flags);
}

extern "C" int poll(pollfd* fds, nfds_t count, int timeout_ms) {
  return fordeler::ReadAhead::Poll(fds, count, timeout_ms);
}
