// Route resolution (contract §4); the rules are in resolver.h. Notes where the contract is silent:
//   - An optional trigger element that is present but empty (InfRef, SenderAuthority,
//     RecipientIt-system, RecipientAuthority) counts as absent.
//   - An empty authority is served only by "*" routes.
//   - Inferring the data area considers only routes that serve the authority: a route that does
//     not serve it reaches nobody for this transfer. Dynamic routing infers the area before
//     narrowing by RecipientIt-system/RecipientAuthority, as the contract says.
//   - RecipientIt-system and RecipientAuthority narrow dynamic routing only; named recipients
//     ignore them.
//   - InfRef matches deliver_service exactly; the first data area in config order wins.
//   - Dynamic routing skips a route recipient that is no account (config refuses such routes).
//   - NO_ROUTE for named recipients names every unreached one; UNKNOWN_RECIPIENT the first.
#include "routing/resolver.h"

#include <algorithm>
#include <optional>
#include <utility>

namespace fordeler {
namespace {

constexpr const char* kAnyAuthority = "*";

// What a transfer is resolved for, once the sender and authority are known.
struct Request {
  const std::string& sender;
  const std::string& authority;
};

const std::string* Given(const std::optional<std::string>& value) {
  return value && !value->empty() ? &*value : nullptr;
}

bool Contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

void AddUnique(std::vector<std::string>* list, const std::string& item) {
  if (!Contains(*list, item)) list->push_back(item);
}

std::string Join(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += ", ";
    out += item;
  }
  return out;
}

// " for urn:oio:cvr-nr:…", or a note that no authority was given.
std::string ForAuthority(const std::string& authority) {
  return authority.empty() ? " (no authority given)" : " for " + authority;
}

bool Reject(Rejection* why, ErrorCode code, std::string description) {
  why->code = code;
  why->description = std::move(description);
  return false;
}

bool Serves(const Route& route, const std::string& authority) {
  for (const auto& a : route.authorities) {
    if (a == kAnyAuthority || (!authority.empty() && a == authority)) return true;
  }
  return false;
}

// The sender's routes that serve the authority, in config order; all data areas when `area` is
// empty, else only that one.
std::vector<const Route*> RoutesFor(const Config& config, const Request& req,
                                    const std::string& area) {
  std::vector<const Route*> routes;
  for (const auto& r : config.routes) {
    if (r.sender != req.sender || !Serves(r, req.authority)) continue;
    if (!area.empty() && r.data_area != area) continue;
    routes.push_back(&r);
  }
  return routes;
}

// The named recipients that none of `routes` reaches, in the order named.
std::vector<std::string> Unreached(const std::vector<const Route*>& routes,
                                   const std::vector<std::string>& named) {
  std::vector<std::string> unreached;
  for (const auto& name : named) {
    bool reached = std::any_of(routes.begin(), routes.end(),
                               [&](const Route* r) { return Contains(r->recipients, name); });
    if (!reached) unreached.push_back(name);
  }
  return unreached;
}

// Without InfRef: the one data area of the sender's routes (serving the authority) that reach
// every named recipient; `named` is empty for dynamic routing, so every such area fits.
bool InferDataArea(const Config& config, const Request& req, const std::vector<std::string>& named,
                   std::string* area, Rejection* why) {
  std::vector<std::string> fitting;
  for (const Route* r : RoutesFor(config, req, "")) {
    if (Contains(fitting, r->data_area)) continue;
    if (Unreached(RoutesFor(config, req, r->data_area), named).empty()) {
      fitting.push_back(r->data_area);
    }
  }
  std::string what = named.empty() ? "dynamic routing (ROUTING_V1_0_0) from " + req.sender
                                   : req.sender + " → " + Join(named);
  if (fitting.empty()) {
    std::string routes = named.empty() ? "no route from " + req.sender : "no route for " + what;
    return Reject(why, ErrorCode::kNoRoute,
                  routes + " in any data area" + ForAuthority(req.authority));
  }
  if (fitting.size() > 1) {
    return Reject(why, ErrorCode::kAmbiguousDataArea,
                  what + ForAuthority(req.authority) + " fits several data areas (" +
                      Join(fitting) + "); name one with InfRef");
  }
  *area = fitting.front();
  return true;
}

// Whether dynamic routing keeps `recipient`, reached by `route`, under the trigger's narrowing.
bool Keeps(const Account& recipient, const Route& route, const DynamicRoutingInfo& info) {
  const std::string* it_system = Given(info.recipient_it_system);
  if (it_system != nullptr && recipient.it_system != *it_system) return false;
  const std::string* authority = Given(info.recipient_authority);
  if (authority == nullptr) return true;
  return recipient.authority == *authority || Serves(route, *authority);
}

std::string Narrowing(const DynamicRoutingInfo& info) {
  std::string out;
  if (const std::string* s = Given(info.recipient_it_system)) out += " RecipientIt-system " + *s;
  if (const std::string* s = Given(info.recipient_authority)) out += " RecipientAuthority " + *s;
  return out.empty() ? "" : " with" + out;
}

bool ResolveDynamic(const Config& config, const Request& req, const DynamicRoutingInfo& info,
                    Resolution* res, Rejection* why) {
  for (const Route* r : RoutesFor(config, req, res->data_area)) {
    for (const auto& id : r->recipients) {
      const Account* recipient = config.FindAccount(id);
      if (recipient == nullptr || !Keeps(*recipient, *r, info)) continue;
      AddUnique(&res->recipients, id);
      AddUnique(&res->route_ids, r->id);
    }
  }
  if (res->recipients.empty()) {
    return Reject(why, ErrorCode::kNoRoute,
                  "dynamic routing (ROUTING_V1_0_0) from " + req.sender + " in " + res->data_area +
                      ForAuthority(req.authority) + Narrowing(info) + " reaches no recipient");
  }
  return true;
}

bool ResolveNamed(const Config& config, const Request& req, const std::vector<std::string>& named,
                  Resolution* res, Rejection* why) {
  std::vector<const Route*> routes = RoutesFor(config, req, res->data_area);
  std::vector<std::string> unreached = Unreached(routes, named);
  if (!unreached.empty()) {
    return Reject(why, ErrorCode::kNoRoute,
                  "no route for " + req.sender + " → " + Join(unreached) + " in " + res->data_area +
                      ForAuthority(req.authority));
  }
  res->recipients = named;
  for (const Route* r : routes) {
    bool reaches = std::any_of(named.begin(), named.end(),
                               [&](const std::string& n) { return Contains(r->recipients, n); });
    if (reaches) AddUnique(&res->route_ids, r->id);
  }
  return true;
}

// The named recipients without duplicates, in the order first named; false (UNKNOWN_RECIPIENT,
// naming the first) when one is no account.
bool NamedRecipients(const Config& config, const Trigger& trigger, std::vector<std::string>* named,
                     Rejection* why) {
  for (const auto& name : trigger.recipients) {
    if (config.FindAccount(name) == nullptr) {
      return Reject(why, ErrorCode::kUnknownRecipient,
                    "recipient " + name + " named by " + trigger.sender + " is no account");
    }
    AddUnique(named, name);
  }
  return true;
}

}  // namespace

