// The placement (docs/architecture.md, step `spooled`): a transfer's data linked into every
// recipient's /IN, its metadata beside it and the sender's receipt, in two rounds of syncs and one
// commit. Part of the state machine in transfer_steps.cc.
#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "audit/chain.h"
#include "core/env.h"
#include "core/names.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"
#include "metadata/documents.h"

namespace fordeler {

namespace asio = boost::asio;

namespace {

// The sender's receipt is written here in staging, then renamed into its /IN.
std::string ReceiptTempName(const TransferRecord& t) { return t.uuid + ".receipt"; }

}  // namespace

// Places data and metadata in every recipient's /IN and the receipt in the sender's, with two
// rounds of syncs however many recipients there are: (1) Stage: the data linked into each /IN,
// and each metadata file and the receipt written to a temp file in staging, all synced together;
// (2) Reveal: metadata and receipt renamed in, and their folders synced together. The metadata
// appears only once its data's name is durable. One commit then records the deliveries, the
// receipt and the end (docs/architecture.md).
Status DeliveryPipeline::Impl::StepSpooled(const JobPtr& job) {
  if (!EnsureTrigger(job)) return Status::Ok();
  if (std::optional<Rejection> gone = RecipientRemoved(job)) {
    Reject(job, *gone);
    return Status::Ok();
  }
  auto staged = Stage(job);
  if (IsNotFound(staged.status())) {  // a recipient's /IN missing, or the data?
    std::optional<Rejection> lost;
    if (Status s = DataLost(job, &lost); !s.ok()) return s;
    if (lost) {
      // fordeler's failure, not the sender's: recorded as `failed` too (`fordeler status` counts
      // it), then ended like a rejection, so that the sender is told to send it again.
      Batch failed;
      failed.AddEvent("failed", job->t.uuid, job->t.sender,
                      "step=spooled error=" + LogValue(lost->description));
      audit->Submit(std::move(failed), [](const Status&) {});
      Reject(job, *lost);
      return Status::Ok();
    }
  }
  if (!staged.ok()) return staged.status();
  return Reveal(job, std::move(*staged));
}

// A recipient that a reload removed while the transfer waited to be placed (retrying after a
// failure, or across a restart) can no longer log in to fetch it, and no sweep expires its
// files: the transfer is rejected as a whole (all or nothing, contract §4) with 2001, rather
// than placed where nobody will find it. Not once its metadata may have been revealed (the
// mark): then it is delivered, as decided.
std::optional<Rejection> DeliveryPipeline::Impl::RecipientRemoved(const JobPtr& job) {
  auto cfg = config();
  for (const DeliveryRecord& d : job->deliveries) {
    if (d.state != DeliveryState::kPending || cfg->FindAccount(d.recipient) != nullptr) continue;
    if (StatAt(storage->staging(), RevealedMarkName(job->t.uuid)).ok()) return std::nullopt;
    return Rejection{ErrorCode::kUnknownRecipient,
                     d.recipient +
                         " is no longer an account: it was removed from the "
                         "configuration before the transfer could be placed"};
  }
  return std::nullopt;
}

Status DeliveryPipeline::Impl::DataLost(const JobPtr& job, std::optional<Rejection>* lost) {
  const TransferRecord& t = job->t;
  if (!IsNotFound(StatAt(storage->spool(), t.uuid).status())) return Status::Ok();  // usually
  // A spool removed and not yet noticed answers "not found" too; one moved away may hold it.
  if (!storage->CheckOwnFolder(OwnFolder::kSpool).ok()) return Status::Ok();  // waits for it
  const uint64_t generation = storage->generation();
  TakeOverLeftovers(*job);
  if (!IsNotFound(StatAt(storage->spool(), t.uuid).status())) return Status::Ok();
  if (storage->generation() != generation) return Status::Ok();  // replaced meanwhile: again
  if (!IsNotFound(StatAt(storage->staging(), RevealedMarkName(t.uuid)).status())) {
    return Status::Unavailable(
        "its data is no longer in the spool (removed while fordelerd ran), and its metadata was "
        "being put into the recipients' IN when a step failed: fordeler cannot tell which "
        "recipients have the file, so it neither delivers nor ends the transfer; see "
        "docs/operations.md");
  }
  *lost = Rejection{ErrorCode::kInternalError,
                    "fordeler lost the data file before it could be delivered: it is no longer "
                    "in fordeler's spool (the spool folder, or the file, was removed while "
                    "fordelerd ran); nothing was delivered: send the file and its trigger again"};
  return Status::Ok();
}

Result<DeliveryPipeline::Impl::Staged> DeliveryPipeline::Impl::Stage(const JobPtr& job,
                                                                     std::span<const int> also) {
  TransferRecord& t = job->t;
  Staged staged;
  std::vector<int> syncs(also.begin(), also.end());
  // Revealed before a stop: every pending delivery had its copy in /IN then.
  std::optional<uint64_t> revealed;
  if (StatAt(storage->staging(), RevealedMarkName(t.uuid)).ok()) {
    auto spooled = StatAt(storage->spool(), t.uuid);
    if (spooled.ok()) revealed = spooled->inode;
  }
  for (DeliveryRecord& d : job->deliveries) {
    if (d.state != DeliveryState::kPending) continue;
    auto in = storage->InOf(d.recipient);
    if (!in.ok()) return in.status();
    if (revealed && OwnCopies(*in, t, *revealed).empty()) {
      staged.fetched.push_back(&d);
      continue;
    }
    auto placed = PlaceData(env, storage->spool(), storage->staging(), *in, t.uuid, d.recipient,
                            t.name, [&] { KeepPromise(job.get(), d.recipient); });
    if (!placed.ok()) return placed.status();
    std::string temp = t.uuid + "." + d.recipient + ".metadata";
    auto fd = WriteTempFile(env, storage->staging(), temp, MetadataFor(*job, d, *placed), 0440);
    if (!fd.ok()) return fd.status();
    syncs.push_back(*in);
    syncs.push_back(fd->get());
    staged.placements.push_back({&d, *in, *placed, std::move(temp), std::move(*fd)});
  }
  // The receipt rides along; if it cannot be written, the deliveries are recorded without it.
  staged.receipt = ReceiptFor(t);
  auto sender_in = storage->InOf(t.sender);
  Result<UniqueFd> receipt_fd =
      sender_in.ok()
          ? WriteTempFile(env, storage->staging(), ReceiptTempName(t), staged.receipt, 0440)
          : Result<UniqueFd>(sender_in.status());
  staged.receipt_status = receipt_fd.status();
  if (receipt_fd.ok()) {
    staged.sender_in = *sender_in;
    syncs.push_back(receipt_fd->get());
    staged.receipt_fd = std::move(*receipt_fd);
  }
  if (Status s = env->FsyncAll(syncs); !s.ok()) return s;
  return staged;
}

Status DeliveryPipeline::Impl::Reveal(const JobPtr& job, Staged staged) {
  TransferRecord& t = job->t;
  auto mark = env->OpenAt(storage->staging(), RevealedMarkName(t.uuid), O_RDONLY | O_CREAT, 0440);
  if (!mark.ok()) return mark.status();
  if (Status s = env->Close(*mark); !s.ok()) return s;
  std::vector<int> folders = {storage->staging()};  // the mark, durable with the renames
  for (Staged::Placement& p : staged.placements) {
    Status s = env->RenameAt(storage->staging(), p.temp, p.in, p.placed + ".metadata", false);
    if (!s.ok()) return s;
    folders.push_back(p.in);
  }
  Status receipt_status = staged.receipt_status;
  if (receipt_status.ok()) {
    const std::string receipt_temp = ReceiptTempName(t);
    receipt_status = RenameReceiptIn(t, receipt_temp, staged.sender_in);
    if (receipt_status.ok()) {
      folders.push_back(staged.sender_in);
    } else {
      env->UnlinkAt(storage->staging(), receipt_temp);  // best effort
    }
  }
  if (Status s = env->FsyncAll(folders); !s.ok()) return s;
  env->CrashPoint("after_revealed");  // test-only: metadata and receipt in, not yet recorded

  Batch batch;
  for (Staged::Placement& p : staged.placements) {
    DeliveryRecord& d = *p.d;
    d.name_in_in = p.placed;
    d.state = DeliveryState::kDelivered;
    d.delivered_at = env->Now();
    batch.PutDelivery(d).AddEvent("delivered", t.uuid, d.recipient,
                                  "name=" + LogValue(p.placed) + DigestFields(t));
    spdlog::info("event=delivered transfer={} recipient={} name=\"{}\"", t.uuid, d.recipient,
                 PrintableName(p.placed));
  }
  for (DeliveryRecord* d : staged.fetched) {
    d->state = DeliveryState::kPickedUp;
    d->delivered_at = d->picked_up_at = env->Now();
    batch.PutDelivery(*d).AddEvent(
        "picked_up", t.uuid, d->recipient,
        "note=\"revealed before a stop and fetched while stopped\"" + DigestFields(t));
    spdlog::info("event=picked_up transfer={} recipient={} note=\"fetched while stopped\"", t.uuid,
                 d->recipient);
  }
  t.state = TransferState::kDelivered;
  t.step = TransferStep::kPlaced;
  t.error_code = 0;
  t.error_description.clear();
  if (metrics != nullptr) {
    metrics->CountTransfer(t.data_area.value_or(""), TransferResult::kDelivered);
    metrics->ObserveRoutingLatency(
        std::chrono::duration<double>(env->Now() - job->announced_at.value_or(t.received_at))
            .count());
  }
  // Should the receipt have failed, the placements are recorded as `placed`, and that step
  // sends the receipt again (and reports the failure if it persists).
  if (!receipt_status.ok()) {
    spdlog::warn("event=receipt_failed transfer={} error={}", t.uuid,
                 LogValue(receipt_status.message()));
    batch.PutTransfer(t);
    CommitThen(job, std::move(batch));
    return Status::Ok();
  }
  t.receipt_xml = std::move(staged.receipt);
  return FinishTransfer(job, std::move(batch));
}

// The fast path's `spooled`: the first half of the placement (links into /IN and temp files,
// nothing a recipient would take for a delivery) comes before the commit recording it, and its
// round of syncs also makes the take durable (`taken`: spool, OUT and the spooled data), so the
// metadata appears after one round of syncs and one commit. Should the daemon stop before the
// commit, recovery finds the data in the spool and its links already in /IN (PlaceData
// recognises its own inode), and places nothing twice. Should the placement fail, the take is
// made durable on its own and `spooled` recorded; StepSpooled then retries the placement.
Status DeliveryPipeline::Impl::StageThenCommit(const JobPtr& job, Batch batch,
                                               std::span<const int> taken) {
  auto staged = Stage(job, taken);
  if (!staged.ok()) {
    if (Status s = env->FsyncAll(taken); !s.ok()) return s;
    CommitThen(job, std::move(batch));
    return Status::Ok();
  }
  auto ready = std::make_shared<Staged>(std::move(*staged));
  batch = RecordReceived(*job, RecordRetried(*job, std::move(batch)));
  job->t.updated_at = env->Now();
  audit->Submit(std::move(batch), [this, job, ready](const Status& s) {
    if (!s.ok()) {  // only when the store is closing: resumes at the next start
      spdlog::warn("event=audit_failed transfer={} error={}", job->t.uuid, LogValue(s.message()));
      return;
    }
    env->CrashPoint("after_spooled");
    if (stopping) return;
    asio::post(pool, [this, job, ready] {
      if (Status r = Reveal(job, std::move(*ready)); !r.ok()) Failed(job, r);
    });
  });
  return Status::Ok();
}

// The sender's receipt: <name>.sftpreceipt in its /IN (ReceiptName), replacing an older one
// (contract §5); for a rejection also kept beside the quarantined files. Records nothing:
// FinishTransfer does.
std::string DeliveryPipeline::Impl::ReceiptFor(const TransferRecord& t) {
  std::optional<Rejection> error;
  if (t.state == TransferState::kRejected) {
    error = Rejection{ErrorCodeFromInt(t.error_code), t.error_description};
  }
  return WriteReceipt({t.uuid, t.senders_file_id, error});
}

Status DeliveryPipeline::Impl::RenameReceiptIn(const TransferRecord& t, const std::string& temp,
                                               int sender_in) {
  MutexLock lock(&PlacementLock(t.sender));
  return env->RenameAt(storage->staging(), temp, sender_in, ReceiptTarget(t, sender_in),
                       /*no_replace=*/false);
}

std::string DeliveryPipeline::Impl::ReceiptTarget(const TransferRecord& t, int sender_in) {
  std::string name = ReceiptName(t.name, t.uuid);
  auto there = StatAt(sender_in, name);
  if (IsNotFound(there.status())) return name;  // the usual case: nothing there
  // A receipt has one link. A data file placed here shares its inode with the spool's copy (and
  // the other recipients'), so it has more, also before the commit recording its delivery, which
  // the audit log cannot know of yet.
  if (there.ok() && there->regular) {
    auto delivered = audit->FindDelivered(t.sender, name);
    if (delivered.ok() && !delivered->has_value() && !NewerReceiptSent(t)) return name;
  }
  return ReceiptName(t.name, t.uuid, /*distinct=*/true);
}

// Whether the newest receipt sent for t's <name> is of a transfer received after t: a transfer
// that finishes late (it retried after a failure while the sender sent <name> again) must not
// replace the newer transfer's receipt (contract §5: a newer receipt replaces an older one).
bool DeliveryPipeline::Impl::NewerReceiptSent(const TransferRecord& t) {
  auto last = audit->FindLastReceipt(t.sender, t.name);
  if (!last.ok() || !last->has_value() || **last == t.uuid) return false;
  auto other = audit->GetTransfer(**last);
  return other.ok() && other->has_value() && (*other)->received_at > t.received_at;
}

Status DeliveryPipeline::Impl::WriteReceiptFiles(const JobPtr& job, int quarantine_dir) {
  TransferRecord& t = job->t;
  std::string receipt = ReceiptFor(t);
  auto in = storage->InOf(t.sender);
  if (!in.ok()) return in.status();
  const std::string temp = ReceiptTempName(t);
  auto fd = WriteTempFile(env, storage->staging(), temp, receipt, 0440);
  if (!fd.ok()) return fd.status();
  Status s = env->Fsync(fd->get());
  fd->Reset();
  if (s.ok()) s = RenameReceiptIn(t, temp, *in);
  if (!s.ok()) {
    env->UnlinkAt(storage->staging(), temp);  // best effort; nothing was made visible
    return s;
  }
  s = FsyncDir(env, *in);
  if (s.ok() && quarantine_dir >= 0) {
    s = WriteFileDurably(env, quarantine_dir, "receipt.xml.tmp", quarantine_dir, "receipt.xml",
                         receipt, 0440, false);
  }
  if (!s.ok()) return s;
  t.receipt_xml = receipt;
  return Status::Ok();
}

}  // namespace fordeler
