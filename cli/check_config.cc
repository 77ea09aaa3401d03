#include "cli/check_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_support.h"
#include "config/config.h"
#include "core/env.h"
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

// One folder fordelerd uses beneath the storage root, as it is now: what would make fordelerd
// refuse to start (or a reload be refused), or "" when nothing. A missing folder is fine (it is
// made at start).
std::string FolderProblem(int root_fd, const std::string& root, const std::string& path) {
  struct stat st;
  if (lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? "" : path + ": " + std::strerror(errno);
  }
  if (S_ISLNK(st.st_mode)) return path + " is a symlink: fordelerd follows none";
  if (!S_ISDIR(st.st_mode)) return path + " is not a folder";
  int fd = open(path.c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return path + ": " + std::strerror(errno);
  Status same = CheckSameFilesystem(root_fd, root, fd, path);  // as fordelerd checks it
  close(fd);
  return same.ok() ? "" : same.message() + ", so fordelerd would not start";
}

// The storage as it is now, checked as fordelerd checks it at start and at a reload
// (docs/operations.md, "Storage layout"): its own folders and the accounts' folders that exist
// must be folders on the storage root's file system. With no root yet nothing is checked; without
// access to it (check-config run as another user), a warning says so.
void CheckStorageLayout(const Config& c, LoadResult* r) {
  const std::string& root = c.storage.root;
  const SourceLocation& file = c.storage.where;
  struct stat root_st;
  if (stat(root.c_str(), &root_st) != 0) {
    if (errno == ENOENT) return;  // made at start, with everything in it
    r->warnings.push_back(
        {file, "storage root " + root + " not checked: " + std::string(std::strerror(errno))});
    return;
  }
  int root_fd = open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (root_fd < 0) {
    r->errors.push_back({file, "storage root " + root + " is not a folder"});
    return;
  }
  for (const char* own : {"spool", "staging", "quarantine", "accounts"}) {
    std::string problem = FolderProblem(root_fd, root, root + "/" + own);
    if (!problem.empty()) r->errors.push_back({file, problem});
  }
  for (const Account& a : c.accounts) {
    const std::string jail = root + "/accounts/" + a.id;
    for (const std::string& path : {jail, jail + "/IN", jail + "/OUT"}) {
      std::string problem = FolderProblem(root_fd, root, path);
      if (problem.empty()) continue;
      r->errors.push_back({a.where, "account " + a.id + ": " + problem});
      break;  // the folders beneath one that is wrong are not looked at
    }
  }
  close(root_fd);
}

// True when `folder` is the storage root or one of the folders above it: fordelerd makes those
// at start (create_directories). Both are absolute and normalised.
bool MadeWithRoot(const std::string& folder, const std::string& root) {
  if (folder == root || folder == "/") return true;
  return root.size() > folder.size() && root.compare(0, folder.size(), folder) == 0 &&
         root[folder.size()] == '/';
}

// The database's folder as fordelerd finds it at start: it makes the storage root, but not a
// folder elsewhere for the database, and refuses to start without one. The storage root's own
// problems are CheckStorageLayout's.
void CheckDatabaseFolder(const Config& c, LoadResult* r) {
  const std::string folder = std::filesystem::path(c.database.path).parent_path().string();
  if (MadeWithRoot(folder, c.storage.root)) return;
  const std::string label = "[database] path: ";
  struct stat st;
  if (stat(folder.c_str(), &st) == 0) {
    if (!S_ISDIR(st.st_mode)) {
      r->errors.push_back({c.database.where, label + folder + " is not a folder"});
    }
    return;
  }
  if (errno == ENOENT || errno == ENOTDIR) {
    r->errors.push_back({c.database.where, label + "the folder " + folder +
                                               " does not exist (fordelerd makes the storage "
                                               "root only), so fordelerd would not start"});
    return;
  }
  r->warnings.push_back(
      {c.database.where, label + "the folder " + folder + " not checked: " + std::strerror(errno)});
}

}  // namespace

int RunCheckConfig(const std::string& config_path, bool json, std::ostream& out,
                   std::ostream& err) {
  LoadResult r = LoadConfig(config_path, LoadOptions{&HostKeyProblemForAnyUser});
  if (r.config) {
    CheckStorageLayout(*r.config, &r);
    CheckDatabaseFolder(*r.config, &r);
    if (!r.errors.empty()) r.config.reset();  // reported as a configuration that will not start
  }
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
