#include "cli/operator_commands.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <memory>

#include "cli/control_client.h"
#include "core/error_codes.h"
#include "core/names.h"
#include "core/uuid.h"

namespace fordeler::cli {
namespace {

struct Args {
  std::string uuid;
  std::string recipient;
  bool json = false;
};

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Checks the UUID, loads the configuration and asks the daemon.
int Ask(const GlobalOptions& global, const char* command, const Args& args) {
  Io io{std::cout, std::cerr, StdoutIsTerminal()};
  if (!IsUuid(args.uuid)) {
    io.err << "fordeler " << command << ": \"" << args.uuid << "\" is not a FileTransferUUID\n";
    return kExitUsage;
  }
  auto config = LoadConfigOrReport(global.config_path, io.err);
  if (!config) return kExitUsage;
  Json request = {{"command", command}, {"uuid", Lower(args.uuid)}};
  if (!args.recipient.empty()) request["recipient"] = args.recipient;
  return AskDaemon(*config, request, args.json, io);
}

CLI::App* AddUuidCommand(CLI::App& parent, const char* name, const char* help, Args* args) {
  CLI::App* app = parent.add_subcommand(name, help);
  app->add_option("uuid", args->uuid, "FileTransferUUID")->required();
  AddJsonFlag(app, &args->json);
  return app;
}

std::vector<std::string> FilesIn(const std::filesystem::path& dir) {
  std::vector<std::string> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    files.push_back(entry.path().filename().string());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

int AskDaemon(const Config& config, const Json& request, bool json, const Io& io) {
  auto reply = CallDaemon(ControlSocketPath(config), request);
  if (!reply.ok()) {
    io.err << "fordeler: " << reply.status().message() << "\n";
    return kExitBadNews;
  }
  bool ok = reply->value("ok", false);
  std::string message = reply->value("message", "");
  if (json) {
    io.out << DumpJson(*reply, 2) << "\n";
  } else if (ok) {
    io.out << ShowableText(message) << "\n";
  } else {
    // The daemon's command names; `quarantine release` and `quarantine purge` are "release" and
    // "purge" on the socket.
    std::string command = request.value("command", "");
    if (command == "release" || command == "purge") command = "quarantine " + command;
    io.err << "fordeler " << command << ": " << ShowableText(message) << "\n";
  }
  if (ok) return kExitOk;
  return reply->value("error", "") == "bad_request" ? kExitUsage : kExitBadNews;
}

int ListQuarantine(AuditStore& audit, const std::string& storage_root, bool json, const Io& io) {
  TransferFilter filter;
  filter.state = TransferState::kRejected;
  filter.limit = -1;
  size_t rows = 0;
  io.out << (json ? "[" : "");
  Status s = audit.ListTransfers(filter, [&](const TransferRecord& t) {
    std::filesystem::path folder = std::filesystem::path(storage_root) / "quarantine" / t.uuid;
    std::error_code ec;
    if (!std::filesystem::is_directory(folder, ec)) return true;
    std::vector<std::string> files = FilesIn(folder);
    std::string name(ErrorName(ErrorCodeFromInt(t.error_code)));
    if (json) {
      Json row = {{"uuid", t.uuid},
                  {"sender", t.sender},
                  {"name", t.name},
                  {"error_code", t.error_code},
                  {"error_name", name},
                  {"error_description", t.error_description},
                  {"received_at", FormatTime(t.received_at)},
                  {"folder", folder.string()},
                  {"files", files}};
      io.out << (rows == 0 ? "\n  " : ",\n  ") << DumpJson(row);
    } else {
      io.out << t.uuid << "  " << TableTime(t.received_at) << "  " << t.error_code << " " << name
             << "\n  " << ShowableText(t.sender + " → " + t.name + ": " + t.error_description)
             << "\n";
    }
    ++rows;
    return true;
  });
  if (json) io.out << (rows == 0 ? "]\n" : "\n]\n");
  if (!json && rows == 0 && s.ok()) io.out << "quarantine is empty\n";
  if (!s.ok()) {
    io.err << "fordeler: reading the audit log failed: " << s.message() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

Command AddRetryCommand(CLI::App& parent, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  CLI::App* app =
      AddUuidCommand(parent, "retry", "Run an unfinished transfer's next step now", args.get());
  return Command{app, [&global, args] { return Ask(global, "retry", *args); }};
}

Command AddRecallCommand(CLI::App& parent, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  CLI::App* app =
      AddUuidCommand(parent, "recall", "Withdraw deliveries not yet picked up", args.get());
  app->add_option("--recipient", args->recipient, "Only this recipient's delivery");
  return Command{app, [&global, args] { return Ask(global, "recall", *args); }};
}

Command AddRedeliverCommand(CLI::App& parent, const GlobalOptions& global) {
  auto args = std::make_shared<Args>();
  CLI::App* app = AddUuidCommand(parent, "redeliver", "Place a transfer again in a recipient's /IN",
                                 args.get());
  app->add_option("--recipient", args->recipient, "The recipient")->required();
  return Command{app, [&global, args] { return Ask(global, "redeliver", *args); }};
}

Command AddQuarantineCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("quarantine", "Rejected pairs kept for the operator");
  app->require_subcommand(1);
  auto list_json = std::make_shared<bool>(false);
  CLI::App* list = app->add_subcommand("list", "Rejected transfers still in quarantine");
  AddJsonFlag(list, list_json.get());
  auto release = std::make_shared<Args>();
  CLI::App* release_app = AddUuidCommand(
      *app, "release", "Put a rejected pair back into the sender's /OUT to be routed again",
      release.get());
  auto purge = std::make_shared<Args>();
  AddUuidCommand(*app, "purge", "Delete a rejected pair's quarantine folder", purge.get());
  return Command{app, [&global, list, list_json, release_app, release, purge] {
                   if (release_app->parsed()) return Ask(global, "release", *release);
                   if (!list->parsed()) return Ask(global, "purge", *purge);
                   Io io{std::cout, std::cerr, StdoutIsTerminal()};
                   auto config = LoadConfigOrReport(global.config_path, io.err);
                   if (!config) return static_cast<int>(kExitUsage);
                   auto audit = OpenAuditOrReport(*config, io.err);
                   if (!audit) return static_cast<int>(kExitUsage);
                   return ListQuarantine(*audit, config->storage.root, *list_json, io);
                 }};
}

}  // namespace fordeler::cli
