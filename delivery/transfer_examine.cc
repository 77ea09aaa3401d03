// What decides a transfer before its data is taken (docs/architecture.md, step `trigger_taken`):
// its trigger parsed, its route resolved, a complete data file of the announced size, and room
// for it in every recipient's /IN (the quotas, with the room promised to transfers not yet
// placed). Part of the state machine in transfer_steps.cc.
#include <algorithm>
#include <optional>
#include <string>

#include "core/names.h"
#include "core/units.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"
#include "metadata/trigger_parser.h"
#include "routing/resolver.h"
#include "routing/trigger_checks.h"

namespace fordeler {

std::optional<Rejection> DeliveryPipeline::Impl::ParseJobTrigger(const JobPtr& job) {
  if (job->trigger) return std::nullopt;
  Trigger trigger;
  Rejection why;
  if (!ParseTrigger(job->t.trigger_xml, &trigger, &why)) {
    job->t.senders_file_id = trigger.senders_file_id;  // echoed by the receipt when readable
    return why;
  }
  job->trigger = std::move(trigger);
  job->t.senders_file_id = job->trigger->senders_file_id;
  return std::nullopt;
}

// Everything that decides a transfer before its data is taken: the trigger, the route, and a
// complete data file of the announced size within the quotas. The data is looked for in the
// spool first (taken before a crash), then in /OUT.
DeliveryPipeline::Impl::Verdict DeliveryPipeline::Impl::Examine(const JobPtr& job,
                                                                const Config& cfg) {
  TransferRecord& t = job->t;
  auto reject = [](Rejection why) { return Verdict{Verdict::kReject, std::move(why), {}, {}, 0}; };
  if (auto why = ParseJobTrigger(job)) return reject(*why);
  const Trigger& trigger = *job->trigger;
  if (auto why = CheckFileName(trigger, t.name)) return reject(*why);
  Verdict verdict{Verdict::kReady, {}, {}, {}, 0};
  Rejection why;
  if (!Resolve(cfg, t.sender, trigger, &verdict.route, &why)) return reject(why);
  // From here on the route is known, and a rejection records it (contract §10: only a transfer
  // rejected before its data area was known has none), so that `fordeler status` counts it
  // against its own data area's routes, not every route of the sender.
  auto refuse = [&verdict](Rejection why) {
    return Verdict{Verdict::kReject, std::move(why), {}, verdict.route, 0};
  };
  if (auto why = CheckAnnouncedSize(trigger, cfg.delivery.max_file_size)) return refuse(*why);
  auto data = StatAt(storage->spool(), t.uuid);
  std::optional<uint64_t> spooled;  // taken before a crash: its copies may be in /IN already
  if (data.ok()) spooled = data->inode;
  if (!data.ok()) {
    auto out = storage->OutOf(t.sender);
    data = out.ok() ? StatAt(*out, t.name) : Result<FileFacts>(out.status());
    const bool writing = data.ok() && gate->IsOpenForWriting(t.sender, t.name);
    if (!data.ok() || !data->regular || data->unfinished || writing) {
      if (!data.ok() && !IsNotFound(data.status())) {
        return Verdict{Verdict::kFail, {}, data.status(), {}, 0};
      }
      if (env->Now() < t.received_at + cfg.delivery.trigger_grace) {
        return Verdict{Verdict::kWait, {}, {}, {}, 0};
      }
      std::string why = "no complete data file OUT/" + PrintableName(t.name) + " within " +
                        FormatDuration(cfg.delivery.trigger_grace);
      if (data.ok() && data->unfinished && !writing) {
        why +=
            ": its upload did not finish (the connection was lost, a write was refused, or "
            "fordelerd stopped); upload the file again, then a new trigger";
      }
      if (!data.ok()) why += TakenBefore(t);
      return refuse({ErrorCode::kDataFileMissing, std::move(why)});
    }
  }
  if (data->size > cfg.delivery.max_file_size) {
    return refuse({ErrorCode::kFileTooLarge, "the data file has " + std::to_string(data->size) +
                                                 " bytes; max_file_size is " +
                                                 FormatSize(cfg.delivery.max_file_size)});
  }
  if (data->size != trigger.size_in_bytes) {
    return refuse({ErrorCode::kSizeMismatch,
                   "SizeInBytes is " + std::to_string(trigger.size_in_bytes) +
                       " but the data file has " + std::to_string(data->size) + " bytes"});
  }
  job->quota_holds.clear();  // examined again: promised anew
  for (const auto& recipient : verdict.route.recipients) {
    if (std::optional<Rejection> full =
            CheckQuota(cfg, recipient, data->size, spooled, job.get())) {
      job->quota_holds.clear();
      return refuse(*full);
    }
  }
  verdict.size = data->size;
  return verdict;
}

// A client that sends a trigger twice (a retry after a time-out) gets two transfers: the first
// takes the data file, the second finds none and gets 1004, whose receipt replaces the first's
// (contract §5). Saying so keeps the sender from taking the 1004 for a failed delivery and
// sending the file again.
std::string DeliveryPipeline::Impl::TakenBefore(const TransferRecord& t) {
  constexpr auto kLookBack = std::chrono::hours(1);
  TransferFilter filter;
  filter.sender = t.sender;
  filter.since = t.received_at - kLookBack;
  filter.limit = 1000;
  std::optional<TransferRecord> earlier;
  Status s = audit->ListTransfers(filter, [&](const TransferRecord& o) {
    if (o.name != t.name || o.uuid == t.uuid || o.received_at > t.received_at) return true;
    // Only a transfer that got as far as taking its data file: accepted, or rejected for
    // something else than a missing data file (its data went to quarantine).
    bool took = o.state == TransferState::kDelivering || o.state == TransferState::kDelivered ||
                (o.state == TransferState::kRejected &&
                 o.error_code != static_cast<int>(ErrorCode::kDataFileMissing));
    if (!took) return true;
    earlier = o;
    return false;  // newest first: the nearest before this one
  });
  if (!s.ok() || !earlier) return "";
  std::string fate = "which is delivering it";
  if (earlier->state == TransferState::kDelivered) fate = "which delivered it";
  if (earlier->state == TransferState::kRejected) {
    fate = "which was rejected with " + std::to_string(earlier->error_code);
  }
  auto ago =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.received_at - earlier->received_at);
  return "; OUT/" + PrintableName(t.name) + " was taken by transfer " + earlier->uuid +
         (earlier->senders_file_id
              ? " (SendersFileId " + PrintableName(*earlier->senders_file_id) + ")"
              : std::string()) +
         ", whose trigger came " + FormatDuration(ago) + " before this one, " + fate +
         ": was this trigger sent twice?";
}

