#include "sftp/ssh_session.h"

#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/post.hpp>
#include <ctime>
#include <utility>

#include "core/env.h"
#include "core/names.h"
#include "sftp/account_registry.h"
#include "sftp/sftp_session.h"

namespace fordeler {

namespace asio = boost::asio;

namespace {

constexpr int kMaxPollRounds = 64;  // fairness: rounds of libssh input per turn on the thread
constexpr size_t kMaxPending = kMaxPacketSize + 64 * 1024;

std::string FormatEndpoint(const asio::ip::tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  std::string ip = addr.to_string();
  if (addr.is_v6()) return "[" + ip + "]:" + std::to_string(ep.port());
  return ip + ":" + std::to_string(ep.port());
}

std::string PeerIp(const asio::ip::tcp::endpoint& ep) {
  auto addr = ep.address();
  if (addr.is_v6() && addr.to_v6().is_v4_mapped()) {
    addr = asio::ip::make_address_v4(asio::ip::v4_mapped, addr.to_v6());
  }
  return addr.to_string();
}

std::string FormatUtc(std::chrono::system_clock::time_point t) {
  std::time_t secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace

void SshSession::RecordLoginFailure() {
  if (failed_user_.empty()) return;
  auto config = server_->config();
  if (!server_->bans().RecordFailure(config->server, ip_, failed_user_, server_->env()->Steady())) {
    return;
  }
  auto duration = std::chrono::duration_cast<std::chrono::seconds>(config->server.ban_duration);
  std::string until = FormatUtc(server_->env()->Now() + config->server.ban_duration);
  std::string why = "banned after " + std::to_string(config->server.ban_after) +
                    " failed logins from " + source_ + " until " + until;
  spdlog::warn("event=ban address={} account={} failures={} until={} duration={}s", source_,
               LogValue(failed_user_), config->server.ban_after, until, duration.count());
  server_->listener()->OnSessionEvent(
      {SessionEvent::Kind::kLimit, failed_user_, address_, "", Folder::kRoot, "", why});
}

std::string KeyFingerprintOf(ssh_key key) {
  unsigned char* hash = nullptr;
  size_t len = 0;
  if (ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash, &len) != 0) return {};
  char* text = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash, len);
  ssh_clean_pubkey_hash(&hash);
  if (text == nullptr) return {};
  std::string out = text;
  ssh_string_free_char(text);
  return out;
}

SshSession::SshSession(ServerContext* server, asio::ip::tcp::socket socket, int libssh_fd)
    : server_(server),
      socket_(std::move(socket)),
      libssh_fd_(libssh_fd),
      login_timer_(socket_.get_executor()),
      idle_timer_(socket_.get_executor()) {
  boost::system::error_code ec;
  auto peer = socket_.remote_endpoint(ec);
  if (!ec) {
    address_ = FormatEndpoint(peer);
    ip_ = PeerIp(peer);
  }
  source_ = SourceGroupOf(ip_);
  socket_.set_option(asio::ip::tcp::no_delay(true), ec);
  socket_.non_blocking(true, ec);
}

bool SshSession::Admit() {
  std::string why;
  bool first = false;
  if (server_->TryAdmit(source_, &why, &first)) {
    counted_unauthenticated_ = true;
    return true;
  }
  closed_ = true;
  boost::system::error_code ec;
  socket_.close(ec);
  if (first) {  // the rest of this run only at debug level, and not audited
    spdlog::warn("event=limit peer={} limit={} action=drop", address_, LogValue(why));
    server_->listener()->OnSessionEvent(
        {SessionEvent::Kind::kLimit, "", address_, "", Folder::kRoot, "", why});
  } else {
    spdlog::debug("event=limit peer={} limit={} action=drop", address_, LogValue(why));
  }
  return false;
}

SshSession::~SshSession() {
  if (libssh_fd_ >= 0) ::close(libssh_fd_);
  channels_.clear();
  if (event_ != nullptr) {
    if (session_ != nullptr) ssh_event_remove_session(event_, session_);
    ssh_event_free(event_);
  }
  if (session_ != nullptr) ssh_free(session_);
}

void SshSession::Start() {
  session_ = ssh_new();
  if (session_ == nullptr || server_->AcceptFd(session_, std::exchange(libssh_fd_, -1)) != SSH_OK) {
    spdlog::warn("event=accept_failed peer={} error={}", address_,
                 LogValue(session_ ? ssh_get_error(session_) : "out of memory"));
    Close("accept failed");
    return;
  }
  // Contract §1 offers no compression; libssh's server would offer zlib@openssh.com.
  ssh_options_set(session_, SSH_OPTIONS_COMPRESSION, "none");  // ("no" still offers zlib)
  ssh_set_blocking(session_, 0);
  server_callbacks_.userdata = this;
  server_callbacks_.auth_pubkey_function = &SshSession::OnAuthPubkey;
  server_callbacks_.auth_password_function = &SshSession::OnAuthPassword;
  server_callbacks_.auth_none_function = &SshSession::OnAuthNone;
  server_callbacks_.channel_open_request_session_function = &SshSession::OnChannelOpen;
  ssh_callbacks_init(&server_callbacks_);
  ssh_set_server_callbacks(session_, &server_callbacks_);
  ssh_set_auth_methods(session_, SSH_AUTH_METHOD_PUBLICKEY);

  auto config = server_->config();
  login_timer_.expires_after(config->server.login_grace);
  login_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec && !self->authenticated_) self->Close("login grace time exceeded");
  });
  ContinueKeyExchange();
}

