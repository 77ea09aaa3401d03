#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <filesystem>
#include <thread>
#include <utility>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/env.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "daemon/control_server.h"
#include "daemon/event_log.h"
#include "daemon/metrics_listener.h"
#include "daemon/restart_only.h"
#include "daemon/systemd_notify.h"
#include "delivery/folder_watcher.h"
#include "delivery/pipeline.h"
#include "delivery/retention.h"
#include "delivery/storage.h"
#include "http/http_server.h"
#include "http/router.h"
#include "monitor/monitor.h"
#include "sftp/account_registry.h"
#include "sftp/host_key_check.h"
#include "sftp/host_keys.h"
#include "sftp/ssh_server.h"

namespace fordeler {

namespace asio = boost::asio;

namespace {

// The storage root is created if missing (mode 0750); under systemd, StateDirectory= does it.
Status EnsureStorageRoot(const std::string& root) {
  std::error_code ec;
  if (std::filesystem::create_directories(root, ec)) {
    std::filesystem::permissions(root, std::filesystem::perms(0750), ec);
  }
  if (ec) return Status::FromErrno(ec.value(), "create storage root " + root);
  return Status::Ok();
}

constexpr const char* kLockFileName = "fordelerd.lock";

// Opens `path` (made with mode 0640 if missing) into *out and takes an exclusive flock on it
// without waiting: 0, or the errno of the open (*out not valid) or of the lock (EWOULDBLOCK:
// another process holds it).
int OpenLocked(const std::string& path, int flags, UniqueFd* out) {
  *out = UniqueFd(::open(path.c_str(), flags | O_CREAT | O_CLOEXEC, 0640));
  if (!out->valid()) return errno;
  return ::flock(out->get(), LOCK_EX | LOCK_NB) == 0 ? 0 : errno;
}

// One fordelerd per storage root. A second one (started by hand beside the service, say) would
// resume the same transfers, sweep the same files, append to the same audit chain and replace
// the control socket. The lock is an flock on <root>/fordelerd.lock, which holds the owner's
// pid for the message; it is released when the process ends, however it ends.
Status LockStorageRoot(const std::string& root, UniqueFd* out) {
  std::string path = root + "/" + kLockFileName;
  UniqueFd fd;
  int err = OpenLocked(path, O_RDWR | O_NOFOLLOW, &fd);
  if (!fd.valid()) return Status::FromErrno(err, "open " + path);
  if (err == EWOULDBLOCK) {
    char holder[32] = {};
    ssize_t n = ::pread(fd.get(), holder, sizeof holder - 1, 0);
    std::string pid = n > 0 ? std::string(holder, static_cast<size_t>(n)) : "";
    while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
    return Status::Unavailable("another fordelerd" + (pid.empty() ? "" : " (pid " + pid + ")") +
                               " uses the storage root " + root);
  }
  if (err != 0) return Status::FromErrno(err, "lock " + path);
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    return Status::FromErrno(errno, "write " + path);
  }
  *out = std::move(fd);  // kept open (and locked) until the process ends
  return Status::Ok();
}

// One fordelerd per audit database too: two with different storage roots but one [database]
// path would write the same hash chain, each from its own idea of the head. The lock is an flock
// on the database file itself (made empty if missing; SQLite takes an empty file as a new
// database), so every path to it, symlinks included, finds it. SQLite locks with fcntl, which is
// independent of flock on Linux: the CLI reading the database is never held up. Closing any fd
// of the file drops this process's fcntl locks, so `out` must be closed only after SQLite closed
// it.
Status LockDatabase(const std::string& path, UniqueFd* out) {
  UniqueFd fd;
  int err = OpenLocked(path, O_RDONLY, &fd);
  if (!fd.valid()) return Status::FromErrno(err, "open database " + path);
  if (err == EWOULDBLOCK) return Status::Unavailable("another fordelerd uses the database " + path);
  if (err != 0) return Status::FromErrno(err, "lock database " + path);
  *out = std::move(fd);
  return Status::Ok();
}

}  // namespace