void DeliveryPipeline::Impl::RecordRoute(const Resolution& route, TransferRecord* t) {
  t->data_area = route.data_area;
  t->authority = route.authority;
  t->route_ids = route.route_ids;
}

// A rejection with the route it was decided on, when it was known by then (Examine's `refuse`).
void DeliveryPipeline::Impl::RejectRouted(const JobPtr& job, const Verdict& verdict) {
  if (!verdict.route.data_area.empty()) RecordRoute(verdict.route, &job->t);
  Reject(job, verdict.why);
}

// Records the route's outcome on the transfer and a pending delivery per recipient.
void DeliveryPipeline::Impl::Accept(const JobPtr& job, const Verdict& verdict, Batch* batch) {
  TransferRecord& t = job->t;
  t.size = verdict.size;
  RecordRoute(verdict.route, &t);
  if (metrics != nullptr) metrics->AddBytesIn(verdict.size);
  job->deliveries.clear();
  for (const auto& recipient : verdict.route.recipients) {
    DeliveryRecord d;
    d.transfer_uuid = t.uuid;
    d.recipient = recipient;
    batch->PutDelivery(d);
    job->deliveries.push_back(std::move(d));
  }
}

// QUOTA_EXCEEDED when placing `size` more bytes would pass the recipient's quota or quota_files.
// A copy of this transfer's data already in its /IN (the daemon stopped after placing it and
// before the commit recording `spooled`: StageThenCommit) is this transfer's, not room taken.
// Room promised to other transfers not yet placed counts as taken: what /IN holds and what is
// promised are read under the placement lock, which a placement holds from its rename until its
// promise is given back, so that nothing is counted twice or not at all.
std::optional<Rejection> DeliveryPipeline::Impl::CheckQuota(const Config& cfg,
                                                            const std::string& recipient,
                                                            uint64_t size,
                                                            std::optional<uint64_t> spooled,
                                                            Job* job) {
  const Account* account = cfg.FindAccount(recipient);
  if (account == nullptr || (!account->quota && !account->quota_files)) return std::nullopt;
  auto in = storage->InOf(recipient);
  if (!in.ok()) return std::nullopt;  // placing will fail and be retried; not the sender's fault
  auto delivered = [this, &recipient](const std::string& name) -> Result<bool> {
    auto found = audit->FindDelivered(recipient, name);
    if (!found.ok()) return found.status();
    return found->has_value();
  };
  MutexLock lock(&PlacementLock(recipient));
  auto usage = UsageOf(*in, delivered, spooled);
  if (!usage.ok()) return std::nullopt;
  QuotaUse promised = quotas->Promised(recipient);
  uint64_t files = usage->files + promised.files;
  uint64_t bytes = usage->bytes + promised.bytes;
  auto pending = [&promised] {
    if (promised.files == 0) return std::string();
    return " (" + std::to_string(promised.files) + " of them " +
           (promised.files == 1 ? "a transfer" : "transfers") + " being placed)";
  };
  if (account->quota_files && files + 1 > *account->quota_files) {
    return Rejection{ErrorCode::kQuotaExceeded, recipient + "'s IN holds " + std::to_string(files) +
                                                    " files" + pending() + "; its quota_files is " +
                                                    std::to_string(*account->quota_files)};
  }
  if (account->quota && bytes + size > *account->quota) {
    return Rejection{ErrorCode::kQuotaExceeded, recipient + "'s IN holds " + FormatSize(bytes) +
                                                    pending() + "; " + std::to_string(size) +
                                                    " more bytes would pass its quota of " +
                                                    FormatSize(*account->quota)};
  }
  job->quota_holds.push_back(quotas->Promise(recipient, size));
  return std::nullopt;
}

void DeliveryPipeline::Impl::HoldRoomAgain(Job* job) {
  const TransferRecord& t = job->t;
  const bool accepted = t.step == TransferStep::kAccepted || t.step == TransferStep::kSpooled;
  if (!accepted || !t.size) return;
  for (const DeliveryRecord& d : job->deliveries) {
    if (d.state == DeliveryState::kPending) {
      job->quota_holds.push_back(quotas->Promise(d.recipient, *t.size));
    }
  }
}

void DeliveryPipeline::Impl::KeepPromise(Job* job, const std::string& recipient) {
  std::erase_if(job->quota_holds,
                [&recipient](const QuotaLedger::Hold& h) { return h.recipient() == recipient; });
}

}  // namespace fordeler
