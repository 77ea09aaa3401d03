#include "sftp/account_registry.h"

#include <spdlog/spdlog.h>

#include "config/config.h"
#include "core/names.h"
#include "sftp/account_registry_impl.h"

namespace fordeler {

// ---- AccountState

bool AccountState::Idle(const OutFile& f) const {
  return f.holders == 0 && !f.taking && env_->Steady() >= f.ghost_until;
}

void AccountState::DropIfIdle(const std::string& name) {
  auto it = files_.find(name);
  if (it != files_.end() && Idle(it->second)) files_.erase(it);
}

Result<std::shared_ptr<FileTicket>> AccountState::Acquire(const std::string& name, bool write,
                                                          uint64_t* overlaps_seen) {
  MutexLock l(&mu_);
  OutFile& f = files_[name];
  if (f.taking) {
    if (write) return Status::Unavailable(name + ": being taken for delivery, try again");
    return Status::NotFound(name + ": no such file");
  }
  if (!f.ticket) f.ticket = std::make_shared<FileTicket>();
  ++f.holders;
  if (write) {
    uint64_t seen = f.ticket->overlapping_writers.load(std::memory_order_relaxed);
    if (overlaps_seen != nullptr) *overlaps_seen = seen;
    if (f.writers > 0) f.ticket->overlapping_writers.store(seen + 1, std::memory_order_release);
    ++f.writers;
  }
  return f.ticket;
}

void AccountState::ForgetTaken(const std::string& name) {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return;
  it->second.ghost_until = {};
  it->second.has_attrs = false;
}

void AccountState::Release(const std::string& name, bool write) {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  if (it == files_.end()) return;
  --it->second.holders;
  if (write) --it->second.writers;
  DropIfIdle(name);
}

bool AccountState::IsOpenForWriting(const std::string& name) const {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  return it != files_.end() && it->second.writers > 0;
}

bool AccountState::IsBeingTaken(const std::string& name) const {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  return it != files_.end() && it->second.taking;
}

bool AccountState::GhostStat(const std::string& name, struct stat* st) {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  if (it == files_.end() || !it->second.has_attrs) return false;
  const OutFile& f = it->second;
  if (!f.taking && env_->Steady() >= f.ghost_until) {
    DropIfIdle(name);
    return false;
  }
  *st = f.attrs;
  return true;
}

Status AccountState::Rename(const std::string& from, const std::string& to, bool overwrite) {
  MutexLock l(&mu_);
  auto f = files_.find(from);
  if (f != files_.end()) {
    if (f->second.taking) return Status::NotFound(from + ": no such file");
    if (f->second.holders > 0) return Status::Unavailable(from + " is open");
  }
  auto t = files_.find(to);
  if (t != files_.end() && (t->second.taking || t->second.writers > 0)) {
    return Status::Unavailable(to + " is in use");
  }
  return jail_->Rename(Folder::kOut, from, Folder::kOut, to, overwrite);
}

bool AccountState::BeginTake(const std::string& name) {
  // The attributes shown for 10 s after the take are the file's as the take begins: after its
  // last close (nobody has it open for writing), including any setstat since.
  struct stat st;
  bool have = jail()->Stat(Folder::kOut, name, &st).ok();
  MutexLock l(&mu_);
  OutFile& f = files_[name];
  if (f.writers > 0 || f.taking) {
    DropIfIdle(name);
    return false;
  }
  f.taking = true;
  f.has_attrs = have;
  if (have) f.attrs = st;
  if (f.ticket) f.ticket->revoked.store(true, std::memory_order_release);
  return true;
}

void AccountState::EndTake(const std::string& name, bool taken) {
  MutexLock l(&mu_);
  auto it = files_.find(name);
  if (it == files_.end() || !it->second.taking) return;
  OutFile& f = it->second;
  f.taking = false;
  if (taken) {
    f.ghost_until = env_->Steady() + kGhostDuration;
    f.ticket.reset();  // handles opened before keep the revoked ticket; new ones get a fresh one
  } else {
    f.has_attrs = false;
    if (f.ticket) f.ticket->revoked.store(false, std::memory_order_release);
  }
  // Forget names whose ghosts have expired, so the map only holds what is open or recent; at
  // most once a second, so that a busy account does not pay a sweep per take.
  auto now = env_->Steady();
  if (now < next_sweep_) return;
  next_sweep_ = now + std::chrono::seconds(1);
  for (auto i = files_.begin(); i != files_.end();) {
    i = Idle(i->second) ? files_.erase(i) : std::next(i);
  }
}

// ---- AccountRegistry

std::shared_ptr<AccountState> AccountRegistry::Impl::Find(const std::string& account) const {
  MutexLock l(&mu);
  auto it = accounts.find(account);
  return it == accounts.end() ? nullptr : it->second;
}

std::shared_ptr<Jail> AccountRegistry::Impl::CurrentJail(
    AccountState& state, std::initializer_list<Folder> folders) const {
  std::shared_ptr<Jail> jail = state.jail();
  std::string root;
  {
    MutexLock l(&mu);
    root = storage_root;
  }
  if (jail->IsCurrent(root, folders)) return jail;
  Result<std::shared_ptr<Jail>> fresh = Jail::Open(root, jail->account(), true);
  if (!fresh.ok()) {
    if (!state.NoteJailError(fresh.status().message())) return jail;
    spdlog::warn("event=jail_failed account={} error={}", jail->account(),
                 LogValue(fresh.status().message()));
    return jail;
  }
  spdlog::warn("event=jail_reopened account={} reason=\"its folders were removed or replaced\"",
               jail->account());
  state.ReplaceJail(*fresh);
  return *fresh;
}

std::shared_ptr<AccountState> AccountRegistry::Impl::GateState(const std::string& account) const {
  MutexLock l(&mu);
  auto it = accounts.find(account);
  if (it != accounts.end()) return it->second;
  auto gone = removed.find(account);
  return gone == removed.end() ? nullptr : gone->second.lock();
}

AccountRegistry::AccountRegistry(Env* env) : impl_(std::make_unique<Impl>(env)) {}
AccountRegistry::~AccountRegistry() = default;

Status AccountRegistry::Configure(const Config& config) {
  std::unordered_map<std::string, std::shared_ptr<AccountState>> next;
  {
    MutexLock l(&impl_->mu);
    impl_->storage_root = config.storage.root;
  }
  for (const Account& account : config.accounts) {
    std::shared_ptr<AccountState> old = impl_->Find(account.id);
    if (old) {  // keep the state (open handles, takes) of accounts that stay
      impl_->CurrentJail(*old);
      next[account.id] = old;
      continue;
    }
    Result<std::shared_ptr<Jail>> jail = Jail::Open(config.storage.root, account.id, true);
    if (!jail.ok()) return jail.status();
    // Refused at start, and by a reload that adds the account (contract §9). Accounts that stay
    // are not checked again: a reload must not fail (and keep a removed key working) for a
    // mount made under an account nobody added; its transfers fail with 5001 naming the folder.
    if (Status s = (*jail)->CheckFilesystem(config.storage.root); !s.ok()) return s;
    next[account.id] = std::make_shared<AccountState>(impl_->env, std::move(*jail));
  }
  MutexLock l(&impl_->mu);
  for (auto& [id, state] : impl_->accounts) {
    if (next.count(id) == 0) impl_->removed[id] = state;
  }
  for (auto i = impl_->removed.begin(); i != impl_->removed.end();) {
    i = next.count(i->first) != 0 || i->second.expired() ? impl_->removed.erase(i) : std::next(i);
  }
  impl_->accounts.swap(next);
  return Status::Ok();
}

std::shared_ptr<Jail> AccountRegistry::JailOf(const std::string& account) const {
  std::shared_ptr<AccountState> state = impl_->Find(account);
  return state ? impl_->CurrentJail(*state) : nullptr;
}

bool AccountRegistry::IsOpenForWriting(const std::string& account, const std::string& name) const {
  std::shared_ptr<AccountState> state = impl_->GateState(account);
  return state && state->IsOpenForWriting(name);
}

// An account a reload removed keeps its files in /OUT, and transfers it started before may still
// need to take them (or quarantine them): once its last session has ended, nothing can have them
// open, and the take goes ahead.
bool AccountRegistry::BeginTake(const std::string& account, const std::string& name) {
  std::shared_ptr<AccountState> state = impl_->GateState(account);
  return !state || state->BeginTake(name);
}

void AccountRegistry::EndTake(const std::string& account, const std::string& name, bool taken) {
  std::shared_ptr<AccountState> state = impl_->GateState(account);
  if (state) state->EndTake(name, taken);
}

}  // namespace fordeler
