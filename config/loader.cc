// LoadConfig (config.h): the main file, its includes, and the checks across entries.
//
// Includes: the main file's `include` is an array of glob(3) patterns relative to the main
// file; the files they match are read in order (each pattern's matches sorted), each at most
// once, the main file never again. Included files hold only [[account]], [[data_area]] and
// [[route]]; they do not include further (so there are no cycles). A pattern without wildcards
// must match a file; a pattern with wildcards may match none (an empty conf.d/ is fine).
#include <fcntl.h>
#include <glob.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <set>

#include "config/alerts_settings.h"
#include "config/config.h"
#include "config/entries_parser.h"
#include "config/http_settings.h"
#include "config/settings_parser.h"
#include "config/toml_reader.h"

namespace fordeler {
namespace {

const std::vector<std::string_view> kTopLevelKeys{"include",  "server",  "storage",   "database",
                                                  "delivery", "account", "data_area", "route",
                                                  "http",     "alerts"};

struct IncludedFile {
  std::string path;
  SourceLocation named_at;  // the include pattern that matched it
};

// glob(3)'s error callback has no context pointer; a load runs on one thread.
thread_local std::vector<std::pair<std::string, int>>* glob_errors = nullptr;

int OnGlobError(const char* path, int err) {
  if (glob_errors != nullptr && err != ENOENT && err != ENOTDIR) {
    glob_errors->emplace_back(path, err);
  }
  return 0;
}

Result<std::string> ReadWholeFile(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, path);
  std::string content;
  char buf[16384];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) content.append(buf, static_cast<size_t>(n));
  int err = errno;
  close(fd);
  if (n < 0) return Status::FromErrno(err, path);
  return content;
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// Orders errors by file (in the order files first appear among them: the main file, then its
// includes, as read) and by line within a file, keeping the order found for equal lines. toml++
// hands out a table's keys sorted by name, so the order found is not the order of the file.
void SortErrors(std::vector<ConfigError>* errors) {
  std::vector<std::string> files;
  for (const ConfigError& e : *errors) {
    if (std::find(files.begin(), files.end(), e.where.file) == files.end()) {
      files.push_back(e.where.file);
    }
  }
  auto rank = [&](const ConfigError& e) {
    return std::pair(std::find(files.begin(), files.end(), e.where.file) - files.begin(),
                     e.where.line);
  };
  std::stable_sort(errors->begin(), errors->end(),
                   [&](const ConfigError& a, const ConfigError& b) { return rank(a) < rank(b); });
}

// The one id of `known` that `id` abbreviates as its first parts ("kmd" for "kmd-oekonomi"), or ""
// when there is none or more than one.
std::string Expanded(std::string_view id, const std::vector<std::string_view>& known) {
  std::string found;
  for (std::string_view candidate : known) {
    if (candidate.size() <= id.size() || !candidate.starts_with(id)) continue;
    char next = candidate[id.size()];
    if (next != '-' && next != '_' && next != '.') continue;
    if (!found.empty()) return "";
    found = std::string(candidate);
  }
  return found;
}

class Loader {
 public:
  explicit Loader(const LoadOptions& options) : options_(options) {}
  LoadResult Run(const std::string& path);

 private:
  std::optional<toml::table> ParseFile(const std::string& path, const SourceLocation& named_at);
  void ReadSettings(const toml::table& table, const std::string& file);
  void WarnUnlessExecutable(const std::vector<std::string>& command, const std::string& file,
                            int line);
  std::vector<IncludedFile> ReadIncludes(const toml::table& table, const std::string& file);
  void Glob(const std::string& pattern, const SourceLocation& at, std::vector<IncludedFile>* out);
  void ReadTopLevel(const toml::table& table, const std::string& file, bool main);
  void ReadEntries(const toml::node& node, std::string_view kind, const std::string& file);
  void AddEntry(const toml::table& table, std::string_view kind, const std::string& file);
  void AddDataArea(DataArea area, TableReader& r);
  void CheckReference(const Route& route, int line, std::string_view what, const std::string& id,
                      bool account);
  void CheckRoutes();

