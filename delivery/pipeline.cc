#include "delivery/pipeline.h"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include <algorithm>
#include <latch>

#include "core/env.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "core/uuid.h"
#include "delivery/file_ops.h"
#include "delivery/pipeline_impl.h"
#include "delivery/storage.h"

namespace fordeler {

namespace asio = boost::asio;

namespace {

// What records a transfer as received: the transfer and its `received` event.
Batch ReceivedBatch(const TransferRecord& t) {
  Batch batch;
  batch.PutTransfer(t).AddEvent("received", t.uuid, t.sender,
                                "trigger=" + LogValue(t.trigger_name));
  return batch;
}

// A symlink, special file or file with another hard link under a trigger's name was put there
// by other means (the SFTP server makes none of them): it is never read (contract §1), so it gets
// no receipt, and the operator is told each time it is seen (on arrival and at the rescans).
void ReportIgnoredTrigger(AuditStore* audit, const std::string& account,
                          const std::string& trigger) {
  constexpr char kWhy[] = "not a regular file with a single link";
  spdlog::warn("event=trigger_ignored account={} trigger=\"{}\" reason={}", account,
               PrintableName(trigger), LogValue(kWhy));
  Batch batch;
  batch.AddEvent("ignored", "", account, "name=" + LogValue(trigger) + " reason=" + LogValue(kWhy));
  audit->Submit(std::move(batch), [](const Status&) {});
}

}  // namespace

DeliveryPipeline::Impl::Impl(Env* e, Storage* s, AuditStore* a, OutboxGate* g,
                             PipelineOptions options)
    : env(e),
      storage(s),
      audit(a),
      gate(g),
      metrics(options.metrics),
      pool(static_cast<size_t>(options.threads)),
      max_begins(std::max(1, options.threads / 2)) {
  // One naming task per worker: each waits until all have started, so every thread runs one.
  // The tasks share the latch: a waiter may still be inside it after the constructor returns.
  auto started = std::make_shared<std::latch>(options.threads);
  for (int i = 0; i < options.threads; ++i) {
    asio::post(pool, [started] {
      NameThisThread("delivery");
      started->arrive_and_wait();
    });
  }
  started->wait();
}

std::shared_ptr<const Config> DeliveryPipeline::Impl::config() const {
  MutexLock lock(&mu_);
  return config_;
}

// An announcement that finds the name claimed is not lost: the holder looks at the name again
// when it lets go. (The kernel's close, which inotify reports, comes before the SFTP session has
// let go of the file and announces it: the first may find the file still open for writing and
// leave it to the second, which must not then be dropped as a duplicate.)
bool DeliveryPipeline::Impl::Claim(const std::string& account, const std::string& trigger) {
  MutexLock lock(&mu_);
  auto [it, inserted] = claimed_.try_emplace({account, trigger}, false);
  if (!inserted) it->second = true;
  return inserted;
}

void DeliveryPipeline::Impl::Unclaim(Job& job) {
  if (!job.claim) return;
  auto claim = std::move(*job.claim);
  job.claim.reset();
  bool again = false;
  {
    MutexLock lock(&mu_);
    auto it = claimed_.find(claim);
    if (it != claimed_.end()) {
      again = it->second;
      claimed_.erase(it);
    }
  }
  if (again) OnTrigger(claim.first, claim.second);
}

std::optional<UploadInfo> DeliveryPipeline::Impl::TakeUploadInfo(const std::string& account,
                                                                 const std::string& name) {
  MutexLock lock(&mu_);
  auto it = uploads_.find({account, name});
  if (it == uploads_.end()) return std::nullopt;
  UploadInfo info = it->second;
  uploads_.erase(it);
  return info;
}

// A trigger may be announced several times (the server's close event, inotify, a rescan):
// the claim lets one of them through until the trigger has left /OUT.
void DeliveryPipeline::Impl::OnTrigger(const std::string& account, const std::string& trigger) {
  if (stopping || !IsTriggerName(trigger) || !Claim(account, trigger)) return;
  {
    MutexLock lock(&mu_);
    waiting_triggers_[account].emplace_back(trigger, env->Now());
  }
  PostBegins();
}

// Under load the triggers wait here, still in /OUT (a stop leaves them to the rescan at start),
// rather than in the pool's queue: one sender's thousand triggers then delay another sender's
// by one turn each, and the transfers under way by at most max_begins tasks.
void DeliveryPipeline::Impl::PostBegins() {
  for (;;) {
    std::string account;
    std::pair<std::string, TimePoint> next;  // trigger, announced at
    {
      MutexLock lock(&mu_);
      if (stopping || begins_ >= max_begins || waiting_triggers_.empty()) return;
      auto it = waiting_triggers_.upper_bound(begun_last_);
      if (it == waiting_triggers_.end()) it = waiting_triggers_.begin();
      account = it->first;
      next = std::move(it->second.front());
      it->second.pop_front();
      if (it->second.empty()) waiting_triggers_.erase(it);
      begun_last_ = account;
      ++begins_;
    }
    asio::post(pool, [this, account = std::move(account), next = std::move(next)] {
      Begin(account, next.first, next.second);
      {
        MutexLock lock(&mu_);
        --begins_;
      }
      PostBegins();
    });
  }
}

void DeliveryPipeline::Impl::Begin(const std::string& account, const std::string& trigger,
                                   TimePoint announced_at) {
  JobPtr job = NewJob();
  job->claim = std::make_pair(account, trigger);
  job->announced_at = announced_at;
  auto out = storage->OutOf(account);
  auto facts = out.ok() ? StatAt(*out, trigger) : Result<FileFacts>(out.status());
  if (facts.ok() && !facts->regular) {
    ReportIgnoredTrigger(audit, account, trigger);
    Unclaim(*job);
    return;
  }
  if (!facts.ok() || gate->IsOpenForWriting(account, trigger)) {
    Unclaim(*job);  // gone, or still being written: its close will come
    return;
  }
  TransferRecord& t = job->t;
  t.uuid = NewUuid();
  t.sender = account;
  t.trigger_name = trigger;
  t.name = trigger.substr(0, trigger.size() - kTriggerSuffix.size());
  t.received_at = t.updated_at = env->Now();
  ++started;
  {
    MutexLock lock(&mu_);
    active_[t.uuid] = job;
  }
  spdlog::info("event=received transfer={} sender={} trigger=\"{}\"", t.uuid, account,
               PrintableName(trigger));
  if (SpooledTriggerName(t.uuid, account, trigger)) {
    // Taken first, recorded by the first commit of its steps (one flush fewer).
    job->recorded = false;
    Run(job);
    return;
  }
  // A name too long to spool that way: recorded before its trigger is taken.
  CommitThen(job, ReceivedBatch(t));
}

Batch DeliveryPipeline::Impl::RecordReceived(Job& job, Batch batch) {
  if (job.recorded) return batch;
  job.recorded = true;
  env->CrashPoint("after_taken");  // test-only: taken, synced, not yet recorded
  Batch first = ReceivedBatch(job.t);
  first.Append(std::move(batch));
  return first;
}

Batch DeliveryPipeline::Impl::RecordRetried(Job& job, Batch batch) {
  if (job.retries_pending == 0) return batch;
  Batch first;
  first.AddEvent("retried", job.t.uuid, job.t.sender,
                 "by=" + (job.woken_by.empty() ? std::string("backoff") : job.woken_by) +
                     " attempts=" + std::to_string(job.retries_pending));
  job.retries_pending = 0;
  job.woken_by.clear();
  job.last_failure.clear();
  first.Append(std::move(batch));
  return first;
}

void DeliveryPipeline::Impl::Schedule(JobPtr job) {
  if (stopping) return;
  asio::post(pool, [this, job = std::move(job)] { Run(job); });
}

void DeliveryPipeline::Impl::ScheduleAfter(JobPtr job, std::chrono::milliseconds delay) {
  MutexLock lock(&timers_mu_);  // Stop cancels every timer armed before it took this lock
  if (stopping) return;
  uint64_t token = ++job->token;
  job->waiting = true;
  auto timer = std::make_shared<asio::steady_timer>(pool, delay);
  timers_.insert(timer);
  timer->async_wait([this, timer, token, job = std::move(job)](boost::system::error_code ec) {
    {
      MutexLock lock(&timers_mu_);
      timers_.erase(timer);
    }
    if (ec || job->token != token || !job->waiting.exchange(false)) return;
    Run(job);
  });
}

void DeliveryPipeline::Impl::CommitThen(JobPtr job, Batch batch) {
  batch = RecordReceived(*job, RecordRetried(*job, std::move(batch)));
  job->t.updated_at = env->Now();
  audit->Submit(std::move(batch), [this, job](const Status& s) {
    if (!s.ok()) {  // only when the store is closing: the step resumes at the next start
      spdlog::warn("event=audit_failed transfer={} error={}", job->t.uuid, LogValue(s.message()));
      return;
    }
    env->CrashPoint(std::string("after_") + std::string(ToString(job->t.step)));
    if (job->t.step == TransferStep::kDone) {
      // File work, off the audit writer's thread (a removal may wait for the journal).
      asio::post(pool, [this, job] {
        RecordPickupsMeanwhile(*job);
        env->UnlinkAt(storage->staging(), RevealedMarkName(job->t.uuid));  // if there is one
        Finish(job);
      });
    } else {
      Schedule(job);
    }
  });
}

JobPtr DeliveryPipeline::Impl::NewJob() const {
  auto job = std::make_shared<Job>();
  job->storage_seen = storage->generation();  // nothing of it is in a folder replaced before
  return job;
}

Status DeliveryPipeline::Impl::FollowStorage(bool make_missing) {
  Status problem = storage->Refresh(make_missing);
  uint64_t generation = storage->generation();
  if (storage_woken.exchange(generation) != generation) WakeWaiting();
  return problem;
}

void DeliveryPipeline::Impl::WatchStorage() {
  MutexLock lock(&timers_mu_);  // as ScheduleAfter: Stop cancels what was armed before
  if (stopping) return;
  auto timer = std::make_shared<asio::steady_timer>(pool, std::chrono::seconds(1));
  timers_.insert(timer);
  timer->async_wait([this, timer](boost::system::error_code ec) {
    {
      MutexLock lock(&timers_mu_);
      timers_.erase(timer);
    }
    if (ec) return;
    FollowStorage(false);
    WatchStorage();
  });
}

// As `fordeler retry` wakes one job (Retry): a job whose `waiting` this thread clears is its own
// until scheduled, and its pending timer, finding the token changed, does nothing.
int DeliveryPipeline::Impl::WakeWaiting(const std::string& by) {
  std::vector<JobPtr> jobs;
  {
    MutexLock lock(&mu_);
    for (const auto& [uuid, job] : active_) jobs.push_back(job);
  }
  int woken = 0;
  for (JobPtr& job : jobs) {
    if (!job->waiting.exchange(false)) continue;
    ++job->token;
    if (!by.empty() && job->retries_pending > 0) job->woken_by = by;  // it was failing
    ++woken;
    Schedule(std::move(job));
  }
  return woken;
}

void DeliveryPipeline::Impl::Finish(const JobPtr& job) {
  Unclaim(*job);
  job->quota_holds.clear();  // a rejected transfer's promises, given back now
  {
    MutexLock lock(&mu_);
    active_.erase(job->t.uuid);
  }
  ++finished;
}

void DeliveryPipeline::Impl::Rescan() {
  auto config_now = config();
  for (const auto& account : config_now->accounts) {
    auto out = storage->OutOf(account.id);
    if (!out.ok()) continue;
    auto names = ListNames(*out);
    if (!names.ok()) continue;
    for (const std::string& name : *names) {
      if (IsTriggerName(name)) OnTrigger(account.id, name);
    }
  }
  RecordPickupsUnseen();
}

DeliveryPipeline::DeliveryPipeline(Env* env, Storage* storage, AuditStore* audit, OutboxGate* gate,
                                   PipelineOptions options)
    : impl_(std::make_unique<Impl>(env, storage, audit, gate, options)) {}

DeliveryPipeline::~DeliveryPipeline() { Stop(); }

void DeliveryPipeline::SetConfig(std::shared_ptr<const Config> config) {
  MutexLock lock(&impl_->mu_);
  impl_->config_ = std::move(config);
}

Status DeliveryPipeline::Start() {
  auto unfinished = impl_->audit->UnfinishedTransfers();
  if (!unfinished.ok()) return unfinished.status();
  for (auto& record : *unfinished) {
    JobPtr job = impl_->NewJob();
    job->t = std::move(record);
    auto deliveries = impl_->audit->DeliveriesOf(job->t.uuid);
    if (!deliveries.ok()) return deliveries.status();
    job->deliveries = std::move(*deliveries);
    impl_->HoldRoomAgain(job.get());
    if (job->t.step == TransferStep::kReceived) {  // its trigger may still be in /OUT
      impl_->Claim(job->t.sender, job->t.trigger_name);
      job->claim = std::make_pair(job->t.sender, job->t.trigger_name);
    }
    {
      MutexLock lock(&impl_->mu_);
      impl_->active_[job->t.uuid] = job;
    }
    ++impl_->started;
    impl_->Schedule(job);
  }
  std::set<std::string> known;
  for (const auto& record : *unfinished) known.insert(record.uuid);
  if (Status s = impl_->AdoptSpooledTriggers(known); !s.ok()) return s;
  spdlog::info("event=recovery unfinished={}", unfinished->size());
  impl_->Rescan();
  impl_->storage_woken = impl_->storage->generation();
  impl_->WatchStorage();
  return Status::Ok();
}

Status DeliveryPipeline::Impl::AdoptSpooledTriggers(const std::set<std::string>& known) {
  auto names = ListNames(storage->spool());
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    auto parsed = ParseSpooledTriggerName(name);
    if (!parsed || known.contains(parsed->uuid)) continue;
    auto existing = audit->GetTransfer(parsed->uuid);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) continue;  // finished; the retention sweep removes what is left
    JobPtr job = NewJob();
    TransferRecord& t = job->t;
    t.uuid = parsed->uuid;
    t.sender = parsed->sender;
    t.trigger_name = parsed->trigger_name;
    t.name = t.trigger_name.substr(0, t.trigger_name.size() - kTriggerSuffix.size());
    t.received_at = t.updated_at = TimeOfUuid(t.uuid).value_or(env->Now());
    job->recorded = false;
    spdlog::info("event=adopted transfer={} sender={} trigger=\"{}\"", t.uuid, t.sender,
                 PrintableName(t.trigger_name));
    {
      MutexLock lock(&mu_);
      active_[t.uuid] = job;
    }
    ++started;
    Schedule(job);
  }
  return Status::Ok();
}

