// AccountRegistry: the state the SFTP server shares between all sessions of all accounts.
//
// It knows every account's jail (directory fds opened beneath the storage root, and opened again
// when an operator removed or replaced a folder meanwhile), which
// files in each /OUT are open for writing and by how many handles, which are being taken by the
// delivery pipeline, and the attributes of recently closed uploads (contract §2: kept for 10 s
// after the file was taken). It implements OutboxGate for delivery. Thread-safe: all methods may
// be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "core/file_events.h"
#include "core/status.h"

namespace fordeler {

class Env;
struct Config;
class Jail;

class AccountRegistry : public OutboxGate {
 public:
  explicit AccountRegistry(Env* env);
  ~AccountRegistry() override;

  // Creates (if needed) root/accounts/<id>/{IN,OUT} for every account of `config` and opens
  // their jails (again, for accounts whose folders were removed or replaced). Accounts no longer
  // configured are dropped for new logins. Called at start and on reload. Fails, adding and
  // dropping no account, when a jail cannot be opened, or when an account it did not have yet
  // (every account, at start) has accounts/ or a folder of its jail on another filesystem than
  // the storage root (Jail::CheckFilesystem).
  Status Configure(const Config& config);

  // The jail of `account` as its folders are now, or null when it has none.
  std::shared_ptr<Jail> JailOf(const std::string& account) const;

  // OutboxGate
  bool IsOpenForWriting(const std::string& account, const std::string& name) const override;
  bool BeginTake(const std::string& account, const std::string& name) override;
  void EndTake(const std::string& account, const std::string& name, bool taken) override;

  struct Impl;  // shared with sftp_session.cc

  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fordeler
