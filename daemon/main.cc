// fordelerd: the fordeler daemon. Reads its configuration, serves SFTP to the configured
// accounts and routes what they send (see docs/architecture.md); runs in the foreground and
// logs to stderr.
#include <malloc.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "daemon/daemon.h"
#include "daemon/log_format.h"

namespace {

constexpr const char* kUsage =
    "usage: fordelerd [--config FILE]\n"
    "  --config FILE  configuration (default /etc/fordeler/fordeler.toml)\n"
    "  --version      print the version and exit\n"
    "  --help         print this help and exit\n";

void SetUpLogging() {
  auto logger = spdlog::stderr_logger_mt("fordelerd");
  // Under systemd, journald adds its own time stamp; the level is enough.
  bool journal = std::getenv("JOURNAL_STREAM") != nullptr;
  logger->set_formatter(fordeler::MakeLogFormatter(!journal));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// glibc gives the free memory at the top of a thread's heap back to the kernel once it passes
// 128 KiB (MADV_DONTNEED), and fordelerd's threads allocate and free about that much per group
// commit and per step: under load the audit writer alone made some 1,700 such calls a second,
// each a TLB flush on every CPU and page faults on the next allocation (docs/performance.md).
// Keeping up to 4 MiB per heap (and serving blocks up to 1 MiB from the heaps, not mmap) ends the
// churn. An environment's own GLIBC_TUNABLES for these take precedence.
void TuneMalloc() {
  const char* tunables = std::getenv("GLIBC_TUNABLES");
  if (tunables != nullptr && std::strstr(tunables, "glibc.malloc.") != nullptr) return;
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  mallopt(M_TRIM_THRESHOLD, 4 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  TuneMalloc();
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
    } else if (arg == "--help" || arg == "-h") {
      std::printf("%s", kUsage);
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
