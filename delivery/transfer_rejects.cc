// The delivery state machine, continued: rejections (quarantine and receipt), fordeler's own
// failures (retried with back-off), and the metadata document of one delivery.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "audit/chain.h"
#include "core/env.h"
#include "core/names.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"
#include "metadata/documents.h"

namespace fordeler {

void DeliveryPipeline::Impl::Reject(const JobPtr& job, Rejection why) {
  TransferRecord& t = job->t;
  t.state = TransferState::kRejected;
  t.error_code = static_cast<int>(why.code);
  t.error_description = why.description;
  t.step = TransferStep::kRejecting;
  job->deliveries.clear();  // a rejected transfer is delivered to nobody
  spdlog::info("event=rejected transfer={} sender={} code={} reason={}", t.uuid, t.sender,
               t.error_code, LogValue(why.description));
  if (metrics != nullptr) {
    metrics->CountTransfer(t.data_area.value_or(""), TransferResult::kRejected);
  }
  Batch batch;
  batch.PutTransfer(t).AddEvent("rejected", t.uuid, t.sender,
                                "code=" + std::to_string(t.error_code) +
                                    " error=" + std::string(ErrorName(why.code)) +
                                    " reason=" + LogValue(why.description) + DigestFields(t));
  CommitThen(job, std::move(batch));
}

// fordeler failed (disk full, folder unwritable, ...): keep the step, say so in the audit log
// once per run of failures, and again whenever its cause changes (code 5001 while it lasts, with
// the error of now, visible to the operator), and try again with back-off. The commit of the step
// that goes through records `retried` (RecordRetried).
void DeliveryPipeline::Impl::Failed(const JobPtr& job, const Status& failure) {
  TransferRecord& t = job->t;
  Status status = FollowStorage(false);  // the cause when there is one, not the symptom
  if (status.ok()) status = failure;
  int failures = ++job->failures;
  auto delay = std::chrono::milliseconds(100) * (1 << std::min(failures - 1, 9));
  spdlog::warn("event=failed transfer={} step={} attempt={} retry_in_ms={} error={}", t.uuid,
               ToString(t.step), failures, delay.count(), LogValue(status.message()));
  if (failures == 1 && metrics != nullptr) {  // counted once per transfer
    metrics->CountTransfer(t.data_area.value_or(""), TransferResult::kFailed);
  }
  if (job->retries_pending++ == 0 || status.message() != job->last_failure) {
    job->last_failure = status.message();
    if (t.state != TransferState::kRejected) {  // a rejection keeps its code for the receipt
      t.error_code = static_cast<int>(ErrorCode::kInternalError);
      t.error_description = status.message();
    }
    Batch batch;
    batch.PutTransfer(t).AddEvent(
        "failed", t.uuid, t.sender,
        "step=" + std::string(ToString(t.step)) + " error=" + LogValue(status.message()));
    t.updated_at = env->Now();
    audit->Submit(RecordReceived(*job, std::move(batch)), [](const Status&) {});
  }
  ScheduleAfter(job, std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(60)));
}

// Moves what the transfer left (its trigger from the spool, its data from the spool or /OUT)
// into quarantine/<uuid>/. Idempotent: what is already there or gone is skipped.
Status DeliveryPipeline::Impl::MoveToQuarantine(const JobPtr& job, int qdir) {
  TransferRecord& t = job->t;
  Status s;
  for (const std::string& name : SpooledTriggerNames(t.uuid, t.sender, t.trigger_name)) {
    s = env->RenameAt(storage->spool(), name, qdir, t.trigger_name, true);
    if (!IsNotFound(s)) break;
  }
  if (!s.ok() && !IsNotFound(s) && s.code() != Status::Code::kAlreadyExists) return s;
  s = env->RenameAt(storage->spool(), t.uuid, qdir, t.name, true);
  if (!s.ok() && !IsNotFound(s) && s.code() != Status::Code::kAlreadyExists) return s;
  auto out = storage->OutOf(t.sender);
  if (!out.ok()) return out.status();
  auto data = StatAt(*out, t.name);
  // Not only a valid <name>: a trigger put in /OUT by other means may name a longer one (up to
  // 247 bytes), rejected with 1003, and its data leaves /OUT too (contract §2).
  if (IsReachableName(t.name) && data.ok() && data->regular && gate->BeginTake(t.sender, t.name)) {
    auto info = TakeUploadInfo(t.sender, t.name);
    if (info && info->inode == data->inode) {
      s = env->RenameAt(*out, t.name, qdir, t.name, true);
    } else {
      auto copied = CopyAndHash(env, *out, t.name, qdir, t.name, 0440);
      s = copied.ok() ? env->UnlinkAt(*out, t.name) : copied.status();
    }
    gate->EndTake(t.sender, t.name, s.ok());
    if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
    if (s = FsyncDir(env, *out); !s.ok()) return s;
  }
  return FsyncDir(env, qdir);
}

