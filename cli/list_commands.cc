#include "cli/list_commands.h"

#include <iostream>
#include <memory>

#include "cli/table.h"

namespace fordeler::cli {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }
Json OrNull(const std::string& s) { return s.empty() ? Json(nullptr) : Json(s); }

Json KeysJson(const Account& a) {
  Json keys = Json::array();
  for (const AuthorizedKey& k : a.keys) {
    keys.push_back({{"type", k.type},
                    {"bits", k.bits},
                    {"fingerprint", k.fingerprint},
                    {"comment", k.comment}});
  }
  return keys;
}

}  // namespace

void PrintRoutes(const Config& config, bool json, const Io& io) {
  if (json) {
    Json doc = Json::array();
    for (const Route& r : config.routes) {
      doc.push_back({{"id", r.id},
                     {"data_area", r.data_area},
                     {"sender", r.sender},
                     {"authorities", r.authorities},
                     {"recipients", r.recipients},
                     {"defined_at", r.where.ToString()}});
    }
    io.out << DumpJson(doc, 2) << "\n";
    return;
  }
  Table table({{"ROUTE", false, true, true},
               {"DATA AREA", false, true},
               {"SENDER", false, true},
               {"RECIPIENTS", false, true}});
  for (const Route& r : config.routes) {
    table.AddRow({r.id, r.data_area, r.sender, Join(r.recipients)});
    table.AddNote("authorities: " + Join(r.authorities));
  }
  if (table.empty()) {
    io.out << "no routes configured\n";
  } else {
    table.Render(io.out, kTableWidth, io.color);
  }
}

Status PrintAccounts(const Config& config, AuditStore* audit, bool json, const Io& io) {
  std::vector<std::optional<TimePoint>> logins;
  for (const Account& a : config.accounts) {
    std::optional<TimePoint> last;
    if (audit != nullptr) {
      auto found = audit->LastLogin(a.id);
      if (!found.ok()) return found.status();
      last = *found;
    }
    logins.push_back(last);
  }
  if (json) {
    Json doc = Json::array();
    for (size_t i = 0; i < config.accounts.size(); ++i) {
      const Account& a = config.accounts[i];
      doc.push_back({{"id", a.id},
                     {"authority", OrNull(a.authority)},
                     {"it_system", OrNull(a.it_system)},
                     {"keys", KeysJson(a)},
                     {"last_login", JsonTime(logins[i])}});
    }
    io.out << DumpJson(doc, 2) << "\n";
    return Status::Ok();
  }
  Table table({{"ACCOUNT", false, true},
               {"AUTHORITY", false, true},
               {"IT SYSTEM", false, true},
               {"KEYS", true, false},
               {"LAST LOGIN", false, false}});
  for (size_t i = 0; i < config.accounts.size(); ++i) {
    const Account& a = config.accounts[i];
    table.AddRow({a.id, OrDash(a.authority), OrDash(a.it_system), std::to_string(a.keys.size()),
                  TableTime(logins[i])});
    for (const AuthorizedKey& k : a.keys) {
      table.AddNote(k.fingerprint + " " + k.type + (k.comment.empty() ? "" : " " + k.comment));
    }
  }
  if (table.empty()) {
    io.out << "no accounts configured\n";
  } else {
    table.Render(io.out, kTableWidth, io.color);
  }
  return Status::Ok();
}

int RunRoutes(const std::string& config_path, bool json, const Io& io) {
  auto config = LoadConfigOrReport(config_path, io.err);
  if (!config) return kExitUsage;
  PrintRoutes(*config, json, io);
  return kExitOk;
}

int RunAccounts(const std::string& config_path, bool json, const Io& io) {
  auto config = LoadConfigOrReport(config_path, io.err);
  if (!config) return kExitUsage;
  auto audit = OpenAuditOrReport(*config, io.err);
  if (!audit) return kExitUsage;
  Status s = PrintAccounts(*config, audit.get(), json, io);
  if (!s.ok()) {
    io.err << "fordeler: reading the audit log failed: " << s.message() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

Command AddRoutesCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("routes", "List the configured routes");
  auto json = std::make_shared<bool>(false);
  AddJsonFlag(app, json.get());
  return Command{
      app, [&global, json] {
        return RunRoutes(global.config_path, *json, Io{std::cout, std::cerr, StdoutIsTerminal()});
      }};
}

Command AddAccountsCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "accounts", "List the accounts: authority, IT system, key fingerprints, last login");
  auto json = std::make_shared<bool>(false);
  AddJsonFlag(app, json.get());
  return Command{
      app, [&global, json] {
        return RunAccounts(global.config_path, *json, Io{std::cout, std::cerr, StdoutIsTerminal()});
      }};
}

}  // namespace fordeler::cli