void SshSession::ContinueKeyExchange() {
  if (closed_) return;
  // libssh forgets after every write that the socket is writable and buffers the next packet
  // until its poll sees POLLOUT, which it handles after POLLIN. When the client's banner and its
  // KEXINIT arrive together and match nothing, libssh then closes the socket with our KEXINIT
  // still buffered, and the client cannot say what we offer. So after the first step, tell it
  // what poll(2) says. Not on the first step: there our banner must stay buffered until that
  // same POLLOUT, so that no client that waits for it (all real ones) can answer in between.
  if (kex_started_ && SocketWritable()) ssh_set_fd_towrite(session_);
  kex_started_ = true;
  int rc = ssh_handle_key_exchange(session_);
  if (event_ == nullptr) {
    event_ = ssh_event_new();
    if (event_ == nullptr || ssh_event_add_session(event_, session_) != SSH_OK) {
      Close("cannot create poll context");
      return;
    }
  }
  if (rc == SSH_ERROR) {
    // libssh's message may quote what the client sent (its banner): escaped like a name.
    spdlog::info("event=kex_failed peer={} error={}", address_, LogValue(ssh_get_error(session_)));
    Close("key exchange failed");
    return;
  }
  if (rc == SSH_OK) {
    kex_done_ = true;
    Pump();
    return;
  }
  ArmWaits();
}

bool SshSession::SocketWritable() {
  pollfd pfd{socket_.native_handle(), POLLOUT, 0};
  return ::poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) != 0;
}

void SshSession::ArmWaits() {
  if (closed_) return;
  if (!read_armed_) {
    read_armed_ = true;
    socket_.async_wait(asio::socket_base::wait_read,
                       [self = shared_from_this()](boost::system::error_code ec) {
                         self->read_armed_ = false;
                         if (ec || self->closed_) return;
                         if (self->kex_done_) {
                           self->Pump();
                         } else {
                           self->ContinueKeyExchange();
                         }
                       });
  }
  if (!write_armed_ && (ssh_get_poll_flags(session_) & SSH_WRITE_PENDING)) {
    write_armed_ = true;
    socket_.async_wait(asio::socket_base::wait_write,
                       [self = shared_from_this()](boost::system::error_code ec) {
                         self->write_armed_ = false;
                         if (ec || self->closed_) return;
                         if (self->kex_done_) {
                           self->Pump();
                         } else {
                           self->ContinueKeyExchange();
                         }
                       });
  }
}

