// fordelerd: the fordeler daemon. Reads its configuration, serves SFTP to the configured
// accounts and routes what they send (see docs/architecture.md); runs in the foreground and
// logs to stderr.
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "daemon/daemon.h"

namespace {

constexpr const char* kUsage =
    "usage: fordelerd [--config FILE]\n"
    "  --config FILE  configuration (default /etc/fordeler/fordeler.toml)\n"
    "  --version      print the version and exit\n";

void SetUpLogging() {
  auto logger = spdlog::stderr_logger_mt("fordelerd");
  // Under systemd, journald adds its own time stamp; the level is enough.
  bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  logger->set_pattern(journal ? "%l %v" : "%Y-%m-%dT%H:%M:%S.%eZ %l %v",
                      spdlog::pattern_time_type::utc);
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int main(int argc, char** argv) {
  fordeler::DaemonOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--config" && i + 1 < argc) {
      options.config_path = argv[++i];
    } else if (arg.rfind("--config=", 0) == 0) {
      options.config_path = arg.substr(9);
    } else if (arg == "--version") {
      std::printf("fordelerd %s\n", FORDELER_VERSION);
      return 0;
    } else {
      std::fprintf(stderr, "fordelerd: unknown argument \"%s\"\n%s", arg.c_str(), kUsage);
      return 2;
    }
  }
  SetUpLogging();
  fordeler::Daemon daemon(options);
  return daemon.Run();
}
