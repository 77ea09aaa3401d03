// Internal to delivery/: the pipeline's state, shared by pipeline.cc (ingest, scheduling,
// recovery), pipeline_records.cc (pickups and session events), transfer_steps.cc (the state
// machine of one transfer), transfer_examine.cc (its decisions before the take: route, data file,
// quotas), transfer_placement.cc (data, metadata and receipt placed) and transfer_rejects.cc.
#pragma once

#include <atomic>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/thread_pool.hpp>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "audit/audit_store.h"
#include "core/env.h"
#include "core/error_codes.h"
#include "core/metrics.h"
#include "core/mutex.h"
#include "delivery/pipeline.h"
#include "delivery/quota_ledger.h"
#include "metadata/trigger.h"
#include "routing/resolver.h"

namespace fordeler {

// One transfer in flight: its records as last committed, plus what it parsed.
struct Job {
  TransferRecord t;
  std::vector<DeliveryRecord> deliveries;
  std::optional<Trigger> trigger;
  std::optional<std::pair<std::string, std::string>> claim;  // (account, trigger name) held
  // When its trigger was announced, the start of the routing latency (/metrics), its wait for a
  // turn (PostBegins) included; none for a transfer resumed at start (received_at then).
  std::optional<TimePoint> announced_at;
  int failures = 0;  // failures of fordeler's own since the job started (back-off, metrics)
  // Failures since the last commit of the job's steps: the next commit records that the step was
  // retried and went through (an event `retried`), by the back-off or by `woken_by`.
  int retries_pending = 0;
  std::string woken_by;      // "reload" when a reload woke the job out of its back-off
  std::string last_failure;  // the error of the run of failures' latest `failed` event
  // False until a commit has recorded the transfer: a trigger is taken from /OUT first, under a
  // spool name that says whose it is (SpooledTriggerName), and the first commit of its steps
  // records it with its `received` event (RecordReceived).
  bool recorded = true;
  // A job either runs a step, waits for a commit, or waits for a timer (`waiting`). A timer only
  // runs the job if no one (`fordeler retry`) woke it first: `token` tells which timer is live.
  std::atomic<bool> waiting{false};
  std::atomic<uint64_t> token{0};
  // Storage::generation() when the job last took over what it left in spool and staging
  // (TakeOverLeftovers): while it is unchanged, a step looks nowhere else.
  uint64_t storage_seen = 0;
  // Room promised by the quota check in recipients' /IN, one per recipient with a quota, kept
  // until the data is placed there or the job ends (CheckQuota).
  std::vector<QuotaLedger::Hold> quota_holds;
};
using JobPtr = std::shared_ptr<Job>;

// What the SFTP server told us about an upload it closed: lets the pipeline move (not copy) the
// file and reuse the digest computed while it arrived.
struct UploadInfo {
  uint64_t inode = 0;
  uint64_t size = 0;
  std::optional<Digest> sha256;
  std::chrono::steady_clock::time_point closed_at{};
};

// How long an upload's facts wait for its trigger. A data file taken later is copied and hashed
// instead of moved: slower, but the same result; the bound keeps data files that never get a
// trigger (removed, renamed, expired) from piling up in memory.
constexpr std::chrono::hours kUploadInfoLifetime{1};

struct DeliveryPipeline::Impl {
  Impl(Env* env, Storage* storage, AuditStore* audit, OutboxGate* gate, PipelineOptions options);