// Runs libssh on everything the socket has, then services the channels. The read wait is
// armed before polling, so that data arriving after the last poll always wakes us (Asio's
// epoll registration is edge-triggered).
void SshSession::Pump() {
  if (closed_) return;
  pump_posted_ = false;
  ArmWaits();
  // libssh reads 4 KiB per round; let it take them from 64 KiB reads. Input still buffered
  // when the rounds run out is served by the posted turn below, never by the socket's wait.
  ReadAhead::Scope read_ahead(read_ahead_, ssh_get_fd(session_));
  bool more = false;
  for (int round = 0; round < kMaxPollRounds; ++round) {
    int rc = ssh_event_dopoll(event_, 0);
    if (rc == SSH_ERROR || !ssh_is_connected(session_)) {
      Close("connection closed");
      return;
    }
    AfterPoll();
    if (closed_) return;
    if (rc == SSH_AGAIN) break;
    more = round + 1 == kMaxPollRounds;
  }
  ArmWaits();
  if (more && !pump_posted_) {  // let other sessions on this thread have a turn
    pump_posted_ = true;
    asio::post(socket_.get_executor(), [self = shared_from_this()] { self->Pump(); });
  }
}

void SshSession::AfterPoll() {
  if (!limit_refused_.empty()) {
    Close("login refused: " + limit_refused_);
    return;
  }
  if (!authenticated_ && ssh_get_error_code(session_) == SSH_FATAL) {
    // libssh drops a signed request it refuses (bad signature, SHA-1 RSA) without answering:
    // tell the client instead of leaving it waiting.
    spdlog::info("event=login_failed peer={} user={} reason={}", address_,
                 LogValue(attempted_user_), LogValue(ssh_get_error(session_)));
    failure_logged_ = true;
    // The client tried a key: a failed login like a wrong key (audit event, metric, ban count),
    // although libssh refused it before AuthPubkey saw it.
    ++auth_attempts_;
    if (!attempted_user_.empty()) failed_user_ = attempted_user_;
    Close("authentication failed: signature algorithm not accepted");
    return;
  }
  for (auto& ch : channels_) ServiceChannel(ch.get());
  for (auto& ch : channels_) {
    if (ch->failed) {
      Close("SFTP protocol error");
      return;
    }
  }
  for (auto& ch : channels_) {
    // A channel that ends with handles still open was cut off: nothing it left half-written may
    // look complete (SftpSession::Abort).
    if (ch->closed && ch->sftp) {
      ch->sftp->Abort();
      ch->sftp.reset();
    }
  }
  // A closed channel is let go once no work offloaded for it is still to complete, so that a
  // client opening a channel per job on one connection never runs out of them: with its
  // callbacks removed libssh calls nothing of it any more, and frees it (at once, or when the
  // peer's close arrives). Here, after a poll, no libssh callback is running.
  std::erase_if(channels_, [](const std::unique_ptr<Channel>& ch) {
    if (!ch->closed || ch->sftp != nullptr || ch->offloaded > 0) return false;
    ssh_remove_channel_callbacks(ch->channel, &ch->callbacks);
    ssh_channel_free(ch->channel);
    return true;
  });
  if (activity_) {  // cheap: a time stamp; the timer is armed once and re-checks it on expiry
    activity_ = false;
    last_activity_ = std::chrono::steady_clock::now();
    if (!idle_armed_) ArmIdleTimer(server_->config()->server.idle_timeout);
  }
}

void SshSession::ServiceChannel(Channel* ch) {
  if (ch->closed) return;
  if (ch->sftp != nullptr) {
    FlushChannel(ch);
    if (ch->stalled && ch->sftp->WantsInput()) ResumeInput(ch);
    FlushChannel(ch);
  }
  // Every request answered: a CLOSE whose answer waits for its file's sync counts as pending.
  bool drained = ch->sftp == nullptr ||
                 (ch->sftp->output().empty() && ch->pending.empty() && ch->offloaded == 0);
  if (ch->eof && drained) {
    // As sshd does when the subsystem ends: clients that run it as a command (scp, which
    // speaks SFTP since OpenSSH 9) report failure without an exit status.
    ssh_channel_request_send_exit_status(ch->channel, ch->sftp != nullptr ? 0 : 1);
    ssh_channel_send_eof(ch->channel);
    ssh_channel_close(ch->channel);
    ch->closed = true;
  }
}

