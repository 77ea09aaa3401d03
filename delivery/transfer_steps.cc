// The delivery state machine of one transfer (docs/architecture.md). Each Step* does the work of
// one step — idempotently, so that recovery can run it again after a crash anywhere — and ends
// by committing the record of the next step; the commit's completion schedules that step.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <cerrno>
#include <memory>
#include <set>
#include <span>
#include <string>

#include "audit/chain.h"
#include "core/env.h"
#include "core/names.h"
#include "core/units.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"
#include "metadata/documents.h"

namespace fordeler {

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kDataPoll{200};  // re-check for a data file still on its way

// The sender's receipt is written here in staging, then renamed into its /IN.
std::string ReceiptTempName(const TransferRecord& t) { return t.uuid + ".receipt"; }

}  // namespace

std::vector<std::string> DeliveryPipeline::Impl::OwnCopies(int in, const TransferRecord& t,
                                                           uint64_t spooled) {
  std::vector<std::string> own;
  if (!IsValidName(t.name)) return own;  // never placed
  for (const std::string& name : {t.name, CollisionName(t.name, t.uuid)}) {
    auto there = StatAt(in, name);
    if (there.ok() && there->inode == spooled) own.push_back(name);
  }
  return own;
}

void DeliveryPipeline::Impl::Run(JobPtr job) {
  if (stopping) return;
  TakeOverLeftovers(*job);
  Status s;
  switch (job->t.step) {
    case TransferStep::kReceived:
      s = StepReceived(job);
      break;
    case TransferStep::kTriggerTaken:
      s = StepTriggerTaken(job);
      break;
    case TransferStep::kAccepted:
      s = StepAccepted(job);
      break;
    case TransferStep::kSpooled:
      s = StepSpooled(job);
      break;
    case TransferStep::kPlaced:
      s = StepPlaced(job);
      break;
    case TransferStep::kReceiptSent:
      s = StepReceiptSent(job);
      break;
    case TransferStep::kRejecting:
      s = StepRejecting(job);
      break;
    case TransferStep::kDone:
      Finish(job);
      return;
  }
  if (!s.ok()) Failed(job, s);
}

// An operator replaced spool or staging (docs/operations.md): what this transfer put in the old
// folder (perhaps in the second before Storage::Refresh noticed) is linked into the new one, so
// that its steps find it and nothing durable is lost. Only its own files: the rest of a folder
// moved away stays there.
void DeliveryPipeline::Impl::TakeOverLeftovers(Job& job) {
  const uint64_t generation = storage->generation();
  if (generation == job.storage_seen) return;  // the usual case
  const TransferRecord& t = job.t;
  std::vector<std::string> spooled = SpooledTriggerNames(t.uuid, t.sender, t.trigger_name);
  spooled.push_back(t.uuid);
  const std::vector<std::string> mark = {RevealedMarkName(t.uuid)};
  bool all = true;
  for (OwnFolder folder : {OwnFolder::kSpool, OwnFolder::kStaging}) {
    auto taken = storage->TakeOver(folder, folder == OwnFolder::kSpool ? spooled : mark);
    all = all && taken.ok();  // otherwise the step fails in that folder, and this runs again
    if (!taken.ok()) continue;
    for (const std::string& name : *taken) {
      spdlog::warn("event=storage_taken_over transfer={} folder={} name=\"{}\"", t.uuid,
                   OwnFolderName(folder), PrintableName(name));
    }
  }
  if (all) job.storage_seen = generation;
}

