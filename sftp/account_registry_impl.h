// Internal to sftp/: the per-account state behind AccountRegistry, shared by every session of
// the account (sftp_session.cc) and by the delivery pipeline through OutboxGate.
//
// For each name in the account's /OUT that is open, being taken or recently taken it keeps: how
// many handles hold it and how many of them write, whether delivery is taking it, the ticket that
// revokes handles opened before a take, and the attributes a taken file keeps showing for
// kGhostDuration (contract §2). Names nobody holds are dropped. Thread-safe: one mutex per
// account; the hot path (READ/WRITE) only loads a ticket's atomic flag.
#pragma once

#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "core/env.h"
#include "core/mutex.h"
#include "sftp/account_registry.h"
#include "sftp/jail.h"

namespace fordeler {

inline constexpr std::chrono::seconds kGhostDuration{10};

// Shared by every handle on one file of /OUT; revoked while (and after) delivery takes the file.
struct FileTicket {
  std::atomic<bool> revoked{false};
  // Counts the times a writer opened the name while another writer had it open. A handle whose
  // count changed between its open and its close shared the file with another writer, so the
  // digest of its own writes need not describe the file.
  std::atomic<uint64_t> overlapping_writers{0};
  bool ok() const { return !revoked.load(std::memory_order_acquire); }
};

class AccountState {
 public:
  AccountState(Env* env, std::shared_ptr<Jail> jail) : env_(env), jail_(std::move(jail)) {}

  std::shared_ptr<Jail> jail() const EXCLUDES(mu_) {
    MutexLock l(&mu_);
    return jail_;
  }
  // The account's folders were replaced on disk: sessions that start from now on use `jail`.
  void ReplaceJail(std::shared_ptr<Jail> jail) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    jail_ = std::move(jail);
    jail_error_.clear();
  }
  // Opening the jail again failed with `error`: true the first time (to log it once).
  bool NoteJailError(const std::string& error) EXCLUDES(mu_) {
    MutexLock l(&mu_);
    if (error == jail_error_) return false;
    jail_error_ = error;
    return true;
  }

  // A handle on /OUT/<name> is being opened (before the file is). Fails (kUnavailable for
  // writers, kNotFound for readers) while the name is being taken. A writer gets in *overlaps_seen
  // the ticket's overlapping_writers as it stood before this open (counting this one if another
  // writer holds the name already).
  Result<std::shared_ptr<FileTicket>> Acquire(const std::string& name, bool write,
                                              uint64_t* overlaps_seen = nullptr) EXCLUDES(mu_);
  // The handle is closed (or its open failed).
  void Release(const std::string& name, bool write) EXCLUDES(mu_);
  // A file of that name was opened for writing: attributes kept from an earlier take of the name
  // describe it no longer. Not when the open failed: then stat still shows them (contract §2).
  void ForgetTaken(const std::string& name) EXCLUDES(mu_);

  bool IsOpenForWriting(const std::string& name) const EXCLUDES(mu_);
  bool IsBeingTaken(const std::string& name) const EXCLUDES(mu_);
  // The attributes a taken (or being taken) file still shows, if any.
  bool GhostStat(const std::string& name, struct stat* st) EXCLUDES(mu_);

  // Renames /OUT/<from> to /OUT/<to> (Jail::Rename), unless a handle in any session holds
  // `from` (kUnavailable: its tracking would stay with the old name, so a writer could reach the
  // file after delivery took it under the new one, and a reader could reach the delivered file),
  // a writer holds `to`, or delivery is taking either (kNotFound for `from`, kUnavailable for
  // `to`). Checked and done under the account's lock, so that no open slips in between.
  Status Rename(const std::string& from, const std::string& to, bool overwrite) EXCLUDES(mu_);

  bool BeginTake(const std::string& name) EXCLUDES(mu_);
  void EndTake(const std::string& name, bool taken) EXCLUDES(mu_);

 private:
  struct OutFile {
    int holders = 0;  // open handles on the name (readers and writers)
    int writers = 0;
    bool taking = false;
    bool has_attrs = false;  // `attrs` captured at BeginTake
    struct stat attrs;
    std::chrono::steady_clock::time_point ghost_until{};
    std::shared_ptr<FileTicket> ticket;
  };
  bool Idle(const OutFile& f) const REQUIRES(mu_);
  void DropIfIdle(const std::string& name) REQUIRES(mu_);

  Env* const env_;
  mutable Mutex mu_;
  std::shared_ptr<Jail> jail_ GUARDED_BY(mu_);
  std::string jail_error_ GUARDED_BY(mu_);  // the last failure to open it again
  std::unordered_map<std::string, OutFile> files_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_sweep_ GUARDED_BY(mu_){};
};

struct AccountRegistry::Impl {
  explicit Impl(Env* e) : env(e) {}
  // The state of `account`, or null when it is not configured.
  std::shared_ptr<AccountState> Find(const std::string& account) const EXCLUDES(mu);
  // The account's jail as its folders are now: when an operator removed, renamed or replaced
  // them since the jail was opened, opens (creating what is missing) and keeps a new one; the
  // old one when that fails (logged once per error). Only `folders` are looked at: sessions ask
  // before each request that names a path, about the folders it names; handles opened before
  // keep their file.
  std::shared_ptr<Jail> CurrentJail(AccountState& state, std::initializer_list<Folder> folders = {
                                                             Folder::kRoot, Folder::kIn,
                                                             Folder::kOut}) const EXCLUDES(mu);
  // What OutboxGate asks about: the state of `account`, also when a reload removed it while
  // sessions of it may still be closing (they hold the state). Null when nothing can have a file
  // of its /OUT open.
  std::shared_ptr<AccountState> GateState(const std::string& account) const EXCLUDES(mu);

  Env* const env;
  mutable Mutex mu;
  std::string storage_root GUARDED_BY(mu);
  std::unordered_map<std::string, std::shared_ptr<AccountState>> accounts GUARDED_BY(mu);
  // Accounts a reload removed, while their last sessions end.
  std::unordered_map<std::string, std::weak_ptr<AccountState>> removed GUARDED_BY(mu);
};

}  // namespace fordeler