void DeliveryPipeline::Stop() {
  if (impl_->stopping.exchange(true)) return;
  {
    // The pool's join waits for pending timers too: a back-off of up to a minute, or a trigger
    // waiting for its data. Their transfers resume at the next start.
    MutexLock lock(&impl_->timers_mu_);
    for (const auto& timer : impl_->timers_) timer->cancel();
  }
  impl_->pool.join();
}

void DeliveryPipeline::Rescan() { impl_->Rescan(); }

DeliveryPipeline::Load DeliveryPipeline::load() const {
  Load load;
  MutexLock lock(&impl_->mu_);
  for (const auto& [account, triggers] : impl_->waiting_triggers_) {
    load.waiting_triggers += triggers.size();
  }
  load.in_progress = impl_->active_.size();
  return load;
}

void DeliveryPipeline::RetryWaiting(const std::string& by) {
  if (int woken = impl_->WakeWaiting(by); woken > 0) {
    spdlog::info("event=woken by={} transfers={}", by, woken);
  }
}

Status DeliveryPipeline::FollowStorage(bool make_missing) {
  return impl_->FollowStorage(make_missing);
}

void DeliveryPipeline::OnUploadClosed(const UploadClosed& e) {
  if (IsTriggerName(e.name)) {
    if (e.how != UploadClosed::How::kChanged) impl_->OnTrigger(e.account, e.name);
    return;
  }
  auto now = impl_->env->Steady();
  MutexLock lock(&impl_->mu_);
  impl_->uploads_[{e.account, e.name}] = UploadInfo{e.inode, e.size, e.sha256, now};
  if (now < impl_->next_upload_sweep_) return;  // at most once a minute
  impl_->next_upload_sweep_ = now + std::chrono::minutes(1);
  std::erase_if(impl_->uploads_, [&](const auto& entry) {
    return now - entry.second.closed_at > kUploadInfoLifetime;
  });
}