struct Daemon::Impl {
  explicit Impl(DaemonOptions o)
      : options(std::move(o)),
        registry(Env::Default()),
        session_metrics(&metrics, &events),
        server(Env::Default(), &registry, &session_metrics),
        watcher([this](const std::string& account, Folder folder, const std::string& name,
                       bool removed) {
          if (pipeline) pipeline->OnFolderChange(account, folder, name, removed);
        }),
        signals(control, SIGTERM, SIGINT, SIGHUP),
        watchdog(control) {}

  std::shared_ptr<const Config> Load(bool at_start);
  Status StartDelivery();
  void StartHousekeeping();
  void StopDelivery();
  void WaitForSignal();
  void Reload();
  void KeepWatchdogFed(std::chrono::microseconds interval);
  Status StartHttp();
  void ReloadHttpTls();
  std::shared_ptr<const Config> CurrentConfig() EXCLUDES(config_mu);

  DaemonOptions options;
  std::shared_ptr<const Config> config;
  std::shared_ptr<const Config> started;  // as loaded at start: what restart-only settings are
  AccountRegistry registry;
  UniqueFd database_lock;  // the audit database, flocked: closed after `audit` (LockDatabase)
  std::unique_ptr<AuditStore> audit;
  std::unique_ptr<Storage> storage;
  std::unique_ptr<DeliveryPipeline> pipeline;
  std::unique_ptr<Monitor> monitor;               // schedules, route health, alerts
  std::unique_ptr<RetentionSweeper> retention;    // raises through `monitor`: goes first
  std::unique_ptr<ControlServer> control_server;  // `fordeler retry`, `recall`, ...
  UniqueFd root_lock;  // <root>/fordelerd.lock, held for the process's life
  EventLog events;
  Metrics metrics;                  // /metrics
  MetricsListener session_metrics;  // counts session events, then passes them to `events`
  SshServer server;
  Mutex config_mu;  // `config` as the HTTP thread sees it
  std::shared_ptr<const Config> http_config GUARDED_BY(config_mu);
  std::unique_ptr<Router> router;    // status page, JSON API, /metrics
  std::unique_ptr<HttpServer> http;  // on its own thread
  FolderWatcher watcher;
  asio::io_context control;  // signals and the watchdog, on their own thread
  asio::signal_set signals;
  asio::steady_timer watchdog;
};

std::shared_ptr<const Config> Daemon::Impl::Load(bool at_start) {
  LoadResult loaded = LoadConfig(options.config_path, LoadOptions{&HostKeyProblem});
  for (const auto& warning : loaded.warnings) {
    spdlog::warn("event=config_warning warning={}", LogValue(warning.ToString()));
  }
  for (const auto& error : loaded.errors) {
    if (at_start) {
      spdlog::error("event=config_error error={}", LogValue(error.ToString()));
    } else {
      spdlog::error("event=reload_refused error={}", LogValue(error.ToString()));
    }
  }
  return loaded.config;
}

void Daemon::Impl::WaitForSignal() {
  signals.async_wait([this](boost::system::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      Reload();
      WaitForSignal();
      return;
    }
    spdlog::info("event=stopping signal={}", signal == SIGTERM ? "SIGTERM" : "SIGINT");
    systemd::NotifyStopping();
    watchdog.cancel();
    server.Stop();
  });
}

