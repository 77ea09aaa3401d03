#include "config/address_pattern.h"

#include <arpa/inet.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <cstring>
#include <optional>

#include "config/config.h"

namespace fordeler {
namespace {

struct IpAddress {
  int family = AF_INET;  // AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};
  int bits() const { return family == AF_INET ? 32 : 128; }
};

std::optional<IpAddress> ParseIp(std::string_view text, bool unmap) {
  std::string s(text.substr(0, text.find('%')));  // drop an IPv6 zone ("fe80::1%eth0")
  IpAddress ip;
  if (inet_pton(AF_INET, s.c_str(), ip.bytes.data()) == 1) return ip;
  ip.family = AF_INET6;
  if (inet_pton(AF_INET6, s.c_str(), ip.bytes.data()) != 1) return std::nullopt;
  static constexpr uint8_t kMappedPrefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (unmap && std::memcmp(ip.bytes.data(), kMappedPrefix, 12) == 0) {
    IpAddress v4;
    std::memcpy(v4.bytes.data(), ip.bytes.data() + 12, 4);
    return v4;
  }
  return ip;
}

std::string ToText(const IpAddress& ip) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(ip.family, ip.bytes.data(), buf, sizeof buf);
  return buf;
}

bool PrefixEquals(const IpAddress& a, const IpAddress& b, int prefix) {
  if (a.family != b.family) return false;
  for (int i = 0; i < prefix; ++i) {
    int byte = i / 8, bit = 7 - i % 8;
    if (((a.bytes[byte] >> bit) & 1) != ((b.bytes[byte] >> bit) & 1)) return false;
  }
  return true;
}

struct Network {
  IpAddress address;
  int prefix = 0;
};

// An address or CIDR network; nullopt when `text` is neither. *error is set when it looks like
// a CIDR network but is not a consistent one.
std::optional<Network> ParseNetwork(std::string_view text, std::string* error) {
  size_t slash = text.find('/');
  auto ip = ParseIp(text.substr(0, slash), false);
  if (!ip) return std::nullopt;
  Network net{*ip, ip->bits()};
  if (slash == std::string_view::npos) return net;
  std::string_view digits = text.substr(slash + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), net.prefix);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.empty() ||
      net.prefix < 0 || net.prefix > ip->bits()) {
    *error = "bad prefix length";
    return std::nullopt;
  }
  IpAddress masked = *ip;
  for (int i = net.prefix; i < ip->bits(); ++i) masked.bytes[i / 8] &= ~(1 << (7 - i % 8));
  if (!PrefixEquals(masked, *ip, ip->bits())) {
    *error = "host bits set after the /" + std::to_string(net.prefix) + " prefix (write " +
             ToText(masked) + "/" + std::to_string(net.prefix) + ")";
    return std::nullopt;
  }
  return net;
}

// OpenSSH's match_pattern: `*` any run, `?` one character; case-insensitive here because
// address text is.
bool WildcardMatch(std::string_view text, std::string_view pattern) {
  size_t t = 0, p = 0, star = std::string_view::npos, resume = 0;
  while (t < text.size()) {
    if (p < pattern.size() &&
        (pattern[p] == '?' || std::tolower(static_cast<unsigned char>(pattern[p])) ==
                                  std::tolower(static_cast<unsigned char>(text[t])))) {
      ++t, ++p;
    } else if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      resume = t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool MatchesOne(const IpAddress& client, const std::string& client_text, std::string_view body) {
  std::string error;
  if (auto net = ParseNetwork(body, &error)) {
    return PrefixEquals(client, net->address, net->prefix);
  }
  if (!error.empty()) return false;  // refused at load; never matches
  return WildcardMatch(client_text, body);
}

}  // namespace

Status ValidateAddressPattern(std::string_view pattern, std::string_view what) {
  std::string_view body = pattern;
  if (!body.empty() && body.front() == '!') body.remove_prefix(1);
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument(std::string(what) + " \"" + std::string(pattern) + "\": " + why);
  };
  if (body.empty()) return bad("empty");
  std::string error;
  if (ParseNetwork(body, &error)) return Status::Ok();
  if (!error.empty()) return bad(error);
  if (body.find('/') != std::string_view::npos) return bad("not a CIDR network");
  bool wildcard = body.find_first_of("*?") != std::string_view::npos;
  bool address_chars = body.find_first_not_of("0123456789abcdefABCDEF.:*?") == std::string::npos;
  if (wildcard && address_chars) return Status::Ok();
  if (address_chars && !wildcard) return bad("not an IP address");
  return bad(
      "host names are not supported: fordeler matches client IP addresses only, it never "
      "resolves names; use an address, a CIDR network or an address wildcard");
}

bool AddressMatchesPatterns(std::string_view address, const std::vector<std::string>& patterns) {
  if (patterns.empty()) return true;
  auto client = ParseIp(address, true);
  if (!client) return false;
  std::string text = ToText(*client);
  bool allowed = false;
  for (const std::string& pattern : patterns) {
    bool negated = !pattern.empty() && pattern.front() == '!';
    std::string_view body = std::string_view(pattern).substr(negated ? 1 : 0);
    if (body.empty() || !MatchesOne(*client, text, body)) continue;
    if (negated) return false;
    allowed = true;
  }
  return allowed;
}

bool AuthorizedKey::AllowsAddress(const std::string& address) const {
  return AddressMatchesPatterns(address, from);
}

}  // namespace fordeler
