// Alerter: raises alerts (docs/operations.md, "Alerts"). Every alert is written as one log line
// (`event=alert kind=... route=... ...`) and one audit event of kind `alert`, and — when
// [alerts] on_alert is set — runs that command once, without a shell, with the alert's details
// in environment variables:
//
//   FORDELER_ALERT_KIND       late, missing, rejected, not_picked_up, retention_warning, stuck
//   FORDELER_ALERT_ROUTE      route id ("" when not known)
//   FORDELER_ALERT_AUTHORITY  authority ("*" = any; a transfer's for an alert about one; ""
//                             when not known)
//   FORDELER_ALERT_STATE      LATE, MISSING, REJECTED, NOT_PICKED_UP, RETENTION_WARNING, STUCK
//   FORDELER_ALERT_DUE        the expected delivery's due instant (retention_warning: when the
//                             file expires), RFC 3339 UTC ("" if none)
//   FORDELER_ALERT_TRANSFER   FileTransferUUID ("" if none)
//   FORDELER_ALERT_FILE       file name ("" if none)
//   FORDELER_ALERT_SENDER, FORDELER_ALERT_RECIPIENT  account ids ("" if none)
//   FORDELER_ALERT_ERROR_CODE the rejection's code, e.g. 1006 ("" if none)
//   FORDELER_ALERT_MESSAGE    one human sentence
//   FORDELER_ALERT_TIME       when the alert was raised, RFC 3339 UTC
//   FORDELER_ALERT_COUNT      how many alerts this run stands for (coalesced repeats, >= 1)
//   PATH=/usr/local/bin:/usr/bin:/bin, and nothing else of fordelerd's environment.
//
// Values are sanitised (senders choose file names): control characters (bytes < 0x20, 0x7f)
// become '?', and each value is cut to 256 bytes at a UTF-8 character boundary.
//
// Commands run one at a time on the alerter's own thread, in the order raised, each in its own
// process group with stdin from /dev/null; each line of its stdout and stderr is logged as an
// event of its own (`event=alert_output`, command_output.h), never copied raw into the journal.
// One still running after `timeout` gets SIGTERM, then SIGKILL a second later. The queue holds at
// most 100 alerts (more are logged and recorded but run no command). An alert whose kind, route and
// authority equal those of one still queued (not yet started) is coalesced into it: its count goes
// up and the command runs once.
//
// Thread-safe. The destructor waits for the running command (at most its timeout) and drops the
// rest of the queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_store.h"
#include "core/alert.h"
#include "core/env.h"

namespace fordeler {

class Alerter : public AlertSink {
 public:
  struct Options {
    std::vector<std::string> command;  // argv; empty: no command
    std::chrono::milliseconds timeout{30'000};
    size_t max_queue = 100;
  };

  // REQUIRES: `env` and `audit` (may be null: no audit events) outlive the alerter.
  Alerter(Options options, Env* env, AuditStore* audit);
  ~Alerter();
  Alerter(const Alerter&) = delete;
  Alerter& operator=(const Alerter&) = delete;

  // Logs and records `alert` now (the audit event is submitted, not waited for) and queues its
  // command.
  void Raise(Alert alert) override;

  // Waits until no command is queued or running, at most `limit`; true when idle (tests).
  bool WaitIdle(std::chrono::milliseconds limit);

  // The command's environment for `alert` ("NAME=value" strings), as described above.
  static std::vector<std::string> Environment(const Alert& alert, TimePoint now, int count);
  // `value` with control characters and bytes that are not UTF-8 replaced by '?' (see
  // ReplaceUnshowable, core/names.h) and cut to `max` bytes (header).
  static std::string Sanitize(std::string_view value, size_t max = 256);

 private:
  struct Queued {
    Alert alert;
    TimePoint raised;
    int count = 1;
  };
  void Run();
  void RunCommand(const Queued& q);

  const Options options_;
  Env* env_;
  AuditStore* audit_;
  std::mutex mu_;
  std::condition_variable wake_;  // queue changed or stopping
  std::condition_variable idle_;  // a command finished
  std::deque<Queued> queue_;      // under mu_
  bool running_ = false;          // under mu_: a command is running
  bool stop_ = false;             // under mu_
  std::thread thread_;
};

}  // namespace fordeler