void DeliveryPipeline::OnSessionEvent(const SessionEvent& e) {
  if (e.kind == SessionEvent::Kind::kRemoved && e.folder == Folder::kIn) {
    asio::post(impl_->pool, [this, e] { impl_->RecordPickup(e.account, e.name); });
    return;
  }
  if (e.kind == SessionEvent::Kind::kDownloaded) {
    // Which transfer the file was is read from the audit log: on a worker, not on the session's
    // thread. The time is the report's, taken here.
    auto at = impl_->env->Now();
    asio::post(impl_->pool, [this, e, at] { impl_->RecordDownload(e.account, e.name, at); });
    return;
  }
  impl_->RecordSessionEvent(e);
}

void DeliveryPipeline::OnFolderChange(const std::string& account, Folder folder,
                                      const std::string& name, bool removed) {
  if (folder == Folder::kOut && !removed) {
    impl_->OnTrigger(account, name);
  } else if (folder == Folder::kIn && removed) {
    asio::post(impl_->pool, [this, account, name] { impl_->RecordPickup(account, name); });
  }
}

// The operator's retry is recorded (event `retried`, contract §10) before the step runs again.
Result<DeliveryPipeline::Retried> DeliveryPipeline::Retry(const std::string& uuid,
                                                          const std::string& by) {
  JobPtr job;
  {
    MutexLock lock(&impl_->mu_);
    auto it = impl_->active_.find(uuid);
    if (it != impl_->active_.end()) job = it->second;
  }
  if (job == nullptr) return Status::NotFound("no unfinished transfer " + uuid);
  if (!job->waiting.exchange(false)) return Retried::kRunning;  // nothing to wake
  ++job->token;  // the pending timer no longer runs it; the job is this thread's until scheduled
  if (job->retries_pending == 0) {  // not failing: waiting for its data file
    impl_->Schedule(job);
    return Retried::kWaitingForData;
  }
  Batch batch;
  batch.AddEvent("retried", uuid, job->t.sender,
                 "by=" + by + " step=" + std::string(ToString(job->t.step)));
  Status recorded = impl_->audit->Commit(impl_->RecordReceived(*job, std::move(batch)));
  impl_->Schedule(job);
  if (!recorded.ok()) return recorded;
  return Retried::kWoken;
}

int64_t DeliveryPipeline::started() const { return impl_->started; }
int64_t DeliveryPipeline::finished() const { return impl_->finished; }

}  // namespace fordeler