// Moves the trigger from /OUT into the spool and reads it. When the data file is already
// complete (the common case: a client uploads the data, then the trigger), the transfer goes on
// to `spooled` in this same step: both files taken, one fsync per folder for the two renames,
// one commit instead of three (docs/architecture.md, "the fast path"). Otherwise it is recorded
// as `trigger_taken`, or rejected.
Status DeliveryPipeline::Impl::StepReceived(const JobPtr& job) {
  TransferRecord& t = job->t;
  auto out = storage->OutOf(t.sender);
  if (!out.ok()) return out.status();
  const std::vector<std::string> names = SpooledTriggerNames(t.uuid, t.sender, t.trigger_name);
  std::string spooled;  // already taken (a step run again)?
  for (const std::string& name : names) {
    if (StatAt(storage->spool(), name).ok()) {
      spooled = name;
      break;
    }
  }
  const bool again = !spooled.empty();
  if (!again) {
    spooled = names.front();
    if (!gate->BeginTake(t.sender, t.trigger_name)) {  // reopened for writing meanwhile
      ScheduleAfter(job, kDataPoll);
      return Status::Ok();
    }
    Status s = env->RenameAt(*out, t.trigger_name, storage->spool(), spooled, true);
    gate->EndTake(t.sender, t.trigger_name, s.ok());
    // ENOENT also when the spool itself was removed: the trigger is then still in /OUT, and
    // this is fordeler's failure (retried), not the sender's.
    if (IsNotFound(s) && IsNotFound(StatAt(*out, t.trigger_name).status())) {
      Unclaim(*job);
      Reject(job, {ErrorCode::kTriggerMalformed,
                   "the trigger file was removed before fordeler could read it"});
      return Status::Ok();
    }
    if (!s.ok()) return s;
  }
  Unclaim(*job);  // the trigger has left /OUT: the same name may be sent again
  auto bytes = ReadSmallFile(env, storage->spool(), spooled, kMaxTriggerBytes + 1);
  if (!bytes.ok()) return bytes.status();
  t.trigger_xml = std::move(*bytes);

  auto cfg = config();
  Verdict verdict = Examine(job, *cfg);
  if (verdict.kind == Verdict::kReady) {
    std::optional<Digest> digest;
    auto took = TakeData(job, &digest);
    if (!took.ok()) return took.status();
    if (*took) {  // both renames and the data made durable by one round of syncs
      Batch batch;
      Accept(job, verdict, &batch);
      if (again) {  // placed before a stop, perhaps for recipients the routes no longer name
        std::set<std::string> keep(verdict.route.recipients.begin(),
                                   verdict.route.recipients.end());
        if (Status s = RemovePlacedCopies(t, -1, keep); !s.ok()) return s;
      }
      return SpoolData(job, digest, std::move(batch), *out);
    }
  }
  if (Status s = SyncSpoolAndOut(*out); !s.ok()) return s;
  if (verdict.kind == Verdict::kFail) return verdict.error;  // this step runs again
  if (verdict.kind == Verdict::kReject) {
    RejectRouted(job, verdict);
    return Status::Ok();
  }
  t.step = TransferStep::kTriggerTaken;  // StepTriggerTaken waits for the data
  Batch batch;
  batch.PutTransfer(t);
  CommitThen(job, std::move(batch));
  return Status::Ok();
}

Status DeliveryPipeline::Impl::SyncSpoolAndOut(int out) {
  const int folders[] = {storage->spool(), out};
  return env->FsyncAll(folders);
}

bool DeliveryPipeline::Impl::EnsureTrigger(const JobPtr& job) {
  std::optional<Rejection> why = ParseJobTrigger(job);
  if (why) Reject(job, *why);
  return !why;
}

// The slow path: the trigger came first; wait (up to trigger_grace) for a complete data file.
Status DeliveryPipeline::Impl::StepTriggerTaken(const JobPtr& job) {
  Verdict verdict = Examine(job, *config());
  switch (verdict.kind) {
    case Verdict::kWait:
      ScheduleAfter(job, kDataPoll);
      return Status::Ok();
    case Verdict::kReject:
      RejectRouted(job, verdict);
      return Status::Ok();
    case Verdict::kFail:
      return verdict.error;
    case Verdict::kReady:
      break;
  }
  job->t.step = TransferStep::kAccepted;
  Batch batch;
  Accept(job, verdict, &batch);
  batch.PutTransfer(job->t);
  CommitThen(job, std::move(batch));
  return Status::Ok();
}

