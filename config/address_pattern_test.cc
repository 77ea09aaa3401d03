#include "config/address_pattern.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace fordeler {
namespace {

bool Allows(const std::string& patterns, const std::string& address) {
  std::vector<std::string> list;
  size_t start = 0;
  while (true) {
    size_t comma = patterns.find(',', start);
    list.push_back(patterns.substr(start, comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return AddressMatchesPatterns(address, list);
}

TEST(AddressPattern, EmptyListAllowsEveryone) {
  EXPECT_TRUE(AddressMatchesPatterns("192.0.2.1", {}));
  EXPECT_TRUE(AddressMatchesPatterns("2001:db8::1", {}));
}

TEST(AddressPattern, ExactAddresses) {
  EXPECT_TRUE(Allows("192.0.2.7", "192.0.2.7"));
  EXPECT_FALSE(Allows("192.0.2.7", "192.0.2.70"));
  EXPECT_TRUE(Allows("2001:db8::1", "2001:0db8:0:0::1"));  // compared as addresses, not text
}

TEST(AddressPattern, Wildcards) {
  EXPECT_TRUE(Allows("192.168.1.*", "192.168.1.200"));
  EXPECT_FALSE(Allows("192.168.1.*", "192.168.10.1"));
  EXPECT_TRUE(Allows("10.0.0.?", "10.0.0.7"));
  EXPECT_FALSE(Allows("10.0.0.?", "10.0.0.17"));
  EXPECT_TRUE(Allows("*", "203.0.113.9"));
  EXPECT_TRUE(Allows("2001:db8::*", "2001:db8::42"));
  EXPECT_TRUE(Allows("2001:DB8::*", "2001:db8::42"));  // case-insensitive
}

TEST(AddressPattern, CidrV4) {
  EXPECT_TRUE(Allows("10.0.0.0/8", "10.255.3.4"));
  EXPECT_FALSE(Allows("10.0.0.0/8", "11.0.0.1"));
  EXPECT_TRUE(Allows("192.0.2.128/25", "192.0.2.200"));
  EXPECT_FALSE(Allows("192.0.2.128/25", "192.0.2.127"));
  EXPECT_TRUE(Allows("192.0.2.7/32", "192.0.2.7"));
  EXPECT_TRUE(Allows("0.0.0.0/0", "198.51.100.1"));
  EXPECT_FALSE(Allows("0.0.0.0/0", "2001:db8::1"));  // families never match each other
}

TEST(AddressPattern, CidrV6) {
  EXPECT_TRUE(Allows("2001:db8::/32", "2001:db8:ffff::1"));
  EXPECT_FALSE(Allows("2001:db8::/32", "2001:db9::1"));
  EXPECT_TRUE(Allows("fe80::/10", "fe80::1%eth0"));  // zone ids are ignored
  EXPECT_FALSE(Allows("2001:db8::/32", "10.0.0.1"));
}

TEST(AddressPattern, NegationRefusesEvenWhenAnotherPatternMatches) {
  EXPECT_FALSE(Allows("10.0.0.0/8,!10.0.0.5", "10.0.0.5"));
  EXPECT_FALSE(Allows("!10.0.0.5,10.0.0.0/8", "10.0.0.5"));
  EXPECT_TRUE(Allows("!10.0.0.5,10.0.0.0/8", "10.0.0.6"));
  EXPECT_FALSE(Allows("!192.168.*,*", "192.168.3.3"));
  // As in OpenSSH, a list of only negations matches nobody.
  EXPECT_FALSE(Allows("!10.0.0.5", "10.0.0.6"));
}

TEST(AddressPattern, MappedV4IsTreatedAsV4) {
  EXPECT_TRUE(Allows("10.0.0.0/8", "::ffff:10.1.2.3"));
  EXPECT_TRUE(Allows("10.1.2.*", "::ffff:10.1.2.3"));
  EXPECT_TRUE(Allows("10.1.2.3", "::FFFF:10.1.2.3"));
  EXPECT_FALSE(Allows("!10.1.2.3,*", "::ffff:10.1.2.3"));
}

TEST(AddressPattern, NonAddressesMatchNothing) {
  EXPECT_FALSE(Allows("*", "not-an-address"));
  EXPECT_FALSE(Allows("*", ""));
  EXPECT_FALSE(Allows("*", "192.0.2.1:22"));
}

TEST(AddressPattern, ValidationAcceptsAddressesNetworksAndWildcards) {
  for (const char* ok : {"192.0.2.1", "10.0.0.0/8", "2001:db8::/32", "::1", "192.168.*", "*",
                         "10.0.0.?", "!10.0.0.5", "!2001:db8::/48", "0.0.0.0/0"}) {
    EXPECT_TRUE(ValidateAddressPattern(ok).ok()) << ok;
  }
}

TEST(AddressPattern, ValidationRefusesHostNamesAndBadNetworks) {
  struct Case {
    const char* pattern;
    const char* says;
  };
  for (const Case& c :
       {Case{"*.example.com", "host names are not supported"},
        Case{"!bastion", "host names are not supported"}, Case{"10.0.0.1/8", "host bits set"},
        Case{"10.0.0.0/33", "bad prefix"}, Case{"10.0.0.0/", "bad prefix"},
        Case{"2001:db8::/129", "bad prefix"}, Case{"10.0.0", "not an IP address"},
        Case{"!", "empty"}, Case{"", "empty"}, Case{"foo/8", "not a CIDR network"}}) {
    Status s = ValidateAddressPattern(c.pattern);
    ASSERT_FALSE(s.ok()) << c.pattern;
    EXPECT_NE(s.message().find(c.says), std::string::npos) << s.message();
  }
}

TEST(AddressPattern, AuthorizedKeyAllowsAddressUsesItsFromList) {
  AuthorizedKey key;
  EXPECT_TRUE(key.AllowsAddress("203.0.113.1"));
  key.from = {"192.0.2.0/24", "!192.0.2.13"};
  EXPECT_TRUE(key.AllowsAddress("192.0.2.12"));
  EXPECT_FALSE(key.AllowsAddress("192.0.2.13"));
  EXPECT_FALSE(key.AllowsAddress("203.0.113.1"));
}

}  // namespace
}  // namespace fordeler
