#include "cli/check_config.h"

#include <filesystem>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/cli_support.h"
#include "config/config.h"
#include "sftp/host_key_check.h"
#include "sftp/host_keys.h"

namespace fordeler::cli {
namespace {

nlohmann::ordered_json ToJson(const std::string& path, const LoadResult& r) {
  nlohmann::ordered_json doc;
  doc["ok"] = r.config != nullptr;
  doc["config"] = path;
  doc["errors"] = nlohmann::ordered_json::array();
  for (const ConfigError& e : r.errors) {
    doc["errors"].push_back(
        {{"file", e.where.file}, {"line", e.where.line}, {"message", e.message}});
  }
  doc["warnings"] = nlohmann::ordered_json::array();
  for (const ConfigError& w : r.warnings) {
    doc["warnings"].push_back(
        {{"file", w.where.file}, {"line", w.where.line}, {"message", w.message}});
  }
  const Config* c = r.config.get();
  doc["accounts"] =
      c ? nlohmann::ordered_json(c->accounts.size()) : nlohmann::ordered_json(nullptr);
  doc["data_areas"] =
      c ? nlohmann::ordered_json(c->data_areas.size()) : nlohmann::ordered_json(nullptr);
  doc["routes"] = c ? nlohmann::ordered_json(c->routes.size()) : nlohmann::ordered_json(nullptr);
  doc["listen"] = c ? nlohmann::ordered_json(c->server.listen) : nlohmann::ordered_json(nullptr);
  return doc;
}

void PrintSummary(const Config& c, std::ostream& out) {
  std::string listen;
  for (const std::string& address : c.server.listen) {
    listen += (listen.empty() ? "" : ", ") + address;
  }
  out << c.path << ": configuration OK\n"
      << "  accounts:   " << c.accounts.size() << "\n"
      << "  data areas: " << c.data_areas.size() << "\n"
      << "  routes:     " << c.routes.size() << "\n"
      << "  listen:     " << listen << "\n";
}

// As the loader names the main file: absolute and normalised, whether it loaded or not.
std::string AbsolutePath(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  return (ec ? std::filesystem::path(path) : absolute).lexically_normal().string();
}

// A host key as fordelerd will judge it, except what depends on whom it runs as (the owner, the
// group allowed to read it): fordelerd checks those at start.
std::string HostKeyProblemForAnyUser(const std::string& path) {
  std::string problem = HostKeyProblem(path);
  return problem.empty() ? HostKeyModeProblem(path) : problem;
}

}  // namespace

int RunCheckConfig(const std::string& config_path, bool json, std::ostream& out,
                   std::ostream& err) {
  LoadResult r = LoadConfig(config_path, LoadOptions{&HostKeyProblemForAnyUser});
  if (json) {
    out << DumpJson(ToJson(r.config ? r.config->path : AbsolutePath(config_path), r), 2) << "\n";
    return r.config ? kExitOk : kExitUsage;
  }
  for (const ConfigError& w : r.warnings) err << w.ToString() << ": warning\n";
  if (r.config) {
    PrintSummary(*r.config, out);
  } else {
    for (const ConfigError& e : r.errors) err << e.ToString() << "\n";
    err << "fordeler: " << r.errors.size() << " configuration error"
        << (r.errors.size() == 1 ? "" : "s") << "\n";
  }
  return r.config ? kExitOk : kExitUsage;
}

Command AddCheckConfigCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "check-config", "Load the configuration as fordelerd would and report every error");
  auto json = std::make_shared<bool>(false);
  app->add_flag("--json", *json, "Print one JSON object on stdout");
  return Command{app, [&global, json] {
                   return RunCheckConfig(global.config_path, *json, std::cout, std::cerr);
                 }};
}

}  // namespace fordeler::cli
