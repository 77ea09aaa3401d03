// Route resolution (contract §4): from the logged-in account, its trigger and the configuration
// to a data area, an authority and a set of recipients, or exactly one error code. Pure: no I/O,
// no clock; thread-safe.
//
// Rules, in order:
//   Sender must equal the account                               else SENDER_MISMATCH (1007)
//   authority = SenderAuthority if given, else the account's authority
//   InfRef given: the data area whose deliver_service it is     else UNKNOWN_DATA_AREA (2003)
//   named recipients (not ROUTING_V1_0_0) must be accounts      else UNKNOWN_RECIPIENT (2001)
//   InfRef absent: the one data area of the sender's routes that reach all named recipients
//     (dynamic routing: the one data area of all the sender's routes);
//     none -> NO_ROUTE (2002), several -> AMBIGUOUS_DATA_AREA (2004)
//   routes considered: sender == account, data_area == the data area, and authorities "*" or
//     containing the authority
//   dynamic routing: the union of those routes' recipients, narrowed by RecipientIt-system (the
//     recipient account's it_system) and RecipientAuthority (kept when it is the recipient
//     account's own authority or one the route serves; "*" serves all); empty -> NO_ROUTE
//   named recipients: each must be reached by one of those routes   else NO_ROUTE
// All or nothing: either every recipient resolves or the transfer is rejected.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"
#include "core/error_codes.h"
#include "metadata/trigger.h"

namespace fordeler {

struct Resolution {
  std::string data_area;                // DataArea::id
  std::string authority;                // may be empty when neither trigger nor account names one
  std::vector<std::string> recipients;  // account ids, no duplicates, in a stable order
  std::vector<std::string> route_ids;   // the routes that reach them, no duplicates
};

// Returns true and fills *out, or returns false and fills *why (description for people, e.g.
// "no route for kmd-oekonomi → lis-aarhus in oekonomi").
bool Resolve(const Config& config, const std::string& account, const Trigger& trigger,
             Resolution* out, Rejection* why);

}  // namespace fordeler
