#include "daemon/daemon.h"

#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <csignal>
#include <filesystem>
#include <thread>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/env.h"
#include "daemon/control_server.h"
#include "daemon/event_log.h"
#include "daemon/systemd_notify.h"
#include "delivery/folder_watcher.h"
#include "delivery/pipeline.h"
#include "delivery/retention.h"
#include "delivery/storage.h"
#include "sftp/account_registry.h"
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

}  // namespace

struct Daemon::Impl {
  explicit Impl(DaemonOptions o)
      : options(std::move(o)),
        registry(Env::Default()),
        server(Env::Default(), &registry, &events),
        watcher([this](const std::string& account, Folder folder, const std::string& name,
                       bool removed) {
          if (pipeline) pipeline->OnFolderChange(account, folder, name, removed);
        }),
        signals(control, SIGTERM, SIGINT, SIGHUP),
        watchdog(control) {}

  std::shared_ptr<const Config> Load(bool at_start);
  Status StartDelivery();
  void StopDelivery();
  void WaitForSignal();
  void Reload();
  void KeepWatchdogFed(std::chrono::microseconds interval);

  DaemonOptions options;
  std::shared_ptr<const Config> config;
  AccountRegistry registry;
  std::unique_ptr<AuditStore> audit;
  std::unique_ptr<Storage> storage;
  std::unique_ptr<DeliveryPipeline> pipeline;
  std::unique_ptr<RetentionSweeper> retention;
  std::unique_ptr<ControlServer> control_server;  // `fordeler retry`, `recall`, ...
  EventLog events;
  SshServer server;
  FolderWatcher watcher;
  asio::io_context control;  // signals and the watchdog, on their own thread
  asio::signal_set signals;
  asio::steady_timer watchdog;
};

std::shared_ptr<const Config> Daemon::Impl::Load(bool at_start) {
  LoadResult loaded = LoadConfig(options.config_path);
  for (const auto& error : loaded.errors) {
    if (at_start) {
      spdlog::error("event=config_error {}", error.ToString());
    } else {
      spdlog::error("event=reload_refused {}", error.ToString());
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
    if (fresh->server.listen != config->server.listen ||
        fresh->server.host_keys != config->server.host_keys ||
        fresh->storage.root != config->storage.root) {
      spdlog::warn(
          "event=reload_partial note=\"listen, host_keys and storage.root change only "
          "at restart\"");
    }
    Status s = registry.Configure(*fresh);
    if (s.ok()) {
      pipeline->SetConfig(fresh);
      retention->SetConfig(fresh);
      watcher.Watch(*fresh);
      server.Reconfigure(fresh);
      config = fresh;
      spdlog::info("event=reloaded accounts={} routes={}", fresh->accounts.size(),
                   fresh->routes.size());
    } else {
      spdlog::error("event=reload_refused error=\"{}\"", s.message());
    }
  }
  systemd::NotifyReady("serving");
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
  pipeline = std::make_unique<DeliveryPipeline>(Env::Default(), storage.get(), audit.get(),
                                                &registry, PipelineOptions{});
  pipeline->SetConfig(config);
  events.set_next(pipeline.get());
  Status s = watcher.Start();
  if (s.ok()) watcher.Watch(*config);
  if (s.ok()) s = pipeline->Start();
  if (s.ok()) {  // at start-up and hourly: retention, and a rescan for events inotify lost
    retention = std::make_unique<RetentionSweeper>(Env::Default(), storage.get(), audit.get());
    retention->SetConfig(config);
    retention->Start(std::chrono::hours(1), [this] { pipeline->Rescan(); });
  }
  if (s.ok()) {
    control_server = std::make_unique<ControlServer>(pipeline.get(), audit.get());
    s = control_server->Start(config->storage.root + "/" + kControlSocketName);
  }
  return s;
}

void Daemon::Impl::StopDelivery() {
  if (control_server) control_server->Stop();
  if (retention) retention->Stop();
  watcher.Stop();
  if (pipeline) pipeline->Stop();
  if (audit) audit->Close();
}

Daemon::Daemon(DaemonOptions options) : impl_(std::make_unique<Impl>(std::move(options))) {}

Daemon::~Daemon() = default;

int Daemon::Run() {
  Impl& d = *impl_;
  d.config = d.Load(true);
  if (d.config == nullptr) {
    spdlog::critical("event=not_started reason=\"configuration errors in {}\"",
                     d.options.config_path);
    return 2;
  }
  Status s = EnsureStorageRoot(d.config->storage.root);
  if (s.ok()) s = d.registry.Configure(*d.config);
  if (s.ok()) s = d.StartDelivery();
  if (s.ok()) s = d.server.Start(d.config);
  if (!s.ok()) {
    spdlog::critical("event=not_started error=\"{}\"", s.message());
    d.StopDelivery();
    return 1;
  }
  for (const auto& address : d.server.ListeningAddresses()) {
    spdlog::info("event=listening address={}", address);
  }
  d.WaitForSignal();
  if (auto interval = systemd::WatchdogInterval()) d.KeepWatchdogFed(*interval);
  std::thread control([&d] { d.control.run(); });
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
