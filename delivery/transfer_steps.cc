// The delivery state machine of one transfer (docs/architecture.md). Each Step* does the work of
// one step — idempotently, so that recovery can run it again after a crash anywhere — and ends
// by committing the record of the next step; the commit's completion schedules that step.
// The decisions before the take are in transfer_examine.cc, the placement in transfer_placement.cc.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <set>
#include <string>

#include "core/env.h"
#include "core/names.h"
#include "core/units.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"

namespace fordeler {

using std::chrono::milliseconds;

namespace {

constexpr milliseconds kDataPoll{200};  // re-check for a data file still on its way

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
  // Removed (or renamed away) since it was found complete, or an upload of it did not finish.
  if (IsNotFound(facts.status()) || (facts.ok() && facts->unfinished)) {
    gate->EndTake(t.sender, t.name, false);
    return false;
  }
  auto info = TakeUploadInfo(t.sender, t.name);
  Status s = facts.status();
  // A file of another owner (a storage root shared with another server, written over through
  // fordeler's) is copied like one that arrived by other means: the spooled data must be
  // fordelerd's own to be made read-only (without root's CAP_FOWNER, which its systemd unit does
  // not give it).
  if (s.ok() && info && info->inode == facts->inode && info->size == facts->size &&
      facts->owner == geteuid()) {
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
      Reject(job,
             {ErrorCode::kDataFileMissing,
              "no complete data file OUT/" + PrintableName(t.name) + " within " +
                  FormatDuration(cfg->delivery.trigger_grace) +
                  " (it was changed or removed after it was found complete)" + TakenBefore(t)});
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

Status DeliveryPipeline::Impl::StepPlaced(const JobPtr& job) {
  if (Status s = WriteReceiptFiles(job, -1); !s.ok()) return s;
  job->t.error_code = 0;  // a failure to send the receipt is over
  job->t.error_description.clear();
  return FinishTransfer(job, Batch());
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