void Daemon::Impl::Reload() {
  systemd::NotifyReloading();
  auto fresh = Load(false);
  if (fresh != nullptr) {
    // Compared with what the daemon started with, so that a second reload still says it.
    std::string pending = RestartOnlyChanges(*fresh, *started);
    if (!pending.empty()) {
      spdlog::warn("event=reload_partial restart_needed={} note=\"these change only at restart\"",
                   pending);
    }
    fresh = KeepRestartOnly(*fresh, *started);
    Status s = registry.Configure(*fresh);
    if (s.ok()) {
      // Like the accounts' folders (registry.Configure): spool, staging or quarantine made again
      // where missing, and the transfers waiting for one go on.
      if (Status own = pipeline->FollowStorage(/*make_missing=*/true); !own.ok()) {
        spdlog::warn("event=storage_failed error={}", LogValue(own.message()));
      }
      pipeline->SetConfig(fresh);
      // The accounts' folders Configure made again, or an account added for a transfer's
      // recipient: the transfers failing meanwhile need not wait out their back-off.
      pipeline->RetryWaiting("reload");
      retention->SetConfig(fresh);
      monitor->SetConfig(fresh);
      watcher.Watch(*fresh);
      server.Reconfigure(fresh);
      config = fresh;
      {
        MutexLock lock(&config_mu);
        http_config = fresh;
      }
      ReloadHttpTls();
      spdlog::info("event=reloaded accounts={} routes={}", fresh->accounts.size(),
                   fresh->routes.size());
    } else {
      spdlog::error("event=reload_refused error={}", LogValue(s.message()));
    }
  }
  systemd::NotifyReady("serving");
}

// The status page's certificate and key, read again from the same files ([http] itself changes
// only at restart): a certificate renewed in place is served from the next connection on. A
// file that does not load leaves the one in use.
void Daemon::Impl::ReloadHttpTls() {
  if (!http || started->http.tls_certificate.empty()) return;
  if (Status s = http->ReloadTls(); !s.ok()) {
    spdlog::warn("event=http_tls_reload_failed error={} note=\"the certificate in use is kept\"",
                 LogValue(s.message()));
    return;
  }
  spdlog::info("event=http_tls_reloaded certificate={}", LogValue(started->http.tls_certificate));
}

void Daemon::Impl::KeepWatchdogFed(std::chrono::microseconds interval) {
  systemd::NotifyWatchdog();
  watchdog.expires_after(interval / 2);
  watchdog.async_wait([this, interval](boost::system::error_code ec) {
    if (!ec) KeepWatchdogFed(interval);
  });
}

// Opens the audit log and the spool, and resumes unfinished transfers: the daemon listens only
// once it can route (contract §10).
Status Daemon::Impl::StartDelivery() {
  auto opened = AuditStore::Open(config->database.path, Env::Default());
  if (!opened.ok()) return opened.status();
  audit = std::move(*opened);
  auto spool = Storage::Open(Env::Default(), config->storage.root);
  if (!spool.ok()) return spool.status();
  storage = std::move(*spool);
  PipelineOptions pipeline_options;
  pipeline_options.metrics = &metrics;
  pipeline_options.threads = config->delivery.workers;
  pipeline = std::make_unique<DeliveryPipeline>(Env::Default(), storage.get(), audit.get(),
                                                &registry, pipeline_options);
  pipeline->SetConfig(config);
  events.set_next(pipeline.get());
  Status s = watcher.Start();
  if (s.ok()) watcher.Watch(*config);
  if (s.ok()) {  // spool, staging or quarantine removed or replaced: followed at once
    s = watcher.WatchStorageRoot(config->storage.root,
                                 [this] { pipeline->FollowStorage(/*make_missing=*/false); });
  }
  if (s.ok()) s = pipeline->Start();
  if (s.ok()) {
    control_server = std::make_unique<ControlServer>(pipeline.get(), audit.get());
    s = control_server->Start(config->storage.root + "/" + kControlSocketName);
  }
  return s;
}

