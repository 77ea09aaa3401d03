// The operator's corrections (contract §10: recall, redeliver, quarantine release and purge),
// run by fordelerd for `fordeler` over its control socket. They act only on transfers the state
// machine has finished with (never on one in flight), and record each change in the audit log;
// see pipeline.h for what each one promises.
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "audit/chain.h"
#include "core/env.h"
#include "core/names.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"
#include "metadata/trigger_parser.h"

namespace fordeler {

namespace {

using Impl = DeliveryPipeline::Impl;

// The transfer, if it exists and the state machine is not working on it. A transfer whose end
// is committed stays active for the file work after that commit (pickups meanwhile, the revealed
// mark): `fordeler show` already says it is done, so wait for that rather than refuse.
Result<TransferRecord> LoadIdle(Impl& p, const std::string& uuid) {
  constexpr auto kFinishingWait = std::chrono::seconds(2);
  const auto deadline = std::chrono::steady_clock::now() + kFinishingWait;
  for (;;) {
    bool active;
    {
      MutexLock lock(&p.mu_);
      active = p.active_.count(uuid) != 0;
    }
    auto t = p.audit->GetTransfer(uuid);
    if (!t.ok()) return t.status();
    if (!active) {
      if (!t->has_value()) return Status::NotFound("no such transfer " + uuid);
      return std::move(**t);
    }
    bool finishing = t->has_value() && (*t)->step == TransferStep::kDone;
    if (!finishing || std::chrono::steady_clock::now() > deadline) {
      return Status::InvalidArgument("transfer " + uuid +
                                     " is still being processed; wait until it has finished");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

Status Require(const TransferRecord& t, TransferState state, const char* why) {
  if (t.state == state) return Status::Ok();
  return Status::InvalidArgument("transfer " + t.uuid + " is " + std::string(ToString(t.state)) +
                                 ": " + why);
}

Status Record(Impl& p, Batch batch) { return p.audit->Commit(std::move(batch)); }

// `s`, an operation in `folder` that failed, or the reason when the folder itself is gone or
// replaced (Storage::CheckOwnFolder: it names the folder; the bare error would be EBADF).
Status Why(Impl& p, OwnFolder folder, Status s) {
  if (s.ok()) return s;
  Status problem = p.storage->CheckOwnFolder(folder);
  return problem.ok() ? s : problem;
}

// Deletes what is left in quarantine/<uuid> and the folder itself.
Status RemoveQuarantine(Impl& p, const std::string& uuid) {
  Status s = RemoveFolder(p.env, p.storage->quarantine(), uuid);
  if (s.ok()) s = FsyncDir(p.env, p.storage->quarantine());
  return Why(p, OwnFolder::kQuarantine, s);
}

// The quarantine folder of a rejected transfer, for release or purge.
Result<UniqueFd> OpenQuarantine(Impl& p, const TransferRecord& t) {
  if (Status s = Require(t, TransferState::kRejected, "only rejected pairs are in quarantine");
      !s.ok()) {
    return s;
  }
  auto qdir = OpenDirectory(p.env, p.storage->quarantine(), t.uuid, false, 0);
  if (qdir.ok()) return qdir;
  if (Status s = Why(p, OwnFolder::kQuarantine, qdir.status());
      s.code() == Status::Code::kUnavailable) {
    return s;
  }
  if (IsNotFound(qdir.status())) {
    return Status::InvalidArgument(
        "transfer " + t.uuid +
        " has no quarantine folder (released, purged, or expired by retention already)");
  }
  return qdir;
}

// "a.csv,a.csv.trigger": the names as LogValue writes them, for an event's detail (where the
// whole goes through LogValue again, so that a quoted name stays inside the one field).
std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ",") + LogValue(n);
  return out;
}

// Withdraws one delivery; false in *recalled when the recipient picked it up meanwhile.
Status RecallOne(Impl& p, const DeliveryRecord& d, const std::string& by, bool* recalled) {
  auto in = p.storage->InOf(d.recipient);
  if (!in.ok()) return in.status();
  // Recorded first, so that the removal below is never taken for a pickup.
  DeliveryRecord r = d;
  r.state = DeliveryState::kRecalled;
  r.recalled_at = p.env->Now();
  std::string name = "name=" + LogValue(d.name_in_in);
  Status s = Record(
      p,
      std::move(Batch()
                    .RequireDeliveryState(d.transfer_uuid, d.recipient, DeliveryState::kDelivered)
                    .PutDelivery(r)
                    .AddEvent("recalled", d.transfer_uuid, d.recipient, name + " by=" + by)));
  if (s.code() == Status::Code::kAlreadyExists) {  // picked up (and recorded) meanwhile
    *recalled = false;
    return Status::Ok();
  }
  if (!s.ok()) return s;
  s = p.env->UnlinkAt(*in, d.name_in_in + ".metadata");
  if (s.ok() || IsNotFound(s)) s = p.env->UnlinkAt(*in, d.name_in_in);
  *recalled = s.ok();
  if (s.ok()) return FsyncDir(p.env, *in);
  DeliveryRecord back = d;
  Batch batch;
  batch.RequireDeliveryState(d.transfer_uuid, d.recipient, DeliveryState::kRecalled);
  if (IsNotFound(s)) {  // fetched between the record and the removal
    back.state = DeliveryState::kPickedUp;
    back.picked_up_at = p.env->Now();
    batch.PutDelivery(back).AddEvent("picked_up", d.transfer_uuid, d.recipient,
                                     name + " note=\"before the recall removed it\"");
  } else {
    batch.PutDelivery(back).AddEvent("recall_failed", d.transfer_uuid, d.recipient,
                                     name + " error=" + LogValue(s.message()));
  }
  Status undo = Record(p, std::move(batch));
  return IsNotFound(s) ? undo : s;
}

}  // namespace

Result<std::vector<DeliveryPipeline::Recalled>> DeliveryPipeline::Recall(
    const std::string& uuid, const std::string& recipient, const std::string& by) {
  auto t = LoadIdle(*impl_, uuid);
  if (!t.ok()) return t.status();
  if (Status s = Require(*t, TransferState::kDelivered, "only delivered files can be recalled");
      !s.ok()) {
    return s;
  }
  auto deliveries = impl_->audit->DeliveriesOf(uuid);
  if (!deliveries.ok()) return deliveries.status();
  std::vector<DeliveryRecord> targets;
  bool known = recipient.empty();
  for (const DeliveryRecord& d : *deliveries) {
    if (!recipient.empty() && d.recipient != recipient) continue;
    known = true;
    if (d.state == DeliveryState::kDelivered) targets.push_back(d);
  }
  if (!known) return Status::InvalidArgument(recipient + " is no recipient of transfer " + uuid);
  if (targets.empty()) {
    const std::string which = recipient.empty()
                                  ? "the deliveries of " + uuid + " are"
                                  : "the delivery of " + uuid + " to " + recipient + " is";
    return Status::InvalidArgument("nothing to recall: " + which +
                                   " picked up, expired or recalled already");
  }
  std::vector<Recalled> out;
  for (const DeliveryRecord& d : targets) {
    bool recalled = false;
    if (Status s = RecallOne(*impl_, d, by, &recalled); !s.ok()) return s;
    if (recalled) out.push_back({d.recipient, d.name_in_in});
    spdlog::info("event=recall transfer={} recipient={} recalled={}", uuid, d.recipient, recalled);
  }
  return out;
}

Result<std::string> DeliveryPipeline::Redeliver(const std::string& uuid,
                                                const std::string& recipient,
                                                const std::string& by) {
  Impl& p = *impl_;
  auto t = LoadIdle(p, uuid);
  if (!t.ok()) return t.status();
  if (Status s = Require(*t, TransferState::kDelivered, "only delivered files can be redelivered");
      !s.ok()) {
    return s;
  }
  auto deliveries = p.audit->DeliveriesOf(uuid);
  if (!deliveries.ok()) return deliveries.status();
  auto it = std::find_if(deliveries->begin(), deliveries->end(),
                         [&](const DeliveryRecord& d) { return d.recipient == recipient; });
  if (it == deliveries->end()) {
    return Status::InvalidArgument(recipient + " is no recipient of transfer " + uuid);
  }
  DeliveryRecord d = *it;
  if (p.config()->FindAccount(recipient) == nullptr) {  // nobody could fetch it there
    return Status::InvalidArgument(recipient +
                                   " is no longer an account (a reload removed it): nobody "
                                   "could fetch the file from its IN");
  }
  if (d.state == DeliveryState::kDelivered || d.state == DeliveryState::kPending) {
    return Status::InvalidArgument("the delivery to " + recipient + " is " +
                                   std::string(ToString(d.state)) +
                                   ", not picked up yet: nothing to place again");
  }
  if (Status s = StatAt(p.storage->spool(), uuid).status(); !s.ok()) {
    if (Status problem = p.storage->CheckOwnFolder(OwnFolder::kSpool); !problem.ok()) {
      return problem;
    }
    return Status::InvalidArgument("the data of " + uuid + " is no longer in the spool");
  }
  Job job;
  job.t = *t;
  Trigger trigger;
  Rejection why;
  if (!ParseTrigger(t->trigger_xml, &trigger, &why)) return Status::Internal(why.description);
  job.trigger = std::move(trigger);
  auto in = p.storage->InOf(recipient);
  if (!in.ok()) return in.status();
  auto placed =
      PlaceData(p.env, p.storage->spool(), p.storage->staging(), *in, uuid, recipient, t->name);
  if (!placed.ok()) return Why(p, OwnFolder::kStaging, placed.status());
  if (Status s = FsyncDir(p.env, *in); !s.ok()) return s;
  Status s =
      WriteFileDurably(p.env, p.storage->staging(), uuid + "." + recipient + ".metadata", *in,
                       *placed + ".metadata", p.MetadataFor(job, d, *placed), 0440, false);
  if (!s.ok()) return Why(p, OwnFolder::kStaging, s);
  d.name_in_in = *placed;
  d.state = DeliveryState::kDelivered;
  d.delivered_at = p.env->Now();
  d.picked_up_at.reset();
  d.expired_at.reset();
  d.recalled_at.reset();
  s = Record(p, std::move(Batch().PutDelivery(d).AddEvent(
                    "redelivered", uuid, recipient,
                    "name=" + LogValue(*placed) + DigestFields(*t) + " by=" + by)));
  if (!s.ok()) return s;
  spdlog::info("event=redelivered transfer={} recipient={} name=\"{}\"", uuid, recipient,
               PrintableName(*placed));
  return *placed;
}

Result<std::vector<std::string>> DeliveryPipeline::ReleaseQuarantined(const std::string& uuid,
                                                                      const std::string& by) {
  Impl& p = *impl_;
  auto t = LoadIdle(p, uuid);
  if (!t.ok()) return t.status();
  auto qdir = OpenQuarantine(p, *t);
  if (!qdir.ok()) return qdir.status();
  if (!StatAt(qdir->get(), t->trigger_name).ok()) {
    return Status::InvalidArgument("quarantine/" + uuid + " holds no trigger file to release");
  }
  auto out = p.storage->OutOf(t->sender);
  if (!out.ok()) return out.status();
  std::vector<std::string> moved;
  for (const std::string& name : {t->name, t->trigger_name}) {  // data first, then the trigger
    if (!IsValidOutName(name) || !StatAt(qdir->get(), name).ok()) continue;
    Status s = p.env->RenameAt(qdir->get(), name, *out, name, true);
    if (!s.ok()) {
      for (const std::string& back : moved) p.env->RenameAt(*out, back, qdir->get(), back, true);
      if (s.code() == Status::Code::kAlreadyExists) {
        return Status::InvalidArgument("OUT/" + PrintableName(name) + " of " + t->sender +
                                       " exists (sent again?); nothing released");
      }
      return s;
    }
    moved.push_back(name);
  }
  if (Status s = FsyncDir(p.env, *out); !s.ok()) return s;
  if (Status s = RemoveQuarantine(p, uuid); !s.ok()) return s;
  Status s =
      Record(p, std::move(Batch().AddEvent("released", uuid, t->sender,
                                           "out=" + LogValue(JoinNames(moved)) + " by=" + by)));
  if (!s.ok()) return s;
  spdlog::info("event=released transfer={} sender={}", uuid, t->sender);
  p.OnTrigger(t->sender, t->trigger_name);  // the watcher announces it too; one claim wins
  return moved;
}

Result<std::vector<std::string>> DeliveryPipeline::PurgeQuarantined(const std::string& uuid,
                                                                    const std::string& by) {
  Impl& p = *impl_;
  auto t = LoadIdle(p, uuid);
  if (!t.ok()) return t.status();
  auto qdir = OpenQuarantine(p, *t);
  if (!qdir.ok()) return qdir.status();
  auto names = ListNames(qdir->get());
  if (!names.ok()) return names.status();
  if (Status s = RemoveQuarantine(p, uuid); !s.ok()) return s;
  Status s =
      Record(p, std::move(Batch().AddEvent("purged", uuid, t->sender,
                                           "files=" + LogValue(JoinNames(*names)) + " by=" + by)));
  if (!s.ok()) return s;
  spdlog::info("event=purged transfer={}", uuid);
  return *names;
}

}  // namespace fordeler
