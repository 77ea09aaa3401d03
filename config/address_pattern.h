// The `from=` patterns of authorized_keys (sshd(8), "AUTHORIZED_KEYS FILE FORMAT"), matched
// against the client's IP address.
//
// A pattern is an address ("192.0.2.7", "2001:db8::1"), a CIDR network ("10.0.0.0/8",
// "2001:db8::/32"), or a wildcard pattern over the address text with `*` and `?` ("192.168.1.*").
// A leading `!` negates: a client matching a negated pattern is refused even if another pattern
// matches. A client is allowed when it matches at least one pattern and no negated one; an empty
// list allows everyone. As in OpenSSH, an IPv4-mapped IPv6 client address (::ffff:192.0.2.7) is
// treated as the IPv4 address.
//
// Unlike sshd, fordeler never resolves host names (sshd does only with UseDNS=yes, not the
// default). A pattern naming a host ("*.example.com") could then never match, and a negated one
// would silently protect nothing, so ValidateAddressPattern refuses such patterns at load time,
// and CIDR networks with host bits set (sshd refuses those as inconsistent, and denies).
// Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace fordeler {

// OK when `pattern` (possibly with a leading `!`) is an address, a CIDR network or a wildcard
// pattern made only of address characters; otherwise says what is wrong, calling it `what`.
Status ValidateAddressPattern(std::string_view pattern, std::string_view what = "from= pattern");

// True when `address` (an IPv4 or IPv6 literal, no port, optional %zone) satisfies `patterns`
// as described above. An address that is not an IP literal matches nothing (and so is refused
// by a non-empty list).
bool AddressMatchesPatterns(std::string_view address, const std::vector<std::string>& patterns);

}  // namespace fordeler
