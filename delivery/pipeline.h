// DeliveryPipeline: the heart of fordeler. It takes trigger files out of senders' /OUT, checks
// and routes them, places each accepted file with its metadata in every recipient's /IN, writes
// the sender's receipt, and records every step in the audit log before the next one starts
// (docs/architecture.md: the delivery state machine).
//
// Triggers arrive from the SFTP server (FileEventListener: upload closed or renamed), from the
// inotify watcher (files put in /OUT by other means) and from the rescan at Start(). Start()
// first resumes every unfinished transfer from the step it had recorded — recovery is the same
// state machine, never a separate code path. Pickups (a recipient removed a delivered file) are
// reported by the server and by inotify; the rescan finds those that nobody reported.
//
// Work runs on a small pool of worker threads; steps of one transfer run one after the other,
// transfers run in parallel. A failure of fordeler's own (an unwritable folder, a full disk, a
// busy database) is retried with back-off (code 5001 while it lasts); nothing is lost.
//
// Thread safety: all public methods may be called from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/file_events.h"
#include "core/status.h"

namespace fordeler {

class AuditStore;
class Env;
class Metrics;
class Storage;

struct PipelineOptions {
  int threads = 4;  // worker threads for file work
  Metrics* metrics =
      nullptr;  // counts outcomes, routing latency, bytes in and out (/metrics); may be null
};

class DeliveryPipeline : public FileEventListener {
 public:
  // REQUIRES: everything passed outlives the pipeline.
  DeliveryPipeline(Env* env, Storage* storage, AuditStore* audit, OutboxGate* gate,
                   PipelineOptions options);
  ~DeliveryPipeline() override;

  void SetConfig(std::shared_ptr<const Config> config);

  // Resumes unfinished transfers and rescans (Rescan).
  Status Start();
  // Lets running steps finish, then stops the workers. Unfinished transfers resume at the next
  // Start().
  void Stop();

  // FileEventListener (from the SFTP server).
  void OnUploadClosed(const UploadClosed& event) override;
  void OnSessionEvent(const SessionEvent& event) override;

  // Looks for triggers in every account's /OUT, and records as picked up the deliveries still
  // `delivered` whose file is gone from the recipient's /IN (a removal while fordelerd was
  // stopped, or one whose report a crash or an inotify overflow lost): at Start, and hourly.
  void Rescan();

  // Follows spool, staging and quarantine to the folders at their paths, making a missing one
  // when `make_missing` (a reload; Storage::Refresh); transfers waiting for one that is back go
  // on at once. The pipeline does the same by itself once a second (without making anything)
  // and after a step failed. Returns why one of them cannot be used, naming it.
  Status FollowStorage(bool make_missing);

  // Runs every transfer waiting out a back-off (or polling for its data) now, rather than when
  // its timer fires: after a reload, which may have made the folder it failed on. Their `retried`
  // events say `by=<by>`; logs `event=woken` with the count.
  void RetryWaiting(const std::string& by);

  // A file appeared in (or vanished from) an account's folder by other means (inotify).
  void OnFolderChange(const std::string& account, Folder folder, const std::string& name,
                      bool removed);

  // Who asked for an operator action, as its audit event records it (`by=…`): "operator", and
  // the caller's uid when the control socket knows it ("operator uid=1001").
  static constexpr const char* kOperator = "operator";

  // What `fordeler retry` did to an unfinished transfer.
  enum class Retried {
    kWoken,    // it waited out a back-off after failing: its step runs again now, recorded
               // first as `retried`
    kRunning,  // a step of it is running at this moment: it goes on by itself; nothing recorded
    kWaitingForData,  // it has not failed: it waits for its data file (contract §2, until
                      // trigger_grace); looked at again now, nothing recorded
  };
  // Runs the state machine of an unfinished transfer again now (`fordeler retry`). Fails for a
  // finished or unknown transfer.
  Result<Retried> Retry(const std::string& uuid, const std::string& by = kOperator);

  // Operator actions (`fordeler recall`, `redeliver`, `quarantine release|purge`; contract §10;
  // delivery/operator_actions.cc). Each is recorded in the audit log (an event on the transfer)
  // before it returns. They refuse a transfer that is unknown (kNotFound), still being processed
  // or in the wrong state (kInvalidArgument), with a message for the operator; other errors are
  // fordeler's own (a folder, the disk, the database).
  struct Recalled {
    std::string recipient;
    std::string name;  // the data file withdrawn from the recipient's /IN
  };
  // Withdraws the transfer's deliveries not yet picked up (all, or `recipient`'s when not
  // empty): <name>.metadata and <name> leave the recipient's /IN; the delivery becomes
  // `recalled` with an event `recalled`. A delivery the recipient picks up meanwhile is recorded
  // as picked up instead and not returned.
  Result<std::vector<Recalled>> Recall(const std::string& uuid, const std::string& recipient,
                                       const std::string& by = kOperator);
  // Places a delivered transfer again in `recipient`'s /IN (one of its recipients, whose
  // delivery is not waiting there now) from the spool, with fresh metadata; the delivery becomes
  // `delivered` again with an event `redelivered`. Returns the name placed.
  Result<std::string> Redeliver(const std::string& uuid, const std::string& recipient,
                                const std::string& by = kOperator);
  // Moves a rejected transfer's quarantined files back into the sender's /OUT (data first, then
  // the trigger), so that they are routed again as a new transfer, and removes the quarantine
  // folder; event `released`. Returns the names put in /OUT.
  Result<std::vector<std::string>> ReleaseQuarantined(const std::string& uuid,
                                                      const std::string& by = kOperator);
  // Deletes a rejected transfer's quarantine folder; event `purged`. Returns the names deleted.
  Result<std::vector<std::string>> PurgeQuarantined(const std::string& uuid,
                                                    const std::string& by = kOperator);

  // Triggers announced and waiting for their turn to be begun (still in their /OUT), and
  // transfers begun and not finished: running a step, or waiting for a commit, their data or the
  // end of a back-off (/metrics).
  struct Load {
    size_t waiting_triggers = 0;
    size_t in_progress = 0;
  };
  Load load() const;

  // Transfers started and finished since Start() (tests and benchmarks wait on these).
  int64_t started() const;
  int64_t finished() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace fordeler