bool Resolve(const Config& config, const std::string& account, const Trigger& trigger,
             Resolution* out, Rejection* why) {
  if (trigger.sender != account) {
    return Reject(why, ErrorCode::kSenderMismatch,
                  "Sender " + trigger.sender + " is not the logged-in account " + account);
  }
  Resolution res;
  if (const std::string* sender_authority = Given(trigger.routing.sender_authority)) {
    res.authority = *sender_authority;
  } else if (const Account* a = config.FindAccount(account)) {
    res.authority = a->authority;
  }
  const std::string* inf_ref = Given(trigger.routing.inf_ref);
  if (inf_ref != nullptr) {
    auto area = std::find_if(config.data_areas.begin(), config.data_areas.end(),
                             [&](const DataArea& d) { return d.deliver_service == *inf_ref; });
    if (area == config.data_areas.end()) {
      return Reject(why, ErrorCode::kUnknownDataArea,
                    "InfRef " + *inf_ref + " is no data area's deliver service");
    }
    res.data_area = area->id;
  }
  const bool dynamic = trigger.IsDynamicRouting();
  std::vector<std::string> named;
  if (!dynamic && !NamedRecipients(config, trigger, &named, why)) return false;
  const Request req{account, res.authority};
  if (inf_ref == nullptr && !InferDataArea(config, req, named, &res.data_area, why)) return false;
  bool ok = dynamic ? ResolveDynamic(config, req, trigger.routing, &res, why)
                    : ResolveNamed(config, req, named, &res, why);
  if (!ok) return false;
  *out = std::move(res);
  return true;
}

}  // namespace fordeler
