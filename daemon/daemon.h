// Daemon: fordelerd's parts wired together — configuration, jails, the SSH/SFTP server, signals
// and systemd notification. main() only parses arguments and calls Run().
//
// Run() loads the configuration, opens the jails, binds the listening sockets (only once it can
// serve), tells systemd it is ready, and serves until SIGTERM/SIGINT, when it ends every session
// and returns 0. SIGHUP reloads the configuration; a configuration with errors is refused and
// logged, and the running one stays.
#pragma once

#include <memory>
#include <string>

namespace fordeler {

struct DaemonOptions {
  std::string config_path = "/etc/fordeler/fordeler.toml";
};

class Daemon {
 public:
  explicit Daemon(DaemonOptions options);
  ~Daemon();
  // The process exit status: 0 after a clean stop, 2 for a configuration error, 1 otherwise.
  int Run();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fordeler
