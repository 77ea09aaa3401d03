#include "cli/explain_command.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <utility>

#include "core/names.h"
#include "metadata/trigger_parser.h"
#include "routing/trigger_checks.h"

namespace fordeler::cli {
namespace {

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

Json ExplanationJson(const Config& config, const std::string& path, const std::string& account,
                     const Explanation& e) {
  const Resolution& r = e.resolution;
  const DataArea* area = e.accepted ? config.FindDataArea(r.data_area) : nullptr;
  int code = static_cast<int>(e.rejection.code);
  return {
      {"accepted", e.accepted},
      {"trigger_file", path},
      {"account", account},
      {"file_name", e.file_name.empty() ? Json(nullptr) : Json(e.file_name)},
      {"name_checked", e.name_checked},
      {"data_area", e.accepted ? Json(r.data_area) : Json(nullptr)},
      {"data_area_name", area ? Json(area->name) : Json(nullptr)},
      {"authority", e.accepted && !r.authority.empty() ? Json(r.authority) : Json(nullptr)},
      {"routes", e.accepted ? Json(r.route_ids) : Json::array()},
      {"recipients", e.accepted ? Json(r.recipients) : Json::array()},
      {"error_code", e.accepted ? Json(nullptr) : Json(code)},
      {"error_name", e.accepted ? Json(nullptr) : Json(std::string(ErrorName(e.rejection.code)))},
      {"error_description", e.accepted ? Json(nullptr) : Json(e.rejection.description)}};
}

void PrintExplanation(const Config& config, const std::string& account, const Explanation& e,
                      const Io& io) {
  const char* unchecked =
      "  (FileName is not compared with the file's own name: it is not called <name>.trigger)\n";
  if (!e.accepted) {
    io.out << "REJECTED: " << static_cast<int>(e.rejection.code) << " "
           << ErrorName(e.rejection.code) << "\n  " << ShowableText(e.rejection.description)
           << "\n";
    if (!e.name_checked && !e.file_name.empty()) io.out << unchecked;
    return;
  }
  const Resolution& r = e.resolution;
  const DataArea* area = config.FindDataArea(r.data_area);
  io.out << "ACCEPTED: " << ShowableText(e.file_name) << " from " << account << "\n"
         << "  data area:  " << r.data_area << (area ? " (" + area->name + ")" : "") << "\n"
         << "  authority:  " << (r.authority.empty() ? "-" : ShowableText(r.authority)) << "\n"
         << "  routes:     " << Join(r.route_ids) << "\n"
         << "  recipients: " << Join(r.recipients) << "\n"
         << "  (SizeInBytes and Sha256 are checked against the data file when it arrives)\n";
  if (!e.name_checked) io.out << unchecked;
}

}  // namespace

Explanation ExplainTrigger(const Config& config, const std::string& account,
                           const std::string& trigger_name, const std::string& bytes) {
  Explanation e;
  Trigger trigger;
  if (!ParseTrigger(bytes, &trigger, &e.rejection)) return e;
  e.file_name = trigger.file_name;
  // A sample trigger sent by a vendor being set up is often called trigger.xml: its FileName
  // can only be compared with a name of the form <name>.trigger, and is resolved either way.
  e.name_checked = IsTriggerName(trigger_name);
  std::string own = trigger_name;
  if (e.name_checked) own.resize(own.size() - kTriggerSuffix.size());
  if (!e.name_checked) own = trigger.file_name;
  if (auto why = CheckFileName(trigger, own)) {
    e.rejection = std::move(*why);
    return e;
  }
  e.accepted = Resolve(config, account, trigger, &e.resolution, &e.rejection);
  if (!e.accepted) return e;
  if (auto why = CheckAnnouncedSize(trigger, config.delivery.max_file_size)) {
    e.accepted = false;
    e.rejection = std::move(*why);
  }
  return e;
}

int RunExplain(const std::string& config_path, const std::string& trigger_path,
               const std::string& account, bool json, const Io& io) {
  auto config = LoadConfigOrReport(config_path, io.err);
  if (!config) return kExitUsage;
  if (config->FindAccount(account) == nullptr) {
    io.err << "fordeler explain: --as \"" << account << "\" is no configured account\n";
    return kExitUsage;
  }
  std::ifstream in(trigger_path, std::ios::binary);
  int error = in ? 0 : errno;
  std::string bytes;
  bytes.resize(kMaxTriggerBytes + 1);  // one more than allowed: "too large" is detected
  if (in) {
    errno = 0;
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!in && !in.eof()) error = errno != 0 ? errno : EIO;  // a folder opens, then fails here
  }
  if (error != 0) {
    io.err << "fordeler explain: cannot read " << trigger_path << ": " << std::strerror(error)
           << "\n";
    return kExitUsage;
  }
  bytes.resize(static_cast<size_t>(in.gcount()));
  std::string name = trigger_path.substr(trigger_path.find_last_of('/') + 1);
  Explanation e = ExplainTrigger(*config, account, name, bytes);
  if (json) {
    io.out << DumpJson(ExplanationJson(*config, trigger_path, account, e), 2) << "\n";
  } else {
    PrintExplanation(*config, account, e, io);
  }
  return e.accepted ? kExitOk : kExitBadNews;
}

Command AddExplainCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand(
      "explain", "Resolve a trigger file against the configuration without sending anything");
  auto path = std::make_shared<std::string>();
  auto account = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app->add_option("trigger", *path, "The trigger file")->required();
  app->add_option("--as", *account, "The account that would upload it")->required();
  AddJsonFlag(app, json.get());
  return Command{app, [&global, path, account, json] {
                   return RunExplain(global.config_path, *path, *account, *json,
                                     Io{std::cout, std::cerr, StdoutIsTerminal()});
                 }};
}

}  // namespace fordeler::cli
