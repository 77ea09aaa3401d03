#pragma once

// Larger socket reads for libssh.
//
// libssh 0.10 reads its socket 4 KiB at a time, each read after a poll(2) of its own
// (ssh_socket_pollcallback, MAX_BUF_SIZE): a 1 GiB upload costs 262,000 poll and 262,000 recv
// calls, about a fifth of the server's CPU. Its API offers no way to change that.
//
// So fordelerd defines recv(2) and poll(2) itself (read_ahead.cc). The dynamic linker binds
// libssh's calls to these definitions before libc's. While a ReadAhead::Scope is open on a
// thread, they serve the scope's socket from a buffer that one recv fills with up to 64 KiB:
// recv takes from the buffer, and poll reports the socket readable, without a system call, for
// as long as the buffer holds data. Every other call (other threads, other descriptors, no open
// scope) goes straight to the kernel.
//
// The rule that keeps the byte stream in order: after the first Scope of a socket, every call
// into libssh that may read that socket runs inside a Scope of it (SshSession::Pump). Input left
// in the buffer when a Scope closes stays with the ReadAhead for the next Scope; the socket will
// not report it readable, so the owner must come back by itself (leftover()).

#include <poll.h>
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace fordeler {

class ReadAhead {
 public:
  static constexpr size_t kCapacity = 64 * 1024;

  ReadAhead() = default;
  ReadAhead(const ReadAhead&) = delete;
  ReadAhead& operator=(const ReadAhead&) = delete;

  // Serves `fd` through `ahead` on this thread while it lives. Scopes do not nest. The buffer
  // is the thread's while the scope lasts and goes back to the thread when it is left empty, so
  // an idle session holds none.
  class Scope {
   public:
    Scope(ReadAhead& ahead, int fd);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    ReadAhead& ahead_;
  };

  // Bytes read from the socket and not yet handed out.
  size_t leftover() const { return end_ - begin_; }

  // recv(2) and poll(2) as fordelerd defines them (read_ahead.cc).
  static ssize_t Recv(int fd, void* out, size_t len, int flags);
  static int Poll(pollfd* fds, nfds_t count, int timeout_ms);

 private:
  std::unique_ptr<uint8_t[]> data_;
  size_t begin_ = 0;
  size_t end_ = 0;
  int fd_ = -1;
};

}  // namespace fordeler
