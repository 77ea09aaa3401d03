// SshSession: one SSH connection, from the accepted socket to the disconnect.
//
// libssh does the SSH protocol on a dup() of the accepted socket's fd; Boost.Asio tells the
// session when that fd is readable or writable, and the session then runs libssh's poll loop
// (ssh_event_dopoll with timeout 0) on the io_context thread that owns it. Each session has its
// own ssh_event, so no other session's callbacks ever run inside it (libssh-notes.md).
//
// After public-key authentication the client may open session channels and start the "sftp"
// subsystem on them; each such channel gets an SftpSession. Replies are written only outside
// libssh's callbacks, as much as the peer's window and libssh's output buffer allow; while a
// channel's SftpSession has too many replies queued its input is left unconsumed, which stops
// the peer once its window is used up (back-pressure, no unbounded queues).
//
// Thread safety: all members run on the session's executor. Shutdown() and Recheck() may be
// called from any thread; they post to it.
#pragma once

#include <libssh/callbacks.h>
#include <libssh/libssh.h>
#include <libssh/server.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "sftp/read_ahead.h"
#include "sftp/server_context.h"
#include "sftp/sftp_session.h"

namespace fordeler {

class SshSession : public std::enable_shared_from_this<SshSession> {
 public:
  // `libssh_fd` is a dup of the socket's descriptor, handed to libssh (which closes it) by
  // Start. The acceptor makes it, so that running out of descriptors pauses accepting.
  SshSession(ServerContext* server, boost::asio::ip::tcp::socket socket, int libssh_fd);
  ~SshSession();
  SshSession(const SshSession&) = delete;
  SshSession& operator=(const SshSession&) = delete;

  // Counts the connection against the unauthenticated-connection limits (ServerContext::
  // TryAdmit). When a limit refuses it, the connection is closed at once, before any SSH byte
  // is sent, the refusal is logged (and the first of a run audited), and false is returned:
  // the session is then done and must not be started. Call once, before Start.
  bool Admit();
  // Starts the key exchange. Call once, on the session's executor.
  void Start();
  // Ends the session with `reason` sent to the client. Thread-safe.
  void Shutdown(std::string reason);
  // Ends the session if its account or the key it logged in with is no longer configured.
  // Thread-safe.
  void Recheck();

  // Only meaningful on the session's executor.
  const std::string& account() const { return account_; }
  const std::string& address() const { return address_; }

 private:
  // One session channel of the connection. `sftp` exists once the client started the subsystem.
  struct Channel {
    SshSession* owner = nullptr;
    ssh_channel channel = nullptr;
    ssh_channel_callbacks_struct callbacks{};
    std::unique_ptr<SftpSession> sftp;
    std::vector<uint8_t> pending;  // input taken out of libssh after a stall, not yet consumed
    bool stalled = false;          // input left in libssh's buffer because replies piled up
    bool draining = false;         // ResumeInput is reading: callbacks must not consume
    bool eof = false;              // the client sent EOF: finish replies, then close
    bool closed = false;           // the channel is gone (by the client or by us)
    bool failed = false;           // protocol error: close the whole session
    int offloaded = 0;             // Offloader work whose completion has not run yet
  };

  // libssh callbacks: trampolines to the members below.
  static int OnAuthPubkey(ssh_session, const char* user, ssh_key key, char state, void* self);
  static int OnAuthPassword(ssh_session, const char* user, const char* password, void* self);
  static int OnAuthNone(ssh_session, const char* user, void* self);
  static ssh_channel OnChannelOpen(ssh_session, void* self);
  static int OnChannelData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                           void* channel);
  static int OnSubsystem(ssh_session, ssh_channel, const char* name, void* channel);
  static int OnExec(ssh_session, ssh_channel, const char* command, void* channel);
  static int OnShell(ssh_session, ssh_channel, void* channel);
  static int OnPty(ssh_session, ssh_channel, const char* term, int w, int h, int pw, int ph,
                   void* channel);
  static void OnChannelEof(ssh_session, ssh_channel, void* channel);
  static void OnChannelClose(ssh_session, ssh_channel, void* channel);

  int AuthPubkey(const std::string& user, ssh_key key, char state);
  // True (and logged) when `user` is banned from this source: the attempt is refused unseen.
  bool Banned(const std::string& user);
  // The session ends unauthenticated after trying `failed_user_`: one failure for the ban.
  void RecordLoginFailure();
  const AuthorizedKey* FindKey(const Config& config, const std::string& user,
                               const std::string& fingerprint) const;
  int ChannelData(Channel* ch, const uint8_t* data, uint32_t len);
  // SftpSessionOptions::offload for channel `ch`: work on the server's sync threads, `done` back
  // on this session's executor while the session and the channel's SFTP session still live.
  std::function<void(std::function<void()>, std::function<void()>)> Offloader(Channel* ch);

  void ContinueKeyExchange();
  void Pump();
  void AfterPoll();
  void ServiceChannel(Channel* ch);
  void ResumeInput(Channel* ch);
  void FlushChannel(Channel* ch);
  void ArmWaits();
  bool SocketWritable();
  void ArmIdleTimer(std::chrono::steady_clock::duration after);
  void Close(const std::string& reason);
  void CheckRecheck();

  ServerContext* server_;
  boost::asio::ip::tcp::socket socket_;
  int libssh_fd_;  // until Start hands it to libssh
  boost::asio::steady_timer login_timer_;
  boost::asio::steady_timer idle_timer_;
  ssh_session session_ = nullptr;
  ssh_event event_ = nullptr;
  ssh_server_callbacks_struct server_callbacks_{};
  std::vector<std::unique_ptr<Channel>> channels_;
  // Handles open in all the channels' SFTP sessions: max_handles_per_session bounds their sum.
  std::shared_ptr<size_t> open_handles_ = std::make_shared<size_t>(0);
  std::string address_;  // peer "ip:port"
  std::string ip_;       // peer ip only, for from= and bans
  std::string source_;   // SourceGroupOf(ip_): what the unauthenticated limits count
  std::string account_;  // set once authenticated
  std::string attempted_user_;
  std::string fingerprint_;  // of the last key offered; once authenticated, the one logged in with
  bool kex_done_ = false;
  bool kex_started_ = false;  // ContinueKeyExchange ran once (our banner is on its way)
  bool authenticated_ = false;
  bool closed_ = false;
  bool read_armed_ = false;
  bool write_armed_ = false;
  bool pump_posted_ = false;
  bool activity_ = false;  // something happened during this turn
  bool idle_armed_ = false;
  std::chrono::steady_clock::time_point last_activity_ = std::chrono::steady_clock::now();
  std::unique_ptr<uint8_t[]> read_buffer_;  // scratch for ResumeInput, not zero-filled
  ReadAhead read_ahead_;                    // socket input read by Pump and not yet taken by libssh
  // Keys offered (asked about or signed with) and passwords tried: a session that ends with
  // some and not logged in is one login_failed.
  int auth_attempts_ = 0;
  bool failure_logged_ = false;  // an event=login_failed (or limit) line was logged for it
  std::string limit_refused_;    // a session limit refused the login: disconnect saying why
  std::string failed_user_;      // last account tried with a key or password (not banned)
  bool counted_unauthenticated_ = false;  // Admit counted it; not yet ended

  // Channels open at once (a closed one is let go once nothing of it is pending: AfterPoll).
  static constexpr size_t kMaxChannelsPerSession = 64;
};

}  // namespace fordeler