  // pipeline.cc
  std::shared_ptr<const Config> config() const EXCLUDES(mu_);
  void OnTrigger(const std::string& account, const std::string& trigger_name) EXCLUDES(mu_);
  // Posts a Begin for waiting triggers while fewer than max_begins are posted, the senders in
  // turn (the account after the one begun last, in id order).
  void PostBegins() EXCLUDES(mu_);
  void Begin(const std::string& account, const std::string& trigger_name, TimePoint announced_at);
  bool Claim(const std::string& account, const std::string& trigger_name) EXCLUDES(mu_);
  void Unclaim(Job& job) EXCLUDES(mu_);
  std::optional<UploadInfo> TakeUploadInfo(const std::string& account, const std::string& name)
      EXCLUDES(mu_);
  void Schedule(JobPtr job);
  void ScheduleAfter(JobPtr job, std::chrono::milliseconds delay);
  // Commits `batch`, then runs the job's next step (or finishes it when its step is kDone).
  void CommitThen(JobPtr job, Batch batch);
  // `batch`, preceded by the transfer and its `received` event when no commit has recorded the
  // transfer yet. Every commit of a transfer's steps goes through it.
  Batch RecordReceived(Job& job, Batch batch);
  // `batch`, preceded by a `retried` event when the job failed since its last commit: the step
  // went through after `retries_pending` failed attempts (contract §10).
  Batch RecordRetried(Job& job, Batch batch);
  // Triggers taken from /OUT that no commit recorded (fordelerd stopped in between): each
  // becomes a transfer again, with its uuid, sender and name from its spool name.
  Status AdoptSpooledTriggers(const std::set<std::string>& known);
  void Finish(const JobPtr& job);
  void RecordPickup(const std::string& account, const std::string& name);
  // Records `d` (as the caller read it: `delivered`) picked up, unless it is no longer
  // `delivered` when the commit applies (Batch::RequireDeliveryState). `done` may be empty.
  void RecordPickupOf(DeliveryRecord d, const std::string& note, AuditStore::Done done);
  // After the commit that recorded the job's deliveries: records a pickup for each delivered
  // name the recipient removed before that commit (pipeline_records.cc).
  void RecordPickupsMeanwhile(const Job& job);
  // Records a pickup for each delivery still `delivered` whose file is gone from its recipient's
  // /IN without a report (fordelerd stopped, crashed or lost inotify events): at every Rescan.
  void RecordPickupsUnseen();
  void RecordSessionEvent(const SessionEvent& event);
  // Records a download of IN/<name> by `account`, reported at `at`, as `downloaded` with the
  // transfer whose file it read when the audit log tells (TransferDownloaded), else with none.
  void RecordDownload(const std::string& account, const std::string& name, TimePoint at);
  // The uuid of the transfer whose data, metadata or (for its sender) receipt IN/<name> of
  // `account` was when its download was reported at `at`; "" when none is known. *data tells
  // whether it was the transfer's data file.
  std::string TransferDownloaded(const std::string& account, const std::string& name, TimePoint at,
                                 bool* data);
  // The delivery whose data (`data`) or metadata IN/<name> of `recipient` held at `at`: the
  // newest placed under that name, unless that file had left /IN before `at`.
  std::optional<DeliveryRecord> PlacedAt(const std::string& recipient, const std::string& name,
                                         TimePoint at, bool data);
  void Rescan();
  // spool, staging and quarantine followed to the folders at their paths (Storage::Refresh;
  // `make_missing` at a reload). Once one was opened anew (here or by any other caller), every
  // waiting transfer runs at once rather than at the end of its back-off. Returns the first
  // problem, naming the folder.
  Status FollowStorage(bool make_missing);
  // FollowStorage() once a second, until Stop().
  void WatchStorage();
  // Runs now every job waiting for a timer (a back-off, a data poll); returns how many. `by`, when
  // given, is what the woken jobs' `retried` events name instead of the back-off.
  int WakeWaiting(const std::string& by = "") EXCLUDES(mu_);
  JobPtr NewJob() const;

