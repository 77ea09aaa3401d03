#include "cli/transfers_command.h"

#include <algorithm>
#include <iostream>
#include <memory>

#include "cli/table.h"
#include "config/config.h"
#include "core/names.h"
#include "core/units.h"

namespace fordeler::cli {
namespace {

Json CodeJson(int code) { return code == 0 ? Json(nullptr) : Json(code); }

std::string Padded(std::string s, size_t width) {
  size_t w = DisplayWidth(s);
  if (w < width) s.append(width - w, ' ');
  return s;
}

std::string RightAligned(const std::string& s, size_t width) {
  size_t w = DisplayWidth(s);
  return w < width ? std::string(width - w, ' ') + s : s;
}

void PrintTransferRow(const TransferRecord& t, std::ostream& out) {
  out << Padded(t.uuid, 36) << "  " << Padded(std::string(ToString(t.state)), 10) << "  "
      << RightAligned(t.error_code ? std::to_string(t.error_code) : "-", 4) << "  "
      << TableTime(t.received_at) << "\n";
  std::string note = t.sender + " → " + t.name;
  if (t.data_area) note += " (" + *t.data_area + ")";
  out << "  " << Fit(ShowableText(note), kTableWidth - 2) << "\n";
}

int Run(const GlobalOptions& global,
        const std::function<int(const Config&, AuditStore&, const Io&)>& work) {
  Io io{std::cout, std::cerr, StdoutIsTerminal()};
  auto config = LoadConfigOrReport(global.config_path, io.err);
  if (!config) return kExitUsage;
  auto audit = OpenAuditOrReport(*config, io.err);
  if (!audit) return kExitUsage;
  return work(*config, *audit, io);
}

// A filter on an id the configuration does not know finds only the transfers of a route, sender or
// data area since removed, and usually nothing: most likely a typo, so say so (and still list).
void WarnOfUnknownIds(const Config& config, const TransferFilter& f, std::ostream& err) {
  auto warn = [&](const char* option, const std::string& id, const char* what) {
    err << "fordeler transfers: warning: " << option << " \"" << id << "\" is no configured "
        << what << "\n";
  };
  if (f.sender && config.FindAccount(*f.sender) == nullptr) warn("--sender", *f.sender, "account");
  if (f.data_area && config.FindDataArea(*f.data_area) == nullptr) {
    warn("--data-area", *f.data_area, "data area");
  }
  if (f.route && std::none_of(config.routes.begin(), config.routes.end(),
                              [&](const Route& r) { return r.id == *f.route; })) {
    warn("--route", *f.route, "route");
  }
}

}  // namespace

bool MakeTransferFilter(const TransferOptions& o, TimePoint now, TransferFilter* f,
                        std::string* error) {
  if (o.since) {
    TimePoint at;
    if (ParseTime(*o.since, &at)) {
      f->since = at;
    } else if (auto d = ParseDuration(*o.since); d.ok()) {
      f->since = now - *d;
    } else {
      *error = "--since \"" + *o.since + "\": not an RFC 3339 time nor a duration like 24h";
      return false;
    }
  }
  if (o.state) {
    TransferState state;
    if (!ParseTransferState(*o.state, &state)) {
      *error = "--state \"" + *o.state + "\": one of received, delivering, delivered, rejected";
      return false;
    }
    f->state = state;
  }
  if (o.limit < 0) {
    *error = "--limit must be 0 (no limit) or more";
    return false;
  }
  f->sender = o.sender;
  f->route = o.route;
  f->data_area = o.data_area;
  f->limit = o.limit == 0 ? -1 : o.limit;
  return true;
}

Json TransferSummaryJson(const TransferRecord& t) {
  return {{"uuid", t.uuid},
          {"state", ToString(t.state)},
          {"sender", t.sender},
          {"name", t.name},
          {"data_area", JsonText(t.data_area)},
          {"error_code", CodeJson(t.error_code)},
          {"received_at", FormatTime(t.received_at)}};
}

int ListTransfersTo(AuditStore& audit, const TransferFilter& filter, bool json, const Io& io) {
  size_t rows = 0;
  if (json) {
    io.out << "[";
  } else {
    io.out << (io.color ? "\033[1m" : "") << Padded("UUID", 36) << "  " << Padded("STATE", 10)
           << "  CODE  RECEIVED" << (io.color ? "\033[0m" : "") << "\n";
  }
  Status s = audit.ListTransfers(filter, [&](const TransferRecord& t) {
    if (json) {
      io.out << (rows == 0 ? "\n  " : ",\n  ") << DumpJson(TransferSummaryJson(t));
    } else {
      PrintTransferRow(t, io.out);
    }
    ++rows;
    return true;
  });
  if (json) io.out << (rows == 0 ? "]\n" : "\n]\n");
  io.out.flush();
  if (!s.ok()) {
    io.err << "fordeler: reading the audit log failed: " << s.message() << "\n";
    return kExitUsage;
  }
  return kExitOk;
}

Command AddTransfersCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("transfers", "List transfers, newest first");
  auto o = std::make_shared<TransferOptions>();
  auto json = std::make_shared<bool>(false);
  app->add_option("--since", o->since, "RFC 3339 time, or a duration back from now (24h)");
  app->add_option("--state", o->state, "received, delivering, delivered or rejected");
  app->add_option("--sender", o->sender, "Sending account");
  app->add_option("--route", o->route, "Route id");
  app->add_option("--data-area", o->data_area, "Data area id");
  app->add_option("--limit", o->limit, "At most this many (0: no limit)")->capture_default_str();
  AddJsonFlag(app, json.get());
  return Command{app, [&global, o, json] {
                   TransferFilter filter;
                   std::string error;
                   if (!MakeTransferFilter(*o, Now(), &filter, &error)) {
                     std::cerr << "fordeler transfers: " << error << "\n";
                     return static_cast<int>(kExitUsage);
                   }
                   return Run(global, [&](const Config& config, AuditStore& audit, const Io& io) {
                     WarnOfUnknownIds(config, filter, io.err);
                     return ListTransfersTo(audit, filter, *json, io);
                   });
                 }};
}

Command AddShowCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("show", "A transfer's whole history");
  auto uuid = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  app->add_option("uuid", *uuid, "FileTransferUUID")->required();
  AddJsonFlag(app, json.get());
  return Command{app, [&global, uuid, json] {
                   return Run(global, [&](const Config&, AuditStore& audit, const Io& io) {
                     return ShowTransfer(audit, *uuid, *json, io);
                   });
                 }};
}

}  // namespace fordeler::cli
