// SshSession: the libssh callbacks (authentication and channels). They run inside
// ssh_event_dopoll / ssh_handle_key_exchange on the session's thread; they never write to the
// channel themselves (libssh-notes.md): replies go out from SshSession::AfterPoll.
#include <spdlog/spdlog.h>

#include <cstring>

#include "config/address_pattern.h"
#include "core/env.h"
#include "core/names.h"
#include "sftp/account_registry.h"
#include "sftp/sftp_session.h"
#include "sftp/ssh_session.h"

namespace fordeler {

int SshSession::OnAuthPubkey(ssh_session, const char* user, ssh_key key, char state, void* self) {
  return static_cast<SshSession*>(self)->AuthPubkey(user ? user : "", key, state);
}

int SshSession::OnAuthPassword(ssh_session, const char* user, const char*, void* self) {
  auto* s = static_cast<SshSession*>(self);
  s->attempted_user_ = user ? user : "";
  if (s->Banned(s->attempted_user_)) return SSH_AUTH_DENIED;
  s->failed_user_ = s->attempted_user_;
  ++s->auth_attempts_;
  spdlog::info("event=auth_refused peer={} user={} method=password", s->address_,
               LogValue(s->attempted_user_));
  return SSH_AUTH_DENIED;
}

int SshSession::OnAuthNone(ssh_session, const char* user, void* self) {
  static_cast<SshSession*>(self)->attempted_user_ = user ? user : "";
  return SSH_AUTH_DENIED;
}

const AuthorizedKey* SshSession::FindKey(const Config& config, const std::string& user,
                                         const std::string& fingerprint) const {
  const Account* account = config.FindAccount(user);
  if (account == nullptr) return nullptr;
  auto now = server_->env()->Now();
  // As sshd does, every line with this key is tried: an expired line followed by a renewed one
  // for the same key lets the key in.
  for (const auto& candidate : account->keys) {
    if (candidate.fingerprint == fingerprint && candidate.ValidAt(now) &&
        candidate.AllowsAddress(ip_)) {
      return &candidate;
    }
  }
  return nullptr;
}

bool SshSession::Banned(const std::string& user) {
  // A reload that adds the source to ban_allow lifts its bans at once.
  const auto& allow = server_->config()->server.ban_allow;
  if (!allow.empty() && AddressMatchesPatterns(ip_, allow)) return false;
  std::chrono::milliseconds left{};
  if (!server_->bans().IsBanned(ip_, user, server_->env()->Steady(), &left)) return false;
  spdlog::info("event=login_refused peer={} user={} reason=banned ban_left={}s", address_,
               LogValue(user), std::chrono::ceil<std::chrono::seconds>(left).count());
  return true;
}

int SshSession::AuthPubkey(const std::string& user, ssh_key key, char state) {
  attempted_user_ = user;
  if (Banned(user)) return SSH_AUTH_DENIED;  // not even the key is looked at
  failed_user_ = user;
  // Asking "would this key do?" (SSH_PUBLICKEY_STATE_NONE) is an attempt too: OpenSSH's client
  // asks about every key first and never signs with one refused, so that is how a wrong, expired
  // or fenced (from=) key ends. A session that attempted and did not log in is one login_failed
  // (Close), with the last key it offered.
  ++auth_attempts_;
  fingerprint_ = KeyFingerprintOf(key);
  const AuthorizedKey* match = FindKey(*server_->config(), user, fingerprint_);
  if (state == SSH_PUBLICKEY_STATE_NONE) return match ? SSH_AUTH_SUCCESS : SSH_AUTH_DENIED;
  if (state != SSH_PUBLICKEY_STATE_VALID || match == nullptr) {
    failure_logged_ = true;
    spdlog::info("event=login_failed peer={} user={} key={}", address_, LogValue(user),
                 fingerprint_);
    return SSH_AUTH_DENIED;
  }
  if (server_->registry()->JailOf(user) == nullptr) {
    failure_logged_ = true;
    spdlog::warn("event=login_failed peer={} user={} reason=\"no jail\"", address_, LogValue(user));
    failed_user_.clear();  // our fault, not the client's
    return SSH_AUTH_DENIED;
  }
  std::string why;
  if (!server_->TryLogin(user, &why)) {
    failure_logged_ = true;  // the limit line says why
    spdlog::warn("event=limit peer={} account={} limit={}", address_, user, LogValue(why));
    server_->listener()->OnSessionEvent(
        {SessionEvent::Kind::kLimit, user, address_, fingerprint_, Folder::kRoot, "", why});
    limit_refused_ = why;
    failed_user_.clear();  // the key was right: no failure towards a ban
    return SSH_AUTH_DENIED;
  }
  authenticated_ = true;
  account_ = user;
  failed_user_.clear();
  server_->bans().RecordSuccess(ip_, user);
  if (counted_unauthenticated_) {
    counted_unauthenticated_ = false;
    server_->EndUnauthenticated(source_);
  }
  login_timer_.cancel();
  activity_ = true;
  spdlog::info("event=login account={} peer={} key={}", account_, address_, fingerprint_);
  server_->listener()->OnSessionEvent(
      {SessionEvent::Kind::kLogin, account_, address_, fingerprint_, Folder::kRoot, "", ""});
  return SSH_AUTH_SUCCESS;
}

ssh_channel SshSession::OnChannelOpen(ssh_session session, void* self) {
  auto* s = static_cast<SshSession*>(self);
  if (!s->authenticated_ || s->channels_.size() >= kMaxChannelsPerSession) return nullptr;
  auto ch = std::make_unique<Channel>();
  ch->owner = s;
  ch->channel = ssh_channel_new(session);
  if (ch->channel == nullptr) return nullptr;
  ch->callbacks.userdata = ch.get();
  ch->callbacks.channel_data_function = &SshSession::OnChannelData;
  ch->callbacks.channel_subsystem_request_function = &SshSession::OnSubsystem;
  ch->callbacks.channel_exec_request_function = &SshSession::OnExec;
  ch->callbacks.channel_shell_request_function = &SshSession::OnShell;
  ch->callbacks.channel_pty_request_function = &SshSession::OnPty;
  ch->callbacks.channel_eof_function = &SshSession::OnChannelEof;
  ch->callbacks.channel_close_function = &SshSession::OnChannelClose;
  ssh_callbacks_init(&ch->callbacks);
  ssh_set_channel_callbacks(ch->channel, &ch->callbacks);
  ssh_channel result = ch->channel;
  s->channels_.push_back(std::move(ch));
  return result;
}

int SshSession::OnChannelData(ssh_session, ssh_channel, void* data, uint32_t len, int is_stderr,
                              void* channel) {
  auto* ch = static_cast<Channel*>(channel);
  if (is_stderr) return static_cast<int>(len);
  return ch->owner->ChannelData(ch, static_cast<const uint8_t*>(data), len);
}

int SshSession::OnSubsystem(ssh_session, ssh_channel, const char* name, void* channel) {
  auto* ch = static_cast<Channel*>(channel);
  SshSession* s = ch->owner;
  if (ch->sftp != nullptr || name == nullptr || std::string(name) != "sftp") return -1;
  auto config = s->server_->config();
  SftpSessionOptions options;
  options.account = s->account_;
  options.address = s->address_;
  options.max_file_size = config->delivery.max_file_size;
  options.max_handles = static_cast<size_t>(config->server.max_handles_per_session);
  options.connection_handles = s->open_handles_;  // the limit is the connection's, not a channel's
  if (const Account* account = config->FindAccount(s->account_)) {
    options.out_quota = account->out_quota;
  }
  options.offload = s->Offloader(ch);
  ch->sftp = std::make_unique<SftpSession>(std::move(options), s->server_->registry(),
                                           s->server_->listener());
  return 0;
}

int SshSession::OnExec(ssh_session, ssh_channel, const char* command, void* channel) {
  auto* ch = static_cast<Channel*>(channel);
  spdlog::info("event=exec_refused account={} peer={} command_length={}", ch->owner->account_,
               ch->owner->address_, command ? std::strlen(command) : 0);
  return -1;
}

int SshSession::OnShell(ssh_session, ssh_channel, void*) { return -1; }

int SshSession::OnPty(ssh_session, ssh_channel, const char*, int, int, int, int, void*) {
  return -1;
}

void SshSession::OnChannelEof(ssh_session, ssh_channel, void* channel) {
  auto* ch = static_cast<Channel*>(channel);
  ch->eof = true;
}

void SshSession::OnChannelClose(ssh_session, ssh_channel, void* channel) {
  auto* ch = static_cast<Channel*>(channel);
  ch->closed = true;
}

}  // namespace fordeler
