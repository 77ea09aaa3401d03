#include "monitor/alerter.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <spdlog/spdlog.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "audit/records.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "monitor/command_output.h"

namespace fordeler {
namespace {

constexpr size_t kValueMax = 256;
constexpr std::chrono::milliseconds kKillGrace{1000};
constexpr std::chrono::milliseconds kPollStep{10};

std::string CoalesceKey(const Alert& a) { return a.kind + "\n" + a.route + "\n" + a.authority; }

// The audit event's detail: the identifying key, then what else is known.
std::string Detail(const Alert& a) {
  std::string d = a.key;
  auto add = [&](const char* name, const std::string& value) {
    if (value.empty() || d.find(std::string(name) + "=") != std::string::npos) return;
    std::string v = Alerter::Sanitize(value, 120);
    std::replace(v.begin(), v.end(), ' ', '_');
    d += (d.empty() ? "" : " ") + std::string(name) + "=" + LogValue(v);  // '"', '=': quoted
  };
  add("kind", a.kind);
  add("route", a.route);
  add("authority", a.authority);
  add("state", a.state);
  add("recipient", a.recipient);
  if (a.error_code != 0) add("code", std::to_string(a.error_code));
  return d;
}

void Log(const Alert& a) {
  spdlog::warn(
      "event=alert kind={} route={} authority={} state={} due={} transfer={} sender={} "
      "recipient={} code={} message={}",
      a.kind, a.route.empty() ? "-" : a.route, a.authority.empty() ? "-" : LogValue(a.authority),
      a.state, a.due ? FormatTime(*a.due) : "-", a.transfer.empty() ? "-" : a.transfer,
      a.sender.empty() ? "-" : Alerter::Sanitize(a.sender, 64),
      a.recipient.empty() ? "-" : Alerter::Sanitize(a.recipient, 64),
      a.error_code != 0 ? std::to_string(a.error_code) : "-",
      LogValue(Alerter::Sanitize(a.message)));
}

// Waits for `pid` until `deadline`, logging its output meanwhile; true when it exited (reaped).
bool WaitUntil(pid_t pid, std::chrono::steady_clock::time_point deadline, int* status,
               CommandOutput* output) {
  for (;;) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid || (r < 0 && errno != EINTR)) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    output->Read(kPollStep);
  }
}

}  // namespace

std::string Alerter::Sanitize(std::string_view value, size_t max) {
  // C0, DEL, C1 and bidirectional controls and bytes that are not UTF-8: a file name or trigger
  // value (FILE, AUTHORITY) may hold them, and a command may show the value on a terminal.
  std::string out = ReplaceUnshowable(value, "?");
  if (out.size() > max) {
    size_t cut = max;
    // Never cut inside a UTF-8 sequence: step back over continuation bytes.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

std::vector<std::string> Alerter::Environment(const Alert& a, TimePoint now, int count) {
  std::vector<std::pair<const char*, std::string>> vars = {
      {"KIND", a.kind},
      {"ROUTE", a.route},
      {"AUTHORITY", a.authority},
      {"STATE", a.state},
      {"DUE", a.due ? FormatTime(*a.due) : ""},
      {"TRANSFER", a.transfer},
      {"FILE", a.file},
      {"SENDER", a.sender},
      {"RECIPIENT", a.recipient},
      {"ERROR_CODE", a.error_code != 0 ? std::to_string(a.error_code) : ""},
      {"MESSAGE", a.message},
      {"TIME", FormatTime(now)},
      {"COUNT", std::to_string(count)},
  };
  std::vector<std::string> env{"PATH=/usr/local/bin:/usr/bin:/bin"};
  for (const auto& [name, value] : vars) {
    env.push_back(std::string("FORDELER_ALERT_") + name + "=" + Sanitize(value, kValueMax));
  }
  return env;
}

Alerter::Alerter(Options options, Env* env, AuditStore* audit)
    : options_(std::move(options)), env_(env), audit_(audit) {
  if (!options_.command.empty()) {
    thread_ = std::thread([this] {
      NameThisThread("alerter");
      Run();
    });
  }
}

Alerter::~Alerter() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    queue_.clear();
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Alerter::Raise(Alert alert) {
  Log(alert);
  if (audit_ != nullptr) {
    Batch batch;
    batch.AddEvent("alert", alert.transfer, alert.account, Detail(alert));
    audit_->Submit(std::move(batch), [](const Status& s) {
      if (!s.ok()) spdlog::error("event=alert_not_recorded error={}", LogValue(s.message()));
    });
  }
  if (options_.command.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stop_) return;
  std::string key = CoalesceKey(alert);
  for (Queued& q : queue_) {
    if (CoalesceKey(q.alert) == key) {
      ++q.count;
      return;
    }
  }
  if (queue_.size() >= options_.max_queue) {
    spdlog::error("event=alert_command_skipped reason=\"queue full\" kind={}", alert.kind);
    return;
  }
  queue_.push_back(Queued{std::move(alert), env_->Now(), 1});
  wake_.notify_all();
}

bool Alerter::WaitIdle(std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock(mu_);
  return idle_.wait_for(lock, limit, [this] { return queue_.empty() && !running_; });
}

void Alerter::Run() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    if (stop_) break;
    Queued q = std::move(queue_.front());
    queue_.pop_front();
    running_ = true;
    lock.unlock();
    RunCommand(q);
    lock.lock();
    running_ = false;
    idle_.notify_all();
  }
  running_ = false;
  idle_.notify_all();
}

void Alerter::RunCommand(const Queued& q) {
  std::vector<std::string> env = Environment(q.alert, q.raised, q.count);
  std::vector<char*> argv, envp;
  for (const std::string& a : options_.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (std::string& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);

  CommandOutput output(q.alert.kind);
  if (Status s = output.Open(); !s.ok()) {
    spdlog::error("event=alert_command_failed kind={} program={} error={}", q.alert.kind,
                  LogValue(argv[0]), LogValue(s.message()));
    return;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  output.PrepareSpawn(&actions);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
  pid_t pid = -1;
  int err = posix_spawn(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  output.Spawned();
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (err != 0) {
    spdlog::error("event=alert_command_failed kind={} program={} error={}", q.alert.kind,
                  LogValue(argv[0]), LogValue(std::strerror(err)));
    return;
  }
  int status = 0;
  auto deadline = std::chrono::steady_clock::now() + options_.timeout;
  if (!WaitUntil(pid, deadline, &status, &output)) {
    spdlog::error("event=alert_command_timeout kind={} timeout_ms={}", q.alert.kind,
                  options_.timeout.count());
    kill(-pid, SIGTERM);
    if (!WaitUntil(pid, std::chrono::steady_clock::now() + kKillGrace, &status, &output)) {
      kill(-pid, SIGKILL);
      WaitUntil(pid, std::chrono::steady_clock::time_point::max(), &status, &output);
    }
    output.Finish();
    return;
  }
  output.Finish();
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    spdlog::error("event=alert_command_failed kind={} status={}", q.alert.kind,
                  WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
  } else {
    spdlog::info("event=alert_command_done kind={} count={}", q.alert.kind, q.count);
  }
}

}  // namespace fordeler
