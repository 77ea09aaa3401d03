// RetentionSweeper: removes what has waited too long (contract §8) and records it as expired.
//
//   /OUT   files older than `retention` (data never triggered, leftovers)       event expired
//   /IN    delivered files not picked up within `retention`, with their
//          metadata: the delivery becomes `expired`                              event expired
//          receipts (.sftpreceipt) and orphaned metadata older than `retention` event expired
//   quarantine/<uuid>   rejected pairs kept as long as delivered data            event expired
//   spool/<uuid>        the spooled copy of a finished transfer (kept for
//                       `fordeler redeliver`) once older than `retention`
//
// Age is the time the file got its current name (its ctime: the rename or link that placed it).
// `retention_warning` before a delivered file expires, an `alert` event is recorded once.
// Sweep() runs at start-up and then at least hourly (Start); it can also be called directly
// (tests). Thread safety: Sweep() is serialised internally; Start/Stop from one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "config/config.h"
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
};

class RetentionSweeper {
 public:
  RetentionSweeper(Env* env, Storage* storage, AuditStore* audit);
  ~RetentionSweeper();

  void SetConfig(std::shared_ptr<const Config> config) EXCLUDES(mu_);
  SweepReport Sweep();

  // Sweeps now, then every `interval` until Stop(); `after_each` (may be empty) runs after every
  // sweep on the same thread (fordelerd rescans every /OUT there).
  void Start(std::chrono::milliseconds interval, std::function<void()> after_each);
  void Stop();

 private:
  struct Context;
  void SweepOut(Context& c, const Account& account);
  void SweepIn(Context& c, const Account& account);
  void SweepQuarantine(Context& c);
  void SweepSpool(Context& c);

  Env* env_;
  Storage* storage_;
  AuditStore* audit_;
  Mutex mu_;
  std::shared_ptr<const Config> config_ GUARDED_BY(mu_);
  std::mutex sweep_mu_;
  std::set<std::pair<std::string, std::string>> warned_;  // under sweep_mu_
  std::mutex wait_mu_;
  std::condition_variable wake_;
  bool stop_ = false;  // under wait_mu_
  std::thread thread_;
};

}  // namespace fordeler
