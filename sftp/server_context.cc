#include "sftp/server_context.h"

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
  MutexLock lock(&mu_);
  auto it = sessions_.find(s);
  if (it == sessions_.end()) return;
  keep = std::move(it->second);
  sessions_.erase(it);
  if (!account.empty()) {
    if (--logins_[account] <= 0) logins_.erase(account);
    --total_logins_;
  }
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
