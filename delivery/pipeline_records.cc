// What the pipeline records besides a transfer's steps: recipients' pickups (reported by the SFTP
// server's remove, by inotify, or found after a transfer's last commit), downloads of files in
// /IN (with the transfer they belong to) and the sessions' logins, failed logins and limits
// (contract §10).
#include <spdlog/spdlog.h>

#include <map>

#include "core/names.h"
#include "core/uuid.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"

namespace fordeler {

void DeliveryPipeline::Impl::RecordPickup(const std::string& account, const std::string& name) {
  // The server's remove and inotify both report a pickup: one lookup at a time per name (the
  // compare-and-set in RecordPickupOf records it once however the reports interleave).
  auto key = std::make_pair(account, name);
  {
    MutexLock lock(&mu_);
    if (!pickups_.insert(key).second) return;
  }
  auto found = audit->FindDelivered(account, name);
  if (!found.ok() || !found->has_value()) {  // not a delivered data file (metadata, ...)
    // Also a delivery whose metadata appeared before its commit: RecordPickupsMeanwhile
    // records that pickup once the commit is done.
    MutexLock lock(&mu_);
    pickups_.erase(key);
    return;
  }
  // A report may come late (the server's and inotify's reports of one removal): meanwhile the
  // name may have been freed, the same name sent again and placed there, and its delivery found
  // here. A delivery whose own file (the spool's inode) is still under the name is not fetched.
  const DeliveryRecord& d = **found;
  auto in = storage->InOf(account);
  auto spooled = StatAt(storage->spool(), d.transfer_uuid);
  auto placed = in.ok() ? StatAt(*in, name) : Result<FileFacts>(in.status());
  if (spooled.ok() && placed.ok() && placed->inode == spooled->inode) {
    MutexLock lock(&mu_);
    pickups_.erase(key);
    return;
  }
  RecordPickupOf(d, "", [this, key](const Status&) {
    MutexLock lock(&mu_);
    pickups_.erase(key);
  });
}

void DeliveryPipeline::Impl::RecordPickupOf(DeliveryRecord d, const std::string& note,
                                            AuditStore::Done done) {
  std::string detail = "name=" + LogValue(d.name_in_in) + note;
  d.state = DeliveryState::kPickedUp;
  d.picked_up_at = env->Now();
  Batch batch;
  batch.RequireDeliveryState(d.transfer_uuid, d.recipient, DeliveryState::kDelivered)
      .PutDelivery(d)
      .AddEvent("picked_up", d.transfer_uuid, d.recipient, detail);
  audit->Submit(std::move(batch), std::move(done));
}

// The metadata of a delivery appears (Reveal) before the commit that records the delivery, and
// a recipient may fetch and remove the file in between: RecordPickup then finds no `delivered`
// row and drops the report. So once that commit is durable, each delivery is looked at again: a
// name no longer in the recipient's /IN, or now another file than the spool's (the name taken
// by a later transfer), was picked up meanwhile. A removal reported after the commit is also
// recorded by RecordPickup; both batches require the delivery to be `delivered`, so whichever
// commits first records the pickup and the other is skipped: exactly once. Runs on a worker
// once the commit has completed: a few fstatat calls.
void DeliveryPipeline::Impl::RecordPickupsMeanwhile(const Job& job) {
  if (job.t.state != TransferState::kDelivered) return;
  auto spooled = StatAt(storage->spool(), job.t.uuid);
  for (const DeliveryRecord& d : job.deliveries) {
    if (d.state != DeliveryState::kDelivered || d.name_in_in.empty()) continue;
    auto in = storage->InOf(d.recipient);
    if (!in.ok()) continue;
    auto placed = StatAt(*in, d.name_in_in);
    bool gone = IsNotFound(placed.status()) ||
                (placed.ok() && spooled.ok() && placed->inode != spooled->inode);
    if (gone) RecordPickupOf(d, " note=\"before its delivery was recorded\"", nullptr);
  }
}

// Pickups fordelerd did not see happen: a recipient removed a delivered file while fordelerd was
// stopped, after a crash took the unlink's report with it, or while inotify dropped events
// (watch_overflow). No report ever comes for those, and the delivery would stay `delivered` for
// ever (pending, alerted as not picked up, never expired: the retention sweep visits only files
// still in /IN). So each rescan (at start and hourly) looks at every delivery still `delivered`
// (AuditStore::AllDelivered, one indexed read) in its recipient's /IN, as RecordPickupsMeanwhile
// does: its name gone, or now another file than the spool's inode, is a pickup, recorded with
// the same requirement (still `delivered` when the commit applies), so a live report of the same
// removal, a recall or an expiry that commits first wins and the pickup is recorded once. Not
// when the recipient's /IN is missing, nor when the /IN there now was made after the delivery
// (its birth time, where the file system keeps one): the file was placed in a folder since moved
// away or removed, which is nobody's pickup (docs/operations.md). Cost: the index read, one
// fstatat per delivery waiting, one per transfer whose name is still there (its spool copy) and
// one statx per recipient.
void DeliveryPipeline::Impl::RecordPickupsUnseen() {
  auto waiting = audit->AllDelivered();
  if (!waiting.ok()) {
    spdlog::warn("event=rescan_failed what=pickups error={}", LogValue(waiting.status().message()));
    return;
  }
  struct In {
    int fd = -1;                    // -1: missing (InOf failed)
    std::optional<TimePoint> born;  // unset: not known
  };
  std::map<std::string, In> folders;  // by recipient
  std::string spooled_uuid;
  Result<FileFacts> spooled = Status::NotFound("");
  for (const DeliveryRecord& d : *waiting) {
    if (stopping) return;
    if (d.name_in_in.empty() || !d.delivered_at) continue;
    auto [it, added] = folders.try_emplace(d.recipient);
    if (added) {
      auto in = storage->InOf(d.recipient);
      if (in.ok()) it->second = In{*in, BirthTimeOf(*in)};
    }
    const In& in = it->second;
    auto delivered_ms = std::chrono::floor<std::chrono::milliseconds>(*d.delivered_at);
    if (in.fd < 0 || (in.born && *in.born >= delivered_ms + std::chrono::milliseconds(1))) {
      continue;  // not the folder the file was placed in
    }
    auto placed = StatAt(in.fd, d.name_in_in);
    if (placed.ok()) {
      if (spooled_uuid != d.transfer_uuid) {
        spooled_uuid = d.transfer_uuid;
        spooled = StatAt(storage->spool(), d.transfer_uuid);
      }
      if (!spooled.ok() || placed->inode == spooled->inode) continue;  // still there
    } else if (!IsNotFound(placed.status())) {
      continue;  // cannot tell now; the next rescan looks again
    }
    RecordPickupOf(d, " note=\"found by a rescan\"", [d](const Status& s) {
      if (!s.ok()) return;  // recorded otherwise meanwhile (a report, a recall, an expiry)
      spdlog::info(
          "event=picked_up transfer={} recipient={} name=\"{}\" note=\"found by a rescan\"",
          d.transfer_uuid, d.recipient, PrintableName(d.name_in_in));
    });
  }
}

// Who read a transfer's files is part of its record (contract §10): a download is recorded with
// the transfer when the audit log can tell which it was, and without one otherwise (a file put in
// /IN by other means, a record no longer there), as before. Its log line is written here, once the
// transfer is known, so that it names it as every other line of a transfer does (`transfer=-`
// when none is known). A delivered data file's size also counts as bytes sent (/metrics). Runs on
// a worker: these are audit-log reads.
void DeliveryPipeline::Impl::RecordDownload(const std::string& account, const std::string& name,
                                            TimePoint at) {
  bool data = false;
  std::string uuid = TransferDownloaded(account, name, at, &data);
  spdlog::info("event=downloaded transfer={} account={} folder=IN name=\"{}\"",
               uuid.empty() ? "-" : uuid, LogValue(account), PrintableName(name));
  if (data && metrics != nullptr) {  // fordeler_sent_bytes_total: the delivered file's size
    auto t = audit->GetTransfer(uuid);
    if (t.ok() && t->has_value() && (*t)->size) metrics->AddBytesOut(*(*t)->size);
  }
  Batch batch;
  // Dated when the server reported it: a pickup of the file, reported after the download and
  // recorded before this lookup was done, is then listed after it (AuditStore::EventsOf).
  batch.AddEvent("downloaded", uuid, account, "name=" + LogValue(name), at);
  audit->Submit(std::move(batch), [](const Status&) {});
}

// A <name> may itself end in ".metadata" or ".sftpreceipt" (contract §2): a delivered data file
// of that name is data (KindOfInFile's rule), and only then the suffix says what the file is.
std::string DeliveryPipeline::Impl::TransferDownloaded(const std::string& account,
                                                       const std::string& name, TimePoint at,
                                                       bool* data) {
  if (auto d = PlacedAt(account, name, at, /*data=*/true)) {
    *data = true;
    return d->transfer_uuid;
  }
  constexpr std::string_view kMetadata = ".metadata", kReceipt = ".sftpreceipt";
  if (name.ends_with(kMetadata)) {
    // Placement never lets a data file take another's metadata name: "<x>.metadata" is x's.
    auto d = PlacedAt(account, name.substr(0, name.size() - kMetadata.size()), at, false);
    return d ? d->transfer_uuid : "";
  }
  if (!name.ends_with(kReceipt)) return "";
  std::string stem = name.substr(0, name.size() - kReceipt.size());
  // "<name>.<uuid>.sftpreceipt" (ReceiptName's second form) names its transfer.
  if (stem.size() > 37 && stem[stem.size() - 37] == '.' && IsUuid(stem.substr(stem.size() - 36))) {
    auto t = audit->GetTransfer(stem.substr(stem.size() - 36));
    if (t.ok() && t->has_value() && (*t)->sender == account && !(*t)->receipt_xml.empty()) {
      return (*t)->uuid;
    }
  }
  auto last = audit->FindLastReceipt(account, stem);
  return last.ok() && last->has_value() ? **last : "";
}

// The name may have been freed and taken by a later delivery whose commit is not yet durable (its
// files appear just before it): the newest placement recorded is then an older one, gone from /IN
// before the download, and not the file read. A data file removed while a handle still read it
// (the handle closed after the removal) is taken for that case too: recorded without a transfer,
// rather than with the wrong one. The metadata stays when the data is picked up; expiry and
// recall remove both. Times are compared in the stored milliseconds.
std::optional<DeliveryRecord> DeliveryPipeline::Impl::PlacedAt(const std::string& recipient,
                                                               const std::string& name,
                                                               TimePoint at, bool data) {
  auto found = audit->FindPlaced(recipient, name);
  if (!found.ok() || !found->has_value()) return std::nullopt;
  const DeliveryRecord& d = **found;
  std::optional<TimePoint> left;
  if (data && d.state == DeliveryState::kPickedUp) left = d.picked_up_at;
  if (d.state == DeliveryState::kExpired) left = d.expired_at;
  if (d.state == DeliveryState::kRecalled) left = d.recalled_at;
  auto ms = [](TimePoint t) { return std::chrono::floor<std::chrono::milliseconds>(t); };
  if (left && ms(*left) < ms(at)) return std::nullopt;
  return d;
}

void DeliveryPipeline::Impl::RecordSessionEvent(const SessionEvent& e) {
  std::string kind, detail = "address=" + e.address;
  switch (e.kind) {
    case SessionEvent::Kind::kLogin:
      kind = "login";
      detail += " key=" + e.fingerprint;
      break;
    case SessionEvent::Kind::kLoginFailed:
      kind = "login_failed";
      if (!e.fingerprint.empty()) detail += " key=" + e.fingerprint;
      break;
    case SessionEvent::Kind::kLimit:
      kind = "limit";
      detail += " limit=" + LogValue(e.detail);
      break;
    default:
      return;
  }
  Batch batch;
  batch.AddEvent(kind, "", PrintableName(e.account), detail);
  audit->Submit(std::move(batch), [](const Status&) {});
}

}  // namespace fordeler