// A transfer examined again after a crash may be rejected although its data was already linked
// into recipients' /IN (StageThenCommit places before the commit recording `spooled`, and the
// routes or quotas may have changed meanwhile). A rejected transfer is delivered to nobody
// (contract §5), so every such copy goes, durably, before the data goes to quarantine: in each
// account's /IN the names PlaceData uses that are the spooled data's inode (never another file),
// and links a placement cut short left in staging. The data has other links only then: with one
// link, nothing is looked for. The same goes for a transfer routed again after a crash to
// other recipients than before (the routes changed meanwhile): the copies outside `keep` go.
Status DeliveryPipeline::Impl::RemovePlacedCopies(const TransferRecord& t, int qdir,
                                                  const std::set<std::string>& keep) {
  auto data = StatAt(storage->spool(), t.uuid);
  if (IsNotFound(data.status()) && IsReachableName(t.name) && qdir >= 0) {
    data = StatAt(qdir, t.name);  // moved
  }
  if (IsNotFound(data.status())) return Status::Ok();  // never spooled
  if (!data.ok()) return data.status();
  if (data->regular) return Status::Ok();  // its only link
  auto accounts = OpenDirectory(env, storage->root(), "accounts", false, 0);
  if (!accounts.ok()) return accounts.status();
  auto ids = ListNames(accounts->get());
  if (!ids.ok()) return ids.status();
  std::vector<int> folders;
  for (const std::string& id : *ids) {
    if (keep.count(id) != 0) continue;
    auto in = storage->InOf(id);  // an /IN fordeler cannot open holds nothing it placed
    std::vector<std::string> own =
        in.ok() ? OwnCopies(*in, t, data->inode) : std::vector<std::string>{};
    for (const std::string& name : own) {
      Status s = env->UnlinkAt(*in, name);
      if (!s.ok() && !IsNotFound(s)) return s;
      spdlog::info("event=placed_copy_removed transfer={} recipient={} name=\"{}\"", t.uuid, id,
                   PrintableName(name));
    }
    if (!own.empty()) folders.push_back(*in);
    const std::string staged = t.uuid + "." + id;  // PlaceData's link on its way in
    auto link = StatAt(storage->staging(), staged);
    if (link.ok() && link->inode == data->inode) {
      Status s = env->UnlinkAt(storage->staging(), staged);
      if (!s.ok() && !IsNotFound(s)) return s;
      if (std::find(folders.begin(), folders.end(), storage->staging()) == folders.end()) {
        folders.push_back(storage->staging());
      }
    }
  }
  return env->FsyncAll(folders);
}

Status DeliveryPipeline::Impl::StepRejecting(const JobPtr& job) {
  auto qdir = storage->QuarantineDir(job->t.uuid);
  if (!qdir.ok()) return qdir.status();
  if (Status s = FsyncDir(env, storage->quarantine()); !s.ok()) return s;
  if (Status s = RemovePlacedCopies(job->t, qdir->get()); !s.ok()) return s;
  if (Status s = MoveToQuarantine(job, qdir->get()); !s.ok()) return s;
  if (Status s = WriteReceiptFiles(job, qdir->get()); !s.ok()) return s;
  return FinishTransfer(job, Batch());
}

std::string DeliveryPipeline::Impl::MetadataFor(const Job& job, const DeliveryRecord& d,
                                                const std::string& placed) {
  const TransferRecord& t = job.t;
  const Trigger& trigger = *job.trigger;
  auto cfg = config();
  const Account* sender = cfg->FindAccount(t.sender);
  const Account* recipient = cfg->FindAccount(d.recipient);
  const DataArea* area = cfg->FindDataArea(t.data_area.value_or(""));
  auto optional = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
  };
  MetadataFields m;
  m.root = cfg->delivery.metadata_format == MetadataFormat::kFileMetadata
               ? MetadataRoot::kFileMetadata
               : MetadataRoot::kTrigger;
  m.file_transfer_uuid = t.uuid;
  m.file_name = placed;
  m.size_in_bytes = t.size.value_or(0);
  m.sender = t.sender;
  m.senders_file_id = t.senders_file_id;
  m.recipient = d.recipient;
  m.sha256 = t.sha256.value_or("");
  m.inf_ref = area != nullptr ? area->fetch_service : t.data_area.value_or("");
  m.sender_it_system = trigger.routing.sender_it_system;
  if (!m.sender_it_system && sender != nullptr) m.sender_it_system = optional(sender->it_system);
  m.sender_authority = t.authority.value_or("");
  if (recipient != nullptr) {
    m.recipient_it_system = optional(recipient->it_system);
    m.recipient_authority = optional(recipient->authority);
  }
  m.transaction_id = trigger.routing.transaction_id;
  m.sender_timestamp = trigger.routing.sender_timestamp;
  m.route_parameters = trigger.routing.route_parameters;
  return WriteMetadata(m);
}

}  // namespace fordeler