// Takes the data file out of /OUT into the spool: a rename when fordeler's own server wrote it
// (with the digest computed while it arrived), a copy with hashing in one pass otherwise. False
// when the file was reopened for writing or removed meanwhile (look again later). Already in
// the spool (a step run again): nothing to do, no digest. SpoolData makes the move durable.
Result<bool> DeliveryPipeline::Impl::TakeData(const JobPtr& job, std::optional<Digest>* digest) {
  TransferRecord& t = job->t;
  if (StatAt(storage->spool(), t.uuid).ok()) return true;
  auto out = storage->OutOf(t.sender);
  if (!out.ok()) return out.status();
  if (!gate->BeginTake(t.sender, t.name)) return false;
  auto facts = StatAt(*out, t.name);
  if (IsNotFound(facts.status())) {  // removed (or renamed away) since it was found complete
    gate->EndTake(t.sender, t.name, false);
    return false;
  }
  auto info = TakeUploadInfo(t.sender, t.name);
  Status s = facts.status();
  if (s.ok() && info && info->inode == facts->inode && info->size == facts->size) {
    s = env->RenameAt(*out, t.name, storage->spool(), t.uuid, true);
    *digest = info->sha256;
  } else if (s.ok()) {
    auto copied = CopyAndHash(env, *out, t.name, storage->spool(), t.uuid, 0440);
    s = copied.status();
    if (s.ok()) {
      *digest = *copied;
      s = env->UnlinkAt(*out, t.name);
    }
  }
  gate->EndTake(t.sender, t.name, s.ok());
  if (!s.ok()) return s;
  return true;
}

// The slow path's second half: the data complete and the route recorded, take it.
Status DeliveryPipeline::Impl::StepAccepted(const JobPtr& job) {
  if (!EnsureTrigger(job)) return Status::Ok();
  std::optional<Digest> digest;
  auto out = storage->OutOf(job->t.sender);
  if (!out.ok()) return out.status();
  auto took = TakeData(job, &digest);
  if (!took.ok()) return took.status();
  if (!*took) {
    // Reopened for writing, or gone, since it was found complete: waited for like a data file
    // that has not come (contract §2), no longer than trigger_grace.
    const TransferRecord& t = job->t;
    auto cfg = config();
    if (env->Now() >= t.received_at + cfg->delivery.trigger_grace) {
      Reject(job, {ErrorCode::kDataFileMissing,
                   "no complete data file OUT/" + PrintableName(t.name) + " within " +
                       FormatDuration(cfg->delivery.trigger_grace) +
                       " (it was changed or removed after it was found complete)"});
      return Status::Ok();
    }
    ScheduleAfter(job, kDataPoll);
    return Status::Ok();
  }
  return SpoolData(job, digest, Batch(), *out);
}

// Makes the spooled data read-only, checks its digest against the trigger's Sha256, and goes on
// to the placement, which makes the data and its move from `out` durable before it commits
// `batch` with the transfer at `spooled` (StageThenCommit).
Status DeliveryPipeline::Impl::SpoolData(const JobPtr& job, std::optional<Digest> digest,
                                         Batch batch, int out) {
  TransferRecord& t = job->t;
  auto fd = env->OpenAt(storage->spool(), t.uuid, O_RDONLY, 0);
  if (!fd.ok()) return fd.status();
  UniqueFd spooled(*fd);
  // The size was checked before the take; a session may have rewritten the file in between (it
  // was not open for writing at the take, but may have been opened, written and closed since
  // the check). What was taken is what is delivered, so it is what must match the trigger.
  struct stat st;
  if (fstat(spooled.get(), &st) != 0) return Status::FromErrno(errno, "stat spooled data");
  if (static_cast<uint64_t>(st.st_size) != job->trigger->size_in_bytes) {
    Reject(job, {ErrorCode::kSizeMismatch,
                 "SizeInBytes is " + std::to_string(job->trigger->size_in_bytes) +
                     " but the data file has " + std::to_string(st.st_size) +
                     " bytes (it changed while fordeler took it)"});
    return Status::Ok();
  }
  if (Status s = env->Fchmod(spooled.get(), 0440); !s.ok()) return s;
  if (!digest) {
    auto hashed = HashFileAt(env, storage->spool(), t.uuid);
    if (!hashed.ok()) return hashed.status();
    digest = *hashed;
  }
  t.sha256 = ToHex(*digest);
  // The data must be on disk before anything that points at it is recorded or revealed (contract
  // §5: "fsynced"), and so must the renames that moved it (and the trigger) out of /OUT: one
  // round of syncs, shared with the placement's first (StageThenCommit). A renamed upload was
  // never fsynced; the SFTP server started its write-back while it arrived (sync_file_range), so
  // this is short even for a large file.
  const int taken[] = {storage->spool(), out, spooled.get()};
  if (job->trigger->sha256 && *job->trigger->sha256 != *t.sha256) {
    if (Status s = env->FsyncAll(taken); !s.ok()) return s;
    Reject(job, {ErrorCode::kChecksumMismatch,
                 "Sha256 " + *job->trigger->sha256 + " differs from the data file's " + *t.sha256});
    return Status::Ok();
  }
  t.state = TransferState::kDelivering;
  t.step = TransferStep::kSpooled;
  batch.PutTransfer(t);
  return StageThenCommit(job, std::move(batch), taken);
}

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
    receipt_status = env->RenameAt(storage->staging(), receipt_temp, staged.sender_in,
                                   ReceiptTarget(t, staged.sender_in), /*no_replace=*/false);
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
        std::chrono::duration<double>(env->Now() - t.received_at).count());
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

