#include "config/alerts_settings.h"

namespace fordeler {
namespace {

void ReadCommand(TableReader& r, AlertsConfig* out) {
  std::vector<std::string> argv;
  std::vector<int> lines;
  if (!r.StringArray("on_alert", &argv, &lines)) return;
  if (argv.empty()) return;  // [] = no command, as if absent
  if (argv[0].empty() || argv[0].front() != '/') {
    r.ErrorAt(lines[0], "on_alert: the program \"" + argv[0] +
                            "\" must be an absolute path (it is run without a shell)");
    return;
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos) {
      r.ErrorAt(lines[i], "on_alert: an argument holds a NUL character");
      return;
    }
  }
  out->on_alert = std::move(argv);
}

}  // namespace

void ReadAlerts(TableReader& r, AlertsConfig* out) {
  r.CheckKeys({"on_alert", "timeout", "not_picked_up_after", "check_interval"});
  ReadCommand(r, out);
  r.Duration("timeout", &out->timeout);
  std::chrono::milliseconds after{0};
  if (r.Duration("not_picked_up_after", &after)) out->not_picked_up_after = after;
  r.Duration("check_interval", &out->check_interval);
}

}  // namespace fordeler
