// SftpSession: the SFTP version 3 protocol engine of one SSH channel, independent of SSH.
//
// The transport (ssh_server.cc) feeds it the bytes that arrive on the channel and sends the
// bytes it queues in output(). It frames packets, checks each request against the jail policy
// (contract §1) once, before any handler runs, and dispatches through a handler table. It
// never blocks on the network; file operations are local and short.
//
// Two classes of error (as OpenSSH's sftp-server): a malformed packet or one over
// kMaxPacketSize ends the session (Consume returns an error); an OS error becomes an SFTP status
// reply. Not thread-safe: one session is driven by one io_context thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/status.h"

namespace fordeler {

class AccountRegistry;
class FileEventListener;
struct Config;

inline constexpr size_t kMaxPacketSize = 256 * 1024;  // whole packet, length field excluded

// Bytes waiting to go out, in order. Appending may reallocate; Consume() from the front.
class OutputBuffer {
 public:
  const uint8_t* data() const { return buf_.get() + head_; }
  size_t size() const { return tail_ - head_; }
  bool empty() const { return size() == 0; }
  void Consume(size_t n);
  // Reserves `n` bytes at the end and returns where to write them (not zero-filled: a READ
  // reply is pread() straight into them).
  uint8_t* Append(size_t n);
  void Append(const void* data, size_t n);
  // Gives back the last `unused` bytes of what was appended.
  void Shrink(size_t unused);

 private:
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;
  size_t head_ = 0;
  size_t tail_ = 0;
};

struct SftpSessionOptions {
  std::string account;        // logged-in account id
  std::string address;        // peer "ip:port", for events
  size_t max_handles = 1024;  // open files and folders; beyond, OPEN and OPENDIR fail
  // Counts the handles of every SFTP session of one SSH connection, which max_handles then bounds
  // together (a client may open several SFTP channels); none: this session's alone.
  std::shared_ptr<size_t> connection_handles;
  uint64_t max_file_size = 10ULL << 30;
  std::optional<uint64_t> out_quota;  // bytes /OUT may hold; beyond, writes fail
  // Runs `work` on another thread, then `done` on the session's own (the transport drops `done`
  // when the session has ended meanwhile). When set, the CLOSE of an upload large enough to have
  // been written back while it arrived (1 MiB or more) is answered once the file is on disk
  // (fdatasync): a client sends its trigger after that answer, so the routing's syncs find the
  // data durable and need not wait for the upload's tail. Unset (tests, fuzzing): answered at once.
  std::function<void(std::function<void()> work, std::function<void()> done)> offload;
};

class SftpSession {
 public:
  // REQUIRES: registry and listener outlive the session; the account has a jail in registry.
  SftpSession(SftpSessionOptions options, AccountRegistry* registry, FileEventListener* listener);
  ~SftpSession();  // closes every handle (see Abort)
  SftpSession(const SftpSession&) = delete;
  SftpSession& operator=(const SftpSession&) = delete;

  // Processes every complete packet at the front of [data, data+len) and returns how many bytes
  // it consumed (a trailing partial packet is left for the next call). It stops early, leaving
  // whole packets unconsumed, once WantsInput() turns false. Returns an error when the session
  // must end: malformed or oversized packet, or a protocol violation. WRITE payloads are written
  // to disk straight from `data`.
  Result<size_t> Consume(const uint8_t* data, size_t len);

  // Replies waiting to be sent. The transport sends from the front and calls Consume(n) on it.
  OutputBuffer& output() { return output_; }

  // Back-pressure: false while so many replies are queued that no more input should be read.
  bool WantsInput() const { return output_.size() < kOutputHighWater; }

  // The channel ended without an orderly close: handles are closed; an upload still open is not
  // reported as complete, and a "<name>.trigger" still being written is removed, so that nothing
  // half-written looks complete.
  void Abort();

  static constexpr size_t kOutputHighWater = 1024 * 1024;

  struct Impl;  // shared by the engine's files (session_impl.h)

 private:
  std::unique_ptr<Impl> impl_;
  OutputBuffer output_;
};

}  // namespace fordeler
