#include "sftp/server_context.h"

#include <malloc.h>

#include "sftp/ssh_session.h"

namespace fordeler {

std::shared_ptr<const Config> ServerContext::config() const {
  MutexLock lock(&mu_);
  return config_;
}

void ServerContext::set_config(std::shared_ptr<const Config> config) {
  MutexLock lock(&mu_);
  config_ = std::move(config);
}

int ServerContext::AcceptFd(ssh_session session, int fd) {
  MutexLock lock(&mu_);
  return ssh_bind_accept_fd(bind_, session, fd);
}

void ServerContext::AddSession(const std::shared_ptr<SshSession>& s) {
  MutexLock lock(&mu_);
  sessions_.emplace(s.get(), s);
}

void ServerContext::RemoveSession(SshSession* s, const std::string& account) {
  std::shared_ptr<SshSession> keep;  // destroyed after the lock is released
  bool trim = false;
  {
    MutexLock lock(&mu_);
    auto it = sessions_.find(s);
    if (it == sessions_.end()) return;
    keep = std::move(it->second);
    sessions_.erase(it);
    if (!account.empty()) {
      if (--logins_[account] <= 0) logins_.erase(account);
      --total_logins_;
    }
    auto now = std::chrono::steady_clock::now();
    if (sessions_.empty() && now - last_trim_ >= std::chrono::seconds(1)) {
      trim = true;
      last_trim_ = now;
    }
  }
  keep.reset();
  // glibc keeps what a burst of sessions freed in its arenas, so RSS would stay at the burst's
  // peak for good (tests/e2e/test_load.py). When the last session has gone, hand it back.
  if (trim) malloc_trim(0);
}

bool ServerContext::TryLogin(const std::string& account, std::string* why) {
  MutexLock lock(&mu_);
  if (total_logins_ >= config_->server.max_sessions) {
    *why = "max_sessions (" + std::to_string(config_->server.max_sessions) + ") reached";
    return false;
  }
  int& count = logins_[account];
  if (count >= config_->server.max_sessions_per_account) {
    *why = "max_sessions_per_account (" + std::to_string(config_->server.max_sessions_per_account) +
           ") reached";
    if (count == 0) logins_.erase(account);
    return false;
  }
  ++count;
  ++total_logins_;
  return true;
}

bool ServerContext::TryAdmit(const std::string& source, std::string* why, bool* first) {
  MutexLock lock(&mu_);
  const ServerConfig& limits = config_->server;
  Unauthenticated* refused = nullptr;
  if (total_unauthenticated_.count >= limits.max_unauthenticated) {
    *why = "max_unauthenticated (" + std::to_string(limits.max_unauthenticated) + ") reached";
    refused = &total_unauthenticated_;
  } else {
    auto it = unauthenticated_.find(source);
    if (it != unauthenticated_.end() &&
        it->second.count >= limits.max_unauthenticated_per_address) {
      *why = "max_unauthenticated_per_address (" +
             std::to_string(limits.max_unauthenticated_per_address) + ") reached";
      refused = &it->second;
    }
  }
  if (refused != nullptr) {
    *first = !refused->refusing;
    refused->refusing = true;
    return false;
  }
  ++unauthenticated_[source].count;
  ++total_unauthenticated_.count;
  return true;
}

void ServerContext::EndUnauthenticated(const std::string& source) {
  MutexLock lock(&mu_);
  const ServerConfig& limits = config_->server;
  if (--total_unauthenticated_.count < limits.max_unauthenticated) {
    total_unauthenticated_.refusing = false;
  }
  auto it = unauthenticated_.find(source);
  if (it == unauthenticated_.end()) return;
  if (--it->second.count <= 0) {
    unauthenticated_.erase(it);
  } else if (it->second.count < limits.max_unauthenticated_per_address) {
    it->second.refusing = false;
  }
}

std::set<std::shared_ptr<SshSession>> ServerContext::Sessions() const {
  MutexLock lock(&mu_);
  std::set<std::shared_ptr<SshSession>> out;
  for (const auto& [ptr, s] : sessions_) out.insert(s);
  return out;
}

size_t ServerContext::session_count() const {
  MutexLock lock(&mu_);
  return sessions_.size();
}

}  // namespace fordeler