// Sends queued replies, as far as the peer's window and libssh's output buffer allow.
void SshSession::FlushChannel(Channel* ch) {
  OutputBuffer& out = ch->sftp->output();
  while (!out.empty() && !ch->closed) {
    if (ssh_get_poll_flags(session_) & SSH_WRITE_PENDING) return;  // socket is full
    uint32_t window = ssh_channel_window_size(ch->channel);
    if (window == 0) return;
    uint32_t n = static_cast<uint32_t>(std::min<size_t>({out.size(), window, 1 << 20}));
    int rc = ssh_channel_write(ch->channel, out.data(), n);
    if (rc == SSH_ERROR) {
      ch->closed = true;
      return;
    }
    if (rc == 0) return;
    out.Consume(static_cast<size_t>(rc));
    activity_ = true;
  }
}

// Input was left in libssh while replies piled up; now that they drained, read it out.
void SshSession::ResumeInput(Channel* ch) {
  ch->draining = true;
  while (ch->sftp->WantsInput() && !ch->closed && !ch->failed) {
    size_t old = ch->pending.size();
    size_t room = kMaxPending - old;
    if (room > 0) {
      // Read into a reused scratch buffer: growing `pending` first would zero-fill it each time.
      if (!read_buffer_) read_buffer_ = std::make_unique_for_overwrite<uint8_t[]>(kMaxPending);
      int rc = ssh_channel_read_nonblocking(ch->channel, read_buffer_.get(),
                                            static_cast<uint32_t>(room), 0);
      if (rc > 0)
        ch->pending.insert(ch->pending.end(), read_buffer_.get(), read_buffer_.get() + rc);
      if (rc == SSH_ERROR) ch->closed = true;
    }
    if (ch->pending.size() == old && old == 0) {
      ch->stalled = false;  // nothing left anywhere: consume straight from libssh again
      break;
    }
    auto consumed = ch->sftp->Consume(ch->pending.data(), ch->pending.size());
    if (!consumed.ok()) {
      spdlog::info("event=sftp_error account={} peer={} error={}", account_, address_,
                   LogValue(consumed.status().message()));
      ch->failed = true;
      break;
    }
    ch->pending.erase(ch->pending.begin(), ch->pending.begin() + *consumed);
    activity_ = true;
    if (*consumed == 0 && ch->pending.size() == old) break;  // partial packet, no more data
    FlushChannel(ch);
  }
  ch->draining = false;
}

int SshSession::ChannelData(Channel* ch, const uint8_t* data, uint32_t len) {
  activity_ = true;
  if (ch->sftp == nullptr) return static_cast<int>(len);  // no subsystem: discard
  if (ch->draining || ch->failed || ch->closed) return 0;
  if (ch->stalled || !ch->pending.empty() || !ch->sftp->WantsInput()) {
    ch->stalled = true;
    return 0;
  }
  auto consumed = ch->sftp->Consume(data, len);
  if (!consumed.ok()) {
    spdlog::info("event=sftp_error account={} peer={} error={}", account_, address_,
                 LogValue(consumed.status().message()));
    ch->failed = true;
    return static_cast<int>(len);
  }
  // The engine stops taking packets once its replies pile up: resume when they have drained.
  if (*consumed < len && !ch->sftp->WantsInput()) ch->stalled = true;
  return static_cast<int>(*consumed);
}

