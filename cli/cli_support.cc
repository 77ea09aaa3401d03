#include "cli/cli_support.h"

#include <unistd.h>

#include "core/env.h"

namespace fordeler::cli {

std::shared_ptr<const Config> LoadConfigOrReport(const std::string& path, std::ostream& err) {
  LoadResult r = LoadConfig(path);
  if (r.config) return r.config;
  for (const ConfigError& e : r.errors) err << e.ToString() << "\n";
  err << "fordeler: the configuration " << path << " has errors (see `fordeler check-config`)\n";
  return nullptr;
}

std::unique_ptr<AuditStore> OpenAuditOrReport(const Config& config, std::ostream& err) {
  AuditStore::Options options;
  options.read_only = true;
  options.busy_timeout_ms = 2000;
  auto store = AuditStore::Open(config.database.path, Env::Default(), options);
  if (store.ok()) return std::move(store).value();
  const std::string& why = store.status().message();
  err << "fordeler: cannot open the audit log: " << why;
  if (why.find(config.database.path) == std::string::npos)
    err << " (" << config.database.path << ")";
  err << "\n";
  return nullptr;
}

std::string TableTime(std::optional<TimePoint> t) {
  if (!t) return "-";
  std::string s = FormatTime(*t);  // 2026-11-22T02:00:05.123Z
  return s.substr(0, 10) + " " + s.substr(11, 8) + "Z";
}

Json JsonTime(std::optional<TimePoint> t) { return t ? Json(FormatTime(*t)) : Json(nullptr); }

Json JsonText(const std::optional<std::string>& s) { return s ? Json(*s) : Json(nullptr); }

std::string DumpJson(const Json& doc, int indent) {
  return doc.dump(indent, ' ', false, Json::error_handler_t::replace);
}

void AddJsonFlag(CLI::App* app, bool* json) {
  app->add_flag("--json", *json, "Print one JSON document on stdout");
}

bool StdoutIsTerminal() { return isatty(STDOUT_FILENO) == 1; }

}  // namespace fordeler::cli
