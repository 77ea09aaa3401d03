// ServerContext: what the SSH server shares with its sessions. Owned by SshServer; every
// member is safe to use from any io_context thread.
#pragma once

#include <libssh/server.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "config/config.h"
#include "core/file_events.h"
#include "core/mutex.h"
#include "sftp/ban_table.h"

namespace fordeler {

class AccountRegistry;
class Env;
class SshSession;

// "SHA256:<base64>" of a public key, as ssh-keygen -l and AuthorizedKey::fingerprint spell it.
std::string KeyFingerprintOf(ssh_key key);

class ServerContext {
 public:
  ServerContext(Env* env, AccountRegistry* registry, FileEventListener* listener)
      : env_(env), registry_(registry), listener_(listener) {}

  Env* env() const { return env_; }
  AccountRegistry* registry() const { return registry_; }
  FileEventListener* listener() const { return listener_; }

  std::shared_ptr<const Config> config() const EXCLUDES(mu_);
  void set_config(std::shared_ptr<const Config> config) EXCLUDES(mu_);

  // ssh_bind_accept_fd reads the bind's shared state: serialised here.
  int AcceptFd(ssh_session session, int fd) EXCLUDES(mu_);
  void set_bind(ssh_bind bind) { bind_ = bind; }

  // Session bookkeeping. AddSession/RemoveSession bracket a session's life; TryLogin counts an
  // authenticated session against max_sessions / max_sessions_per_account and answers false
  // (counting nothing) when a limit would be passed.
  void AddSession(const std::shared_ptr<SshSession>& s) EXCLUDES(mu_);
  void RemoveSession(SshSession* s, const std::string& account) EXCLUDES(mu_);
  bool TryLogin(const std::string& account, std::string* why) EXCLUDES(mu_);
  std::set<std::shared_ptr<SshSession>> Sessions() const EXCLUDES(mu_);
  size_t session_count() const EXCLUDES(mu_);

  // Connections not yet authenticated, counted per source (SourceGroupOf). TryAdmit counts a new
  // connection and answers false (counting nothing) when max_unauthenticated or
  // max_unauthenticated_per_address would be passed; *why says which, and *first is true for
  // the first refusal since that count was last below its limit (the caller logs that one
  // prominently and audits it, so that a flood of connections does not flood the audit log).
  // EndUnauthenticated ends what TryAdmit counted: once, at login or close.
  bool TryAdmit(const std::string& source, std::string* why, bool* first) EXCLUDES(mu_);
  void EndUnauthenticated(const std::string& source) EXCLUDES(mu_);

  BanTable& bans() { return bans_; }

  // Where sessions sync what they must not wait for on their own thread (an upload's fdatasync
  // before its CLOSE is answered): the server's sync threads, while it runs.
  boost::asio::io_context* syncs() const { return syncs_; }
  void set_syncs(boost::asio::io_context* syncs) { syncs_ = syncs; }

 private:
  Env* const env_;
  AccountRegistry* const registry_;
  FileEventListener* const listener_;
  ssh_bind bind_ = nullptr;
  boost::asio::io_context* syncs_ = nullptr;
  mutable Mutex mu_;
  std::shared_ptr<const Config> config_ GUARDED_BY(mu_);
  std::map<SshSession*, std::shared_ptr<SshSession>> sessions_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_trim_ GUARDED_BY(mu_);  // see RemoveSession
  std::map<std::string, int> logins_ GUARDED_BY(mu_);
  int total_logins_ GUARDED_BY(mu_) = 0;
  struct Unauthenticated {
    int count = 0;
    bool refusing = false;  // a refusal was reported since count was last below the limit
  };
  std::map<std::string, Unauthenticated> unauthenticated_ GUARDED_BY(mu_);
  Unauthenticated total_unauthenticated_ GUARDED_BY(mu_);
  BanTable bans_;
};

}  // namespace fordeler