std::function<void(std::function<void()>, std::function<void()>)> SshSession::Offloader(
    Channel* ch) {
  boost::asio::io_context* syncs = server_->syncs();
  if (syncs == nullptr) return {};  // not serving (tests): answered at once
  return [weak = weak_from_this(), ch, syncs, executor = socket_.get_executor()](
             std::function<void()> work, std::function<void()> done) {
    ++ch->offloaded;  // on the session's thread: the channel is kept until the completion ran
    asio::post(*syncs, [weak, ch, executor, work = std::move(work), done = std::move(done)] {
      work();
      asio::post(executor, [weak, ch, done] {
        std::shared_ptr<SshSession> self = weak.lock();
        if (self == nullptr) return;  // the channel ended with its session
        --ch->offloaded;
        // The SFTP session lives only until the channel closes.
        if (self->closed_ || ch->closed || ch->sftp == nullptr) {
          self->Pump();  // a closed channel may be let go now
          return;
        }
        done();
        self->Pump();  // sends the answer
      });
    });
  };
}

void SshSession::ArmIdleTimer(std::chrono::steady_clock::duration after) {
  idle_armed_ = true;
  idle_timer_.expires_after(after);
  idle_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    self->idle_armed_ = false;
    if (ec || self->closed_) return;
    auto timeout = self->server_->config()->server.idle_timeout;
    auto idle = std::chrono::steady_clock::now() - self->last_activity_;
    if (idle >= timeout) {
      self->Close("idle timeout");
    } else {
      self->ArmIdleTimer(timeout - idle);
    }
  });
}

void SshSession::Shutdown(std::string reason) {
  asio::post(socket_.get_executor(),
             [self = shared_from_this(), reason = std::move(reason)] { self->Close(reason); });
}

void SshSession::Recheck() {
  asio::post(socket_.get_executor(), [self = shared_from_this()] { self->CheckRecheck(); });
}

void SshSession::CheckRecheck() {
  if (closed_ || !authenticated_) return;
  auto config = server_->config();
  const Account* account = config->FindAccount(account_);
  bool key_found = false;
  if (account != nullptr) {
    for (const auto& key : account->keys) key_found |= key.fingerprint == fingerprint_;
  }
  if (!key_found) Close("account or key removed from the configuration");
}

void SshSession::Close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  login_timer_.cancel();
  idle_timer_.cancel();
  for (auto& ch : channels_) {
    if (ch->sftp) ch->sftp->Abort();
  }
  if (session_ != nullptr && ssh_is_connected(session_)) {
    ssh_session_set_disconnect_message(session_, reason.c_str());
    ssh_disconnect(session_);
  }
  if (!authenticated_ && auth_attempts_ > 0) {
    // The account a ban counts this failure for (RecordLoginFailure), when it counts one.
    const std::string& user = failed_user_.empty() ? attempted_user_ : failed_user_;
    if (!failure_logged_) {  // only keys asked about (or a password): say so once, here
      spdlog::info("event=login_failed peer={} user={} key={} reason={}", address_, LogValue(user),
                   fingerprint_.empty() ? "-" : fingerprint_, LogValue(reason));
    }
    server_->listener()->OnSessionEvent({SessionEvent::Kind::kLoginFailed, user, address_,
                                         fingerprint_, Folder::kRoot, "", reason});
  }
  if (!authenticated_) RecordLoginFailure();
  if (counted_unauthenticated_) {
    counted_unauthenticated_ = false;
    server_->EndUnauthenticated(source_);
  }
  // Before a login there is no account: `-`, as the log writes a value that is not there.
  spdlog::info("event=disconnect peer={} account={} reason={}", address_,
               authenticated_ ? account_ : "-", LogValue(reason));
  // Closing a socket with unread input makes the kernel send a reset, and the client then loses
  // what we sent last (our KEXINIT, the disconnect message). Read what is there first.
  char sink[4096];
  for (int i = 0; i < 16 && ::recv(socket_.native_handle(), sink, sizeof sink, MSG_DONTWAIT) > 0;
       ++i) {
  }
  boost::system::error_code ec;
  socket_.close(ec);
  server_->RemoveSession(this, authenticated_ ? account_ : std::string());
}

}  // namespace fordeler