Status DeliveryPipeline::Impl::StepPlaced(const JobPtr& job) {
  if (Status s = WriteReceiptFiles(job, -1); !s.ok()) return s;
  job->t.error_code = 0;  // a failure to send the receipt is over
  job->t.error_description.clear();
  return FinishTransfer(job, Batch());
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

std::string DeliveryPipeline::Impl::ReceiptTarget(const TransferRecord& t, int sender_in) {
  std::string name = ReceiptName(t.name, t.uuid);
  if (IsNotFound(StatAt(sender_in, name).status())) return name;  // the usual case: nothing there
  auto delivered = audit->FindDelivered(t.sender, name);
  if (delivered.ok() && !delivered->has_value() && !NewerReceiptSent(t)) return name;
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
  Status s = WriteFileDurably(env, storage->staging(), ReceiptTempName(t), *in,
                              ReceiptTarget(t, *in), receipt, 0440, false);
  if (s.ok() && quarantine_dir >= 0) {
    s = WriteFileDurably(env, quarantine_dir, "receipt.xml.tmp", quarantine_dir, "receipt.xml",
                         receipt, 0440, false);
  }
  if (!s.ok()) return s;
  t.receipt_xml = receipt;
  return Status::Ok();
}

// The receipt is in place (t.receipt_xml): removes the spooled trigger (its text is in the audit
// log) and commits `batch` with the receipt_sent event and the transfer done.
Status DeliveryPipeline::Impl::FinishTransfer(const JobPtr& job, Batch batch) {
  TransferRecord& t = job->t;
  std::string code = "SUCCESS";
  if (t.state == TransferState::kRejected) code = ErrorName(ErrorCodeFromInt(t.error_code));
  batch.AddEvent("receipt_sent", t.uuid, t.sender, "code=" + code);
  return EndTransfer(job, std::move(batch));
}

// Removes the spooled trigger and commits `batch` with the transfer done. The removal cannot
// hold the commit back (`batch` may hold deliveries already made): a trigger left behind is
// removed by the retention sweep.
Status DeliveryPipeline::Impl::EndTransfer(const JobPtr& job, Batch batch) {
  TransferRecord& t = job->t;
  for (const std::string& name : SpooledTriggerNames(t.uuid, t.sender, t.trigger_name)) {
    Status s = env->UnlinkAt(storage->spool(), name);
    if (s.ok()) break;
    if (!IsNotFound(s)) {
      spdlog::warn("event=spool_cleanup_failed transfer={} error={}", t.uuid,
                   LogValue(s.message()));
    }
  }
  t.step = TransferStep::kDone;
  spdlog::info("event=done transfer={} state={}", t.uuid, ToString(t.state));
  batch.PutTransfer(t);
  CommitThen(job, std::move(batch));
  return Status::Ok();
}

// Recorded only by versions before the receipt and the end shared one commit.
Status DeliveryPipeline::Impl::StepReceiptSent(const JobPtr& job) {
  return EndTransfer(job, Batch());
}

}  // namespace fordeler