  // transfer_steps.cc: one step of the state machine per call, chosen by job->t.step.
  // What Examine() decided about a transfer whose trigger is in the spool.
  struct Verdict {
    enum Kind { kReady, kWait, kReject, kFail } kind;
    Rejection why;     // kReject
    Status error;      // kFail: fordeler's own problem (retried), not the sender's
    Resolution route;  // kReady
    uint64_t size;     // kReady: of the complete data file
  };
  void Run(JobPtr job);
  // When spool or staging was replaced since the job last looked (Storage::generation()): links
  // into the folders now at their paths what the transfer left in the old ones (its trigger and
  // data, its revealed mark). One atomic load otherwise.
  void TakeOverLeftovers(Job& job);
  // At `spooled`, after the placement found something missing: when the data is no longer in the
  // spool, which is in place (an operator removed the spool, or the file, after the data was
  // taken), it cannot be delivered, and *lost says why the transfer ends with a final 5001
  // rather than waiting for ever. Left empty while the data is there or the spool cannot be used
  // now. Fails (the step waits, saying so) when the metadata may have been revealed already (the
  // revealed mark): recipients may have the file.
  Status DataLost(const JobPtr& job, std::optional<Rejection>* lost);
  Status StepReceived(const JobPtr& job);
  Status StepTriggerTaken(const JobPtr& job);
  Status StepAccepted(const JobPtr& job);
  Status StepSpooled(const JobPtr& job);
  // StepSpooled's two halves (transfer_steps.cc).
  struct Staged {
    struct Placement {
      DeliveryRecord* d;
      int in;              // the recipient's /IN
      std::string placed;  // the data's name in /IN
      std::string temp;    // its metadata's temp file in staging
      UniqueFd fd;
    };
    std::vector<Placement> placements;
    // Pending deliveries revealed before a stop and fetched since (RevealedMarkName): recorded
    // as picked up, not placed again.
    std::vector<DeliveryRecord*> fetched;
    std::string receipt;
    Status receipt_status;  // ok: the receipt's temp file is written and synced
    int sender_in = -1;
    UniqueFd receipt_fd;
  };
  std::optional<Rejection> RecipientRemoved(const JobPtr& job);
  // Links and temp files, then one round of syncs for them and the descriptors in `also`.
  Result<Staged> Stage(const JobPtr& job, std::span<const int> also = {});
  Status Reveal(const JobPtr& job, Staged staged);
  Status StageThenCommit(const JobPtr& job, Batch batch, std::span<const int> taken);
  Status StepPlaced(const JobPtr& job);
  Status StepReceiptSent(const JobPtr& job);
  Status StepRejecting(const JobPtr& job);
  static std::string ReceiptFor(const TransferRecord& t);
  // Renames the receipt written to staging/`temp` into the sender's /IN (ReceiptTarget), under
  // the sender's PlacementLock: a transfer placing a data file in that /IN chooses its name under
  // the same lock, so neither takes the other's name between a look and a rename.
  Status RenameReceiptIn(const TransferRecord& t, const std::string& temp, int sender_in);
  // Where the sender's receipt goes in its /IN: ReceiptName, unless that is a data file delivered
  // to the sender as a recipient, or being delivered (an account that also receives was sent
  // "<x>.sftpreceipt"): a receipt replaces an older receipt, never a delivery, and then takes the
  // "<name>.<uuid>" form. Also that form when the audit log cannot say. The audit log is asked
  // only when a file of that name is in `sender_in`. Called under PlacementLock(t.sender).
  std::string ReceiptTarget(const TransferRecord& t, int sender_in);
  bool NewerReceiptSent(const TransferRecord& t);
  Status WriteReceiptFiles(const JobPtr& job, int quarantine_dir);
  Status FinishTransfer(const JobPtr& job, Batch batch);
  Status EndTransfer(const JobPtr& job, Batch batch);
  void Reject(const JobPtr& job, Rejection why);
  void Failed(const JobPtr& job, const Status& status);
  bool EnsureTrigger(const JobPtr& job);
  std::optional<Rejection> ParseJobTrigger(const JobPtr& job);
  Verdict Examine(const JobPtr& job, const Config& cfg);
  // For a 1004 whose data file is not in /OUT: names the sender's transfer of the same <name>
  // that took it shortly before (a trigger sent twice), "" when there is none.
  std::string TakenBefore(const TransferRecord& t);
  void Accept(const JobPtr& job, const Verdict& verdict, Batch* batch);
  static void RecordRoute(const Resolution& route, TransferRecord* t);
  void RejectRouted(const JobPtr& job, const Verdict& verdict);
  Result<bool> TakeData(const JobPtr& job, std::optional<Digest>* digest);
  Status SpoolData(const JobPtr& job, std::optional<Digest> digest, Batch batch, int out);
  Status SyncSpoolAndOut(int out);
  Status MoveToQuarantine(const JobPtr& job, int quarantine_dir);
  // Removes the copies of the data a transfer placed before a crash (transfer_rejects.cc): all of
  // them when it is rejected, those outside `keep` when it is routed again to other recipients.
  // `quarantine_dir` (or -1) is where the data may have moved meanwhile.
  Status RemovePlacedCopies(const TransferRecord& t, int quarantine_dir,
                            const std::set<std::string>& keep = {});
  // The names in `in` under which PlaceData puts transfer `t`'s data (<name>, CollisionName)
  // that hold the inode `spooled`: its own copy, placed before a crash.
  static std::vector<std::string> OwnCopies(int in, const TransferRecord& t, uint64_t spooled);
  // `spooled`: the inode of the transfer's data when it is in the spool (its own copies in the
  // recipient's /IN are not counted). When it passes, the room is promised to `job`.
  std::optional<Rejection> CheckQuota(const Config& cfg, const std::string& recipient,
                                      uint64_t size, std::optional<uint64_t> spooled, Job* job);
  // Gives back the room promised to `job` in `recipient`'s /IN: its data is there now.
  static void KeepPromise(Job* job, const std::string& recipient);
  // At start-up: a transfer accepted before the stop holds its room again in each /IN its data
  // has not reached, as it did when it passed CheckQuota (recovery does not check it again).
  void HoldRoomAgain(Job* job);
  std::string MetadataFor(const Job& job, const DeliveryRecord& d, const std::string& placed);

