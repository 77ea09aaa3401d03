#include "delivery/retention.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <future>
#include <vector>

#include "audit/audit_store.h"
#include "config/entries_parser.h"
#include "core/env.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "core/units.h"
#include "core/uuid.h"
#include "delivery/file_ops.h"
#include "delivery/storage.h"

namespace fordeler {

using Clock = std::chrono::system_clock;

struct RetentionSweeper::Context {
  std::shared_ptr<const Config> config;
  Clock::time_point now;
  Clock::time_point expire_before;  // named before this: expired
  Clock::time_point warn_before;    // named before this: warn
  SweepReport report;
  Batch batch;
};

namespace {

struct Entry {
  std::string name;
  Clock::time_point placed;  // ctime; for a delivered file in /IN, its delivered_at instead
  bool regular = false;
  bool directory = false;
};

// The entries of a directory fd (no dot-files), with their ctime.
std::vector<Entry> ListDir(int dir_fd) {
  std::vector<Entry> out;
  auto names = ListNames(dir_fd);
  if (!names.ok()) return out;
  for (const std::string& name : *names) {
    struct stat st;
    if (name[0] == '.' || fstatat(dir_fd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
    auto ctime = Clock::from_time_t(st.st_ctim.tv_sec);
    out.push_back({name, ctime, S_ISREG(st.st_mode), S_ISDIR(st.st_mode)});
  }
  return out;
}

}  // namespace

RetentionSweeper::RetentionSweeper(Env* env, Storage* storage, AuditStore* audit, AlertSink* alerts)
    : env_(env), storage_(storage), audit_(audit), alerts_(alerts) {}

RetentionSweeper::~RetentionSweeper() { Stop(); }

void RetentionSweeper::SetConfig(std::shared_ptr<const Config> config) {
  MutexLock lock(&mu_);
  config_ = std::move(config);
}

SweepReport RetentionSweeper::Sweep() {
  std::lock_guard<std::mutex> sweep_lock(sweep_mu_);
  Context c;
  {
    MutexLock lock(&mu_);
    c.config = config_;
  }
  if (c.config == nullptr) return {};
  c.now = env_->Now();
  c.expire_before = c.now - c.config->delivery.retention;
  c.warn_before = c.expire_before + c.config->delivery.retention_warning;
  for (const std::string& account : AccountsToSweep(*c.config)) {
    if (Interrupted(c)) break;
    SweepOut(c, account);
    SweepIn(c, account);
  }
  if (!Interrupted(c)) SweepQuarantine(c);
  if (!Interrupted(c)) SweepSpool(c);
  if (!c.batch.empty()) {
    Status s = audit_->Commit(std::move(c.batch));
    if (!s.ok()) spdlog::warn("event=retention_audit_failed error={}", LogValue(s.message()));
  }
  const SweepReport& r = c.report;
  spdlog::info(
      "event=retention_swept expired_out={} expired_deliveries={} expired_receipts={} "
      "expired_quarantine={} removed_spool={} warnings={}{}",
      r.expired_out, r.expired_deliveries, r.expired_receipts, r.expired_quarantine,
      r.removed_spool, r.warnings,
      r.stopped_early ? " stopped_early=true note=\"fordelerd is stopping\"" : "");
  return r;
}

bool RetentionSweeper::Interrupted(Context& c) const {
  if (stop_.load(std::memory_order_relaxed)) c.report.stopped_early = true;
  return c.report.stopped_early;
}

// The configured accounts, and the folders under accounts/ of accounts a reload removed: nobody
// can fetch from those any more, and what they hold must not stay for ever.
std::set<std::string> RetentionSweeper::AccountsToSweep(const Config& config) const {
  std::set<std::string> ids;
  for (const Account& account : config.accounts) ids.insert(account.id);
  int fd = openat(storage_->root(), "accounts", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return ids;
  for (const Entry& e : ListDir(fd)) {
    if (e.directory && IsValidId(e.name)) ids.insert(e.name);
  }
  close(fd);
  return ids;
}

void RetentionSweeper::SweepOut(Context& c, const std::string& account) {
  auto out = storage_->OutOf(account);
  if (!out.ok()) return;
  for (const Entry& e : ListDir(*out)) {
    if (Interrupted(c)) return;
    if (!e.regular || e.placed >= c.expire_before) continue;
    if (env_->UnlinkAt(*out, e.name).ok()) {
      ++c.report.expired_out;
      c.batch.AddEvent("expired", "", account, "folder=OUT name=" + LogValue(e.name));
    }
  }
}

// What a file in /IN is comes from the audit log first (KindOfInFile): a <name> may itself end
// in ".metadata" or ".sftpreceipt". A delivered file's age is its delivery's delivered_at, not
// its ctime: every recipient's copy and the spool file are one inode, so any recipient's pickup
// (an unlink) or the spool copy's removal would restart the clock of the others. Files fordeler
// has no delivery record of (receipts, leftovers) age by ctime; metadata goes once its data is
// gone (fetched or expired).
void RetentionSweeper::SweepIn(Context& c, const std::string& account) {
  auto in = storage_->InOf(account);
  if (!in.ok()) return;
  auto delivered = [&](const std::string& name) -> Result<bool> {
    auto found = audit_->FindDelivered(account, name);
    if (!found.ok()) return found.status();
    return found->has_value();
  };
  std::vector<DeliveryRecord> expiring;
  std::vector<Entry> metadata;
  for (Entry& e : ListDir(*in)) {
    if (Interrupted(c)) return;  // the deliveries found expiring so far wait for the next sweep
    if (!e.regular) continue;
    auto delivery = audit_->FindDelivered(account, e.name);
    if (!delivery.ok()) continue;  // not now: the next sweep looks again
    InFileKind kind = KindOfInFile(e.name, delivery->has_value());
    if (kind == InFileKind::kMetadata) {
      metadata.push_back(e);
      continue;
    }
    if (delivery->has_value()) {
      const DeliveryRecord& d = **delivery;
      if (d.delivered_at) e.placed = *d.delivered_at;
      WarnBeforeExpiry(c, d, e.placed);
      if (e.placed < c.expire_before) expiring.push_back(d);
      continue;
    }
    if (e.placed >= c.expire_before) continue;
    const std::string its_metadata = e.name + ".metadata";
    auto metadata_is_data = delivered(its_metadata);  // never remove a delivered data file
    if (!metadata_is_data.ok() || !env_->UnlinkAt(*in, e.name).ok()) continue;
    if (!*metadata_is_data) env_->UnlinkAt(*in, its_metadata);
    c.batch.AddEvent("expired", "", account, "folder=IN name=" + LogValue(e.name));
    ++c.report.expired_receipts;
  }
  ExpireDeliveries(c, *in, expiring);
  for (const Entry& e : metadata) {  // metadata whose data is gone (fetched or expired)
    if (e.placed >= c.expire_before) continue;
    struct stat st;
    std::string data = e.name.substr(0, e.name.size() - 9);
    if (fstatat(*in, data.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) continue;
    if (env_->UnlinkAt(*in, e.name).ok()) {
      c.batch.AddEvent("expired", "", account, "folder=IN name=" + LogValue(e.name));
      ++c.report.expired_receipts;
    }
  }
}

// Raises `retention_warning` once per delivery: the Alerter records it as an `alert` event whose
// detail starts with the key, which a later sweep (after a restart too) finds in the audit log.
void RetentionSweeper::WarnBeforeExpiry(Context& c, const DeliveryRecord& d,
                                        Clock::time_point placed) {
  if (placed >= c.warn_before || placed < c.expire_before) return;
  std::string key =
      "kind=retention_warning transfer=" + d.transfer_uuid + " recipient=" + d.recipient;
  if (warned_.count(key) != 0) return;
  auto recorded = audit_->AlertRecorded(d.recipient, placed, key);
  if (!recorded.ok()) {
    spdlog::warn("event=retention_audit_failed error={}", LogValue(recorded.status().message()));
    return;  // the next sweep looks again
  }
  if (warned_.size() >= kMaxRememberedWarnings) warned_.clear();
  warned_.insert(key);
  if (*recorded) return;
  ++c.report.warnings;
  if (alerts_ == nullptr) return;
  Clock::time_point expires = placed + c.config->delivery.retention;
  Alert a;
  a.kind = "retention_warning";
  a.state = "RETENTION_WARNING";
  a.due = expires;
  a.transfer = d.transfer_uuid;
  a.file = d.name_in_in;
  a.recipient = d.recipient;
  if (auto t = audit_->GetTransfer(d.transfer_uuid); t.ok() && t->has_value()) {
    a.sender = (*t)->sender;
    for (const std::string& id : (*t)->route_ids) a.route += (a.route.empty() ? "" : ",") + id;
    a.authority = (*t)->authority.value_or("");
  }
  a.message = "File " + PrintableName(d.name_in_in) + " delivered to " + d.recipient +
              " (transfer " + d.transfer_uuid + ") has not been picked up; it expires at " +
              FormatTime(expires) + ".";
  a.account = d.recipient;
  a.key = std::move(key);
  alerts_->Raise(std::move(a));
}

// Expiry is recorded before the files are removed (as a recall is), so that the removal, which
// the server or inotify reports, is never taken for a pickup: RecordPickup finds the delivery
// `expired`, not `delivered`. Each record requires the delivery to be still `delivered`
// (Batch::RequireDeliveryState): one picked up since the sweep looked is left alone. The records
// are submitted together and share a commit.
void RetentionSweeper::ExpireDeliveries(Context& c, int in,
                                        const std::vector<DeliveryRecord>& expiring) {
  std::vector<std::future<Status>> recorded;
  for (const DeliveryRecord& d : expiring) {
    DeliveryRecord x = d;
    x.state = DeliveryState::kExpired;
    x.expired_at = c.now;
    Batch batch;
    batch.RequireDeliveryState(d.transfer_uuid, d.recipient, DeliveryState::kDelivered)
        .PutDelivery(x)
        .AddEvent("expired", d.transfer_uuid, d.recipient,
                  "folder=IN name=" + LogValue(d.name_in_in));
    auto done = std::make_shared<std::promise<Status>>();
    recorded.push_back(done->get_future());
    audit_->Submit(std::move(batch), [done](const Status& s) { done->set_value(s); });
  }
  for (size_t i = 0; i < expiring.size(); ++i) {
    Status s = recorded[i].get();
    if (s.ok()) {
      RemoveExpired(c, in, expiring[i]);
    } else if (s.code() != Status::Code::kAlreadyExists) {
      spdlog::warn("event=retention_audit_failed error={}", LogValue(s.message()));
    }
  }
}

// Removes an expired delivery's metadata, then its data (so that a recipient never sees the
// metadata without its data). Should the data be gone already, the recipient fetched it between
// the record and the removal: the delivery is recorded as picked up after all. Should it fail
// otherwise, the delivery is `delivered` again (event `expire_failed`) and the next sweep tries
// again; its metadata may be gone, which only hides the file from the recipient.
void RetentionSweeper::RemoveExpired(Context& c, int in, const DeliveryRecord& d) {
  Status s = env_->UnlinkAt(in, d.name_in_in + ".metadata");
  if (s.ok() || IsNotFound(s)) s = env_->UnlinkAt(in, d.name_in_in);
  if (s.ok()) {
    ++c.report.expired_deliveries;
    return;
  }
  std::string name = "name=" + LogValue(d.name_in_in);
  DeliveryRecord back = d;
  Batch batch;
  batch.RequireDeliveryState(d.transfer_uuid, d.recipient, DeliveryState::kExpired);
  if (IsNotFound(s)) {
    back.state = DeliveryState::kPickedUp;
    back.picked_up_at = env_->Now();
    batch.PutDelivery(back).AddEvent("picked_up", d.transfer_uuid, d.recipient,
                                     name + " note=\"before retention removed it\"");
  } else {
    spdlog::warn("event=expire_failed transfer={} recipient={} error={}", d.transfer_uuid,
                 d.recipient, LogValue(s.message()));
    batch.PutDelivery(back).AddEvent("expire_failed", d.transfer_uuid, d.recipient,
                                     name + " error=" + LogValue(s.message()));
  }
  if (Status undo = audit_->Commit(std::move(batch)); !undo.ok()) {
    spdlog::warn("event=retention_audit_failed error={}", LogValue(undo.message()));
  }
}

void RetentionSweeper::SweepQuarantine(Context& c) {
  for (const Entry& e : ListDir(storage_->quarantine())) {
    if (Interrupted(c)) return;
    if (!e.directory || !IsUuid(e.name) || e.placed >= c.expire_before) continue;
    if (RemoveFolder(env_, storage_->quarantine(), e.name).ok()) {
      ++c.report.expired_quarantine;
      c.batch.AddEvent("expired", e.name, "", "folder=quarantine");
    }
  }
}

void RetentionSweeper::SweepSpool(Context& c) {
  for (const Entry& e : ListDir(storage_->spool())) {
    if (Interrupted(c)) return;
    // <uuid> is a transfer's data, <uuid>~<sender>~<trigger> (or <uuid>.trigger) its trigger,
    // normally removed as it ends.
    std::string uuid = e.name;
    if (auto spooled = ParseSpooledTriggerName(e.name)) {
      uuid = spooled->uuid;
    } else if (e.name.ends_with(kTriggerSuffix)) {
      uuid.resize(e.name.size() - kTriggerSuffix.size());
    }
    if (!e.regular || !IsUuid(uuid)) continue;
    // The data is aged by its transfer (received_at), not by the file's ctime: the recipients'
    // copies are the same inode, so each pickup, expiry (in this very sweep, too) or recall
    // changes that, and the copy would outlive `retention` by up to as much again.
    const bool data = uuid == e.name;
    if (!data && e.placed >= c.expire_before) continue;
    auto transfer = audit_->GetTransfer(uuid);
    bool finished =
        transfer.ok() && transfer->has_value() && (*transfer)->step == TransferStep::kDone;
    if (!finished || (data && (*transfer)->received_at >= c.expire_before)) continue;
    if (env_->UnlinkAt(storage_->spool(), e.name).ok()) ++c.report.removed_spool;
  }
  // A finished transfer's mark that its metadata was revealed (RevealedMarkName), left by a stop
  // between the commit recording its end and the mark's removal.
  for (const Entry& e : ListDir(storage_->staging())) {
    if (Interrupted(c)) return;
    std::optional<std::string> uuid = ParseRevealedMarkName(e.name);
    if (!e.regular || !uuid) continue;
    auto transfer = audit_->GetTransfer(*uuid);
    if (transfer.ok() && transfer->has_value() && (*transfer)->step == TransferStep::kDone) {
      env_->UnlinkAt(storage_->staging(), e.name);
    }
  }
}

void RetentionSweeper::Start(std::chrono::milliseconds interval, std::function<void()> after_each) {
  thread_ = std::thread([this, interval, after_each = std::move(after_each)] {
    NameThisThread("retention");
    for (;;) {
      Sweep();
      if (after_each && !stop_) after_each();
      std::unique_lock<std::mutex> lock(wait_mu_);
      if (wake_.wait_for(lock, interval, [this] { return stop_.load(); })) return;
    }
  });
}

void RetentionSweeper::Stop() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

}  // namespace fordeler
