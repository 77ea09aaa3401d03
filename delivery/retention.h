// RetentionSweeper: removes what has waited too long (contract §8) and records it as expired.
//
//   /OUT   files older than `retention` (data never triggered, leftovers)       event expired
//   /IN    delivered files not picked up within `retention`, with their
//          metadata: the delivery becomes `expired`                              event expired
//          receipts (.sftpreceipt) and orphaned metadata older than `retention` event expired
//          (/OUT and /IN of every folder under accounts/: also of accounts a reload removed)
//          (what a file is: the audit log first, then its suffix — file_ops.h KindOfInFile)
//   quarantine/<uuid>   rejected pairs kept as long as delivered data            event expired
//   spool/<uuid>        the spooled copy of a finished transfer (kept for
//                       `fordeler redeliver`) once older than `retention`
//
// Age: a delivered file's is its delivery's delivered_at (from the audit log); anything else's is
// the time it got its current name (its ctime: the rename or link that placed it). Not ctime for
// delivered files: every recipient's copy and the spool file share one inode, whose ctime any
// pickup changes; not mtime: senders set it. An expiring delivery is recorded `expired` before
// its files are removed, so that the removal is never taken for a pickup.
// `retention_warning` before a delivered file expires, the alert `retention_warning` is raised
// once per delivery through the AlertSink (fordelerd's Alerter: a log line `event=alert`, the
// audit event `alert`, and [alerts] on_alert). Once survives a restart: before raising, the
// sweeper looks for that `alert` event in the audit log (AuditStore::AlertRecorded).
// Sweep() runs at start-up and then at least hourly (Start); it can also be called directly
// (tests). Stop() ends a sweep under way between two files (what it did so far is recorded), so
// that a stop of fordelerd never waits for a sweep of a large /IN. Thread safety: Sweep() is
// serialised internally; Start/Stop from one thread, Stop also from within a sweep.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "audit/records.h"
#include "config/config.h"
#include "core/alert.h"
#include "core/mutex.h"
#include "core/status.h"

namespace fordeler {

class AuditStore;
class Env;
class Storage;

struct SweepReport {
  int expired_out = 0;
  int expired_deliveries = 0;
  int expired_receipts = 0;
  int expired_quarantine = 0;
  int removed_spool = 0;
  int warnings = 0;
  bool stopped_early = false;  // Stop() came during the sweep: the next one does the rest
};

class RetentionSweeper {
 public:
  // REQUIRES: env, storage, audit and alerts outlive the sweeper. `alerts` may be null (tests):
  // warnings are then only counted (SweepReport::warnings), never raised.
  RetentionSweeper(Env* env, Storage* storage, AuditStore* audit, AlertSink* alerts = nullptr);
  ~RetentionSweeper();

  void SetConfig(std::shared_ptr<const Config> config) EXCLUDES(mu_);
  SweepReport Sweep();

  // Sweeps now, then every `interval` until Stop(); `after_each` (may be empty) runs after every
  // sweep on the same thread (fordelerd rescans every /OUT there).
  void Start(std::chrono::milliseconds interval, std::function<void()> after_each);
  void Stop();

 private:
  struct Context;
  std::set<std::string> AccountsToSweep(const Config& config) const;
  void SweepOut(Context& c, const std::string& account);
  void SweepIn(Context& c, const std::string& account);
  void WarnBeforeExpiry(Context& c, const DeliveryRecord& d,
                        std::chrono::system_clock::time_point placed);
  void ExpireDeliveries(Context& c, int in, const std::vector<DeliveryRecord>& expiring);
  void RemoveExpired(Context& c, int in, const DeliveryRecord& d);
  void SweepQuarantine(Context& c);
  void SweepSpool(Context& c);
  // True once Stop() was called; marks the sweep's report as stopped early.
  bool Interrupted(Context& c) const;

  Env* env_;
  Storage* storage_;
  AuditStore* audit_;
  Mutex mu_;
  std::shared_ptr<const Config> config_ GUARDED_BY(mu_);
  std::mutex sweep_mu_;
  AlertSink* alerts_;
  // Keys of retention warnings raised or found in the audit log (a cache: the log is what
  // remembers them), under sweep_mu_.
  static constexpr size_t kMaxRememberedWarnings = 10'000;
  std::set<std::string> warned_;
  std::mutex wait_mu_;
  std::condition_variable wake_;
  std::atomic<bool> stop_{false};  // set under wait_mu_ (for wake_), read by sweeps without it
  std::thread thread_;
};

}  // namespace fordeler