  Env* const env;
  Storage* const storage;
  AuditStore* const audit;
  OutboxGate* const gate;
  Metrics* const metrics;  // may be null
  boost::asio::thread_pool pool;
  // Begin tasks posted at once (half the workers). The pool runs its tasks in the order they were
  // posted, and a transfer's next step is posted when its commit completes: without the bound, a
  // burst of triggers from one sender would queue every Begin ahead of the steps of transfers
  // under way and of other senders' triggers.
  const int max_begins;
  std::atomic<bool> stopping{false};
  std::atomic<int64_t> started{0};
  std::atomic<int64_t> finished{0};
  std::atomic<uint64_t> storage_woken{0};  // Storage::generation() when WakeWaiting last ran
  const std::shared_ptr<QuotaLedger> quotas = std::make_shared<QuotaLedger>();

  mutable Mutex mu_;
  std::shared_ptr<const Config> config_ GUARDED_BY(mu_);
  // (account, trigger name) being looked at -> announced again meanwhile
  std::map<std::pair<std::string, std::string>, bool> claimed_ GUARDED_BY(mu_);
  // Claimed triggers not yet begun, by sender, in the order announced (with the time); the
  // sender begun last.
  std::map<std::string, std::deque<std::pair<std::string, TimePoint>>> waiting_triggers_
      GUARDED_BY(mu_);
  std::string begun_last_ GUARDED_BY(mu_);
  int begins_ GUARDED_BY(mu_) = 0;  // posted and not yet returned
  std::map<std::pair<std::string, std::string>, UploadInfo> uploads_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_upload_sweep_ GUARDED_BY(mu_){};
  std::map<std::string, JobPtr> active_ GUARDED_BY(mu_);                   // uuid -> job
  std::set<std::pair<std::string, std::string>> pickups_ GUARDED_BY(mu_);  // being recorded

  // ScheduleAfter's pending timers, for Stop to cancel.
  Mutex timers_mu_;
  std::set<std::shared_ptr<boost::asio::steady_timer>> timers_ GUARDED_BY(timers_mu_);
};

}  // namespace fordeler
