#include "cli/audit_verify_command.h"

#include <cctype>
#include <iostream>
#include <memory>

namespace fordeler::cli {

bool ParseChainHead(const std::string& text, ChainHead* head) {
  size_t colon = text.find(':');
  if (colon == std::string::npos || colon == 0 || colon > 18) return false;
  std::string seq = text.substr(0, colon), hash = text.substr(colon + 1);
  if (seq == "0" && hash.empty()) {
    *head = ChainHead{0, ""};
    return true;
  }
  for (char c : seq) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  if (hash.size() != 64) return false;
  for (char& c : hash) {
    if (!std::isxdigit(static_cast<unsigned char>(c))) return false;
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  head->seq = std::stoll(seq);
  head->hash = hash;
  return head->seq > 0;
}

int VerifyAudit(AuditStore& audit, const std::optional<ChainHead>& head, bool json, const Io& io) {
  auto report = audit.Verify(head);
  auto now_head = report.ok() ? audit.Head() : Result<ChainHead>(report.status());
  if (!now_head.ok()) {
    io.err << "fordeler: reading the audit log failed: " << now_head.status().message() << "\n";
    return kExitUsage;
  }
  const VerifyReport& r = *report;
  if (json) {
    Json doc = {{"ok", r.ok},
                {"events", r.rows},
                {"digests", r.digests},
                {"head", {{"seq", now_head->seq}, {"hash", now_head->hash}}},
                {"first_bad_seq", r.ok ? Json(nullptr) : Json(r.first_bad_seq)},
                {"problem", r.ok ? Json(nullptr) : Json(r.problem)},
                {"transfer", r.transfer.empty() ? Json(nullptr) : Json(r.transfer)}};
    io.out << DumpJson(doc, 2) << "\n";
  } else if (r.ok) {
    io.out << "audit log OK: " << r.rows << " events, head " << now_head->seq << " "
           << now_head->hash << "\n";
    if (r.digests > 0) {
      io.out << "file digests OK: the transfers' sha256 and size match the " << r.digests
             << (r.digests == 1 ? " event that carries them\n" : " events that carry them\n");
    } else {
      io.out << "file digests: no event carries one; the transfers' sha256 and size were not "
                "checked\n";
    }
  } else {
    io.out << (io.color ? "\033[31m" : "") << "audit log BROKEN at seq " << r.first_bad_seq << ": "
           << r.problem << (io.color ? "\033[0m" : "") << "\n";
  }
  return r.ok ? kExitOk : kExitBadNews;
}

Command AddAuditCommand(CLI::App& parent, const GlobalOptions& global) {
  CLI::App* app = parent.add_subcommand("audit", "The audit log");
  app->require_subcommand(1);
  CLI::App* verify = app->add_subcommand(
      "verify", "Check the hash chain of the audit events; exit 1 naming the first bad row");
  auto head = std::make_shared<std::string>();
  auto json = std::make_shared<bool>(false);
  verify->add_option("--head", *head, "SEQ:HASH of a chain head logged by fordelerd");
  AddJsonFlag(verify, json.get());
  return Command{app, [&global, head, json] {
                   Io io{std::cout, std::cerr, StdoutIsTerminal()};
                   std::optional<ChainHead> expected;
                   if (!head->empty()) {
                     ChainHead h;
                     if (!ParseChainHead(*head, &h)) {
                       io.err << "fordeler audit verify: --head \"" << *head
                              << "\" is not SEQ:HASH (a sequence number and 64 hex digits)\n";
                       return static_cast<int>(kExitUsage);
                     }
                     if (h.seq > 0) expected = h;  // "0:" is the empty log: nothing to find
                   }
                   auto config = LoadConfigOrReport(global.config_path, io.err);
                   if (!config) return static_cast<int>(kExitUsage);
                   auto audit = OpenAuditOrReport(*config, io.err);
                   if (!audit) return static_cast<int>(kExitUsage);
                   return VerifyAudit(*audit, expected, *json, io);
                 }};
}

}  // namespace fordeler::cli