  const LoadOptions& options_;
  ErrorList errors_;
  ErrorList warnings_;
  bool unreadable_file_ = false;  // a file could not be read or parsed
  Config config_;
  std::vector<RouteLines> route_lines_;  // parallel to config_.routes
};

LoadResult Loader::Run(const std::string& path) {
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  config_.path = (ec ? std::filesystem::path(path) : absolute).lexically_normal().string();
  if (auto main = ParseFile(config_.path, SourceLocation{config_.path, 0})) {
    ReadSettings(*main, config_.path);
    std::vector<IncludedFile> includes = ReadIncludes(*main, config_.path);
    ReadTopLevel(*main, config_.path, true);
    for (const IncludedFile& inc : includes) {
      if (auto table = ParseFile(inc.path, inc.named_at)) ReadTopLevel(*table, inc.path, false);
    }
    // A file that could not be read may hold the accounts and data areas routes name: checking
    // the references without it would report each of them as unknown, after the real error.
    if (!unreadable_file_) CheckRoutes();
  }
  LoadResult result;
  result.warnings = warnings_.Take();
  if (errors_.empty()) {
    result.config = std::make_shared<const Config>(std::move(config_));
  } else {
    result.errors = errors_.Take();
    SortErrors(&result.errors);
  }
  return result;
}

std::optional<toml::table> Loader::ParseFile(const std::string& path,
                                             const SourceLocation& named_at) {
  auto content = ReadWholeFile(path);
  unreadable_file_ = unreadable_file_ || !content.ok();
  if (!content.ok()) {
    errors_.Add(named_at.file, named_at.line,
                "cannot read " + path + ": " + std::strerror(content.status().os_errno()));
    return std::nullopt;
  }
  try {
    return toml::parse(*content, path);
  } catch (const toml::parse_error& e) {
    unreadable_file_ = true;
    errors_.Add(path, static_cast<int>(e.source().begin.line),
                "TOML syntax error: " + std::string(e.description()));
    return std::nullopt;
  }
}

void Loader::ReadSettings(const toml::table& table, const std::string& file) {
  bool root_given = false, path_given = false, host_keys_given = false;
  int server_line = 0;
  config_.database.where = config_.storage.where = {file, 0};
  for (std::string_view name : {"server", "storage", "database", "delivery", "http", "alerts"}) {
    const toml::node* node = table.get(name);
    if (node == nullptr) continue;
    if (!node->is_table()) {
      errors_.Add(file, LineOf(*node),
                  std::string(name) + " must be a table ([" + std::string(name) + "]), not " +
                      TypeName(*node));
      continue;
    }
    TableReader r(*node->as_table(), file, "[" + std::string(name) + "]", &errors_);
    if (name == "server") {
      ReadServer(r, &config_.server, options_.host_key_problem);
      host_keys_given = r.Has("host_keys");
      server_line = LineOf(*node);
    } else if (name == "storage") {
      ReadStorage(r, &config_.storage);
      root_given = r.Has("root");
    } else if (name == "database") {
      ReadDatabase(r, &config_.database);
      path_given = r.Has("path");
    } else if (name == "http") {
      ReadHttp(r, &config_.http);
    } else if (name == "alerts") {
      ReadAlerts(r, &config_.alerts);
      WarnUnlessExecutable(config_.alerts.on_alert, file, r.Line("on_alert"));
    } else {
      ReadDelivery(r, &config_.delivery);
    }
  }
  if (options_.host_key_problem && !host_keys_given) {
    errors_.Add(file, server_line,
                "[server] host_keys: fordelerd needs at least one host key (e.g. ssh-keygen -t "
                "ed25519 -N '' -f /etc/fordeler/keys/ssh_host_ed25519_key)");
  }
  if (root_given && !path_given) {
    config_.database.path =
        (std::filesystem::path(config_.storage.root) / "audit.db").lexically_normal().string();
    config_.database.where = config_.storage.where;
  }
}

// The alert command may be installed after the configuration is checked (so not an error), but
// until it is, every alert is only logged.
void Loader::WarnUnlessExecutable(const std::vector<std::string>& command, const std::string& file,
                                  int line) {
  if (command.empty()) return;
  struct stat st;
  std::string why;
  if (stat(command[0].c_str(), &st) != 0) {
    why = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    why = "not a file";
  } else if (access(command[0].c_str(), X_OK) != 0) {
    why = "not executable";
  }
  if (why.empty()) return;
  warnings_.Add(file, line,
                "[alerts] on_alert: cannot run " + command[0] + " (" + why +
                    "); until it can be run, alerts are only logged");
}

std::vector<IncludedFile> Loader::ReadIncludes(const toml::table& table, const std::string& file) {
  std::vector<IncludedFile> files;
  TableReader r(table, file, "", &errors_);
  std::vector<std::string> patterns;
  std::vector<int> lines;
  if (!r.StringArray("include", &patterns, &lines)) return files;
  for (size_t i = 0; i < patterns.size(); ++i) {
    SourceLocation at{file, lines[i]};
    if (patterns[i].empty()) {
      errors_.Add(file, lines[i], "include: an empty pattern");
      continue;
    }
    Glob(ResolvePath(file, patterns[i]), at, &files);
  }
  return files;
}

void Loader::Glob(const std::string& pattern, const SourceLocation& at,
                  std::vector<IncludedFile>* out) {
  std::vector<std::pair<std::string, int>> failures;
  glob_errors = &failures;
  glob_t g{};
  int rc = glob(pattern.c_str(), 0, OnGlobError, &g);
  glob_errors = nullptr;
  for (const auto& [path, err] : failures) {
    errors_.Add(at.file, at.line, "include: cannot read " + path + ": " + std::strerror(err));
  }
  bool wildcard = pattern.find_first_of("*?[") != std::string::npos;
  if (rc == GLOB_NOMATCH && !wildcard) {
    errors_.Add(at.file, at.line, "include: cannot read " + pattern + ": " + std::strerror(ENOENT));
  } else if (rc == GLOB_NOMATCH) {
    std::filesystem::path folder = std::filesystem::path(pattern).parent_path();
    std::error_code ec;
    bool folder_missing = folder.string().find_first_of("*?[") == std::string::npos &&
                          !std::filesystem::is_directory(folder, ec);
    warnings_.Add(at.file, at.line,
                  "include: " + pattern + " matches no file" +
                      (folder_missing ? " (there is no folder " + folder.string() + ")" : ""));
  } else if (rc != 0 && rc != GLOB_NOMATCH) {
    errors_.Add(at.file, at.line, "include: " + pattern + ": glob failed");
  }
  for (size_t i = 0; rc == 0 && i < g.gl_pathc; ++i) {
    std::string path = std::filesystem::path(g.gl_pathv[i]).lexically_normal().string();
    bool seen = path == config_.path ||
                std::any_of(out->begin(), out->end(), [&](auto& f) { return f.path == path; });
    if (!seen) out->push_back(IncludedFile{path, at});
  }
  globfree(&g);
}

void Loader::ReadTopLevel(const toml::table& table, const std::string& file, bool main) {
  for (const auto& [key, node] : table) {
    std::string_view name = key.str();
    int line = LineOf(key);
    if (name == "account" || name == "data_area" || name == "route") {
      ReadEntries(node, name, file);
    } else if (std::find(kTopLevelKeys.begin(), kTopLevelKeys.end(), name) == kTopLevelKeys.end()) {
      std::string message = "unknown key " + Quote(name);
      std::string suggestion = ClosestKey(name, kTopLevelKeys);
      if (!suggestion.empty()) message += " (did you mean " + Quote(suggestion) + "?)";
      errors_.Add(file, line, message);
    } else if (!main && name == "include") {
      errors_.Add(file, line,
                  "include may stand only in the main file " + config_.path +
                      " (included files do not include others)");
    } else if (!main) {
      errors_.Add(file, line,
                  "[" + std::string(name) + "] may stand only in the main file " + config_.path +
                      "; included files hold only [[account]], [[data_area]] and [[route]]");
    }
  }
}

void Loader::ReadEntries(const toml::node& node, std::string_view kind, const std::string& file) {
  std::string wanted = " must be an array of tables: write [[" + std::string(kind) + "]]";
  if (!node.is_array()) {
    errors_.Add(file, LineOf(node), std::string(kind) + wanted + ", not " + TypeName(node));
    return;
  }
  for (const toml::node& element : *node.as_array()) {
    if (!element.is_table()) {
      errors_.Add(file, LineOf(element),
                  std::string(kind) + wanted + ": an element is " + TypeName(element));
      continue;
    }
    AddEntry(*element.as_table(), kind, file);
  }
}

void Loader::AddEntry(const toml::table& table, std::string_view kind, const std::string& file) {
  TableReader r(table, file, "[[" + std::string(kind) + "]]", &errors_);
  if (kind == "account") {
    Account account;
    if (!ReadAccount(r, &account)) return;
    if (const Account* first = config_.FindAccount(account.id)) {
      r.Error("id", "account id " + Quote(account.id) + " is defined twice (first at " +
                        first->where.ToString() + ")");
      return;
    }
    config_.accounts.push_back(std::move(account));
  } else if (kind == "data_area") {
    DataArea area;
    if (ReadDataArea(r, &area)) AddDataArea(std::move(area), r);
  } else {
    Route route;
    RouteLines lines;
    if (!ReadRoute(r, &route, &lines)) return;
    auto first = std::find_if(config_.routes.begin(), config_.routes.end(),
                              [&](const Route& other) { return other.id == route.id; });
    if (first != config_.routes.end()) {
      r.Error("id", "route id " + Quote(route.id) + " is defined twice (first at " +
                        first->where.ToString() + ")");
      return;
    }
    config_.routes.push_back(std::move(route));
    route_lines_.push_back(std::move(lines));
  }
}

void Loader::AddDataArea(DataArea area, TableReader& reader) {
  if (const DataArea* first = config_.FindDataArea(area.id)) {
    reader.Error("id", "data area id " + Quote(area.id) + " is defined twice (first at " +
                           first->where.ToString() + ")");
    return;
  }
  for (const DataArea& other : config_.data_areas) {
    if (!area.deliver_service.empty() && other.deliver_service == area.deliver_service) {
      reader.Error("deliver_service", Quote(area.deliver_service) + " is already data area " +
                                          Quote(other.id) + "'s deliver service (at " +
                                          other.where.ToString() + ")");
    }
    if (!area.fetch_service.empty() && other.fetch_service == area.fetch_service) {
      reader.Error("fetch_service", Quote(area.fetch_service) + " is already data area " +
                                        Quote(other.id) + "'s fetch service (at " +
                                        other.where.ToString() + ")");
    }
  }
  config_.data_areas.push_back(std::move(area));
}

void Loader::CheckReference(const Route& route, int line, std::string_view what,
                            const std::string& id, bool account) {
  if (id.empty()) return;  // missing: reported already
  if (account ? config_.FindAccount(id) != nullptr : config_.FindDataArea(id) != nullptr) return;
  std::vector<std::string_view> known;
  if (account) {
    for (const Account& a : config_.accounts) known.push_back(a.id);
  } else {
    for (const DataArea& d : config_.data_areas) known.push_back(d.id);
  }
  std::string message = "route " + Quote(route.id) + " " + std::string(what) + ": " + Quote(id) +
                        (account ? " is no account" : " is no data area");
  std::string suggestion = ClosestKey(id, known);
  if (suggestion.empty()) suggestion = Expanded(id, known);
  if (!suggestion.empty()) message += " (did you mean " + Quote(suggestion) + "?)";
  errors_.Add(route.where.file, line, message);
}

void Loader::CheckRoutes() {
  for (size_t i = 0; i < config_.routes.size(); ++i) {
    const Route& route = config_.routes[i];
    const RouteLines& lines = route_lines_[i];
    CheckReference(route, lines.data_area, "data_area", route.data_area, false);
    CheckReference(route, lines.sender, "sender", route.sender, true);
    for (size_t j = 0; j < route.recipients.size(); ++j) {
      CheckReference(route, lines.recipients[j], "recipient", route.recipients[j], true);
    }
  }
}

}  // namespace

LoadResult LoadConfig(const std::string& path, const LoadOptions& options) {
  return Loader(options).Run(path);
}

}  // namespace fordeler