// Once the daemon serves: schedules and route health (a schedule is watched from when fordelerd
// started serving it, and a daemon that could not listen records nothing of the kind), and at
// start-up and hourly retention and a rescan for events inotify lost.
void Daemon::Impl::StartHousekeeping() {
  monitor = std::make_unique<Monitor>(Env::Default(), audit.get());
  monitor->SetConfig(config);
  monitor->Start();
  // Retention warnings are alerts: raised through the monitor's Alerter, as its own are.
  retention =
      std::make_unique<RetentionSweeper>(Env::Default(), storage.get(), audit.get(), monitor.get());
  retention->SetConfig(config);
  // pipeline->Start() rescanned already: the rescan follows the later, hourly sweeps only.
  retention->Start(std::chrono::hours(1), [this, first = true]() mutable {
    if (!std::exchange(first, false)) pipeline->Rescan();
  });
}

std::shared_ptr<const Config> Daemon::Impl::CurrentConfig() {
  MutexLock lock(&config_mu);
  return http_config;
}

// The status page and /metrics ([http]; none when listen is empty), on the server's own thread.
Status Daemon::Impl::StartHttp() {
  {
    MutexLock lock(&config_mu);
    http_config = config;
  }
  StatusSources sources;
  sources.config = [this] { return CurrentConfig(); };
  sources.audit = audit.get();
  sources.metrics = &metrics;
  sources.active_sessions = [this] { return server.session_count(); };
  sources.delivery_load = [this] {
    DeliveryPipeline::Load load = pipeline->load();
    return std::make_pair(load.waiting_triggers, load.in_progress);
  };
  router = std::make_unique<Router>(std::move(sources));
  http = std::make_unique<HttpServer>(router.get());
  Status s = http->Start(config->http);
  for (const auto& address : http->ListeningAddresses()) {
    spdlog::info("event=http_listening address={}", address);
  }
  return s;
}

void Daemon::Impl::StopDelivery() {
  if (http) http->Stop();
  if (control_server) control_server->Stop();
  if (retention) retention->Stop();
  if (monitor) monitor->Stop();
  watcher.Stop();
  if (pipeline) pipeline->Stop();
  if (audit) audit->Close();
}

Daemon::Daemon(DaemonOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& d = *impl_;
  d.config = d.started = d.Load(true);
  if (d.config == nullptr) {
    spdlog::critical("event=not_started reason={}",
                     LogValue("configuration errors in " + d.options.config_path));
    return 2;
  }
  // Like sshd's "UNPROTECTED PRIVATE KEY FILE": a configuration error (exit status 2).
  if (Status keys = CheckHostKeyPermissions(d.config->server.host_keys, {::geteuid(), ::getegid()});
      !keys.ok()) {
    spdlog::critical("event=not_started reason={}", LogValue(keys.message()));
    return 2;
  }
  Status s = EnsureStorageRoot(d.config->storage.root);
  if (s.ok()) s = LockStorageRoot(d.config->storage.root, &d.root_lock);
  if (s.ok()) s = LockDatabase(d.config->database.path, &d.database_lock);
  if (s.ok()) s = d.registry.Configure(*d.config);
  if (s.ok()) s = d.StartDelivery();
  if (s.ok()) s = d.server.Start(d.config);
  if (s.ok()) s = d.StartHttp();
  if (!s.ok()) {
    spdlog::critical("event=not_started error={}", LogValue(s.message()));
    d.StopDelivery();
    return 1;
  }
  for (const auto& address : d.server.ListeningAddresses()) {
    spdlog::info("event=listening address={}", address);
  }
  d.StartHousekeeping();
  d.WaitForSignal();
  if (auto interval = systemd::WatchdogInterval()) d.KeepWatchdogFed(*interval);
  std::thread control([&d] {
    NameThisThread("signals");
    d.control.run();
  });
  systemd::NotifyReady("serving");
  spdlog::info("event=ready accounts={} routes={}", d.config->accounts.size(),
               d.config->routes.size());
  d.server.Run();
  d.StopDelivery();
  d.signals.cancel();
  d.control.stop();
  control.join();
  spdlog::info("event=stopped");
  return 0;
}

}  // namespace fordeler
