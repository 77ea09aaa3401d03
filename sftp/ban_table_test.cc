// BanTable: counting per (source, account), the window, the ban's duration, the allow-list and
// the bounded memory, on an injected clock.
#include "sftp/ban_table.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using std::chrono::minutes;
using std::chrono::seconds;

class BanTableTest : public ::testing::Test {
 protected:
  BanTableTest() {
    limits_.ban_after = 3;
    limits_.ban_window = minutes(10);
    limits_.ban_duration = minutes(15);
  }
  // Fails `n` times at now_; true when the last failure started a ban.
  bool Fail(BanTable& t, const std::string& ip, const std::string& account, int n = 1) {
    bool started = false;
    for (int i = 0; i < n; ++i) started = t.RecordFailure(limits_, ip, account, now_);
    return started;
  }
  ServerConfig limits_;
  BanTable::TimePoint now_{seconds(1000)};
};

TEST(SourceGroupOfTest, Ipv6IsGroupedPerSlash64AndIpv4PerAddress) {
  EXPECT_EQ(SourceGroupOf("192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(SourceGroupOf("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::/64");
  EXPECT_EQ(SourceGroupOf("2001:db8:1:2::1"), SourceGroupOf("2001:db8:1:2:ffff::9"));
  EXPECT_NE(SourceGroupOf("2001:db8:1:2::1"), SourceGroupOf("2001:db8:1:3::1"));
  EXPECT_EQ(SourceGroupOf("::ffff:192.0.2.7"), "192.0.2.7");
  EXPECT_EQ(SourceGroupOf("fe80::1%eth0"), "fe80::/64");
  EXPECT_EQ(SourceGroupOf("not an address"), "not an address");
}

TEST_F(BanTableTest, TheNthFailureBansThePairOnly) {
  BanTable t;
  EXPECT_FALSE(Fail(t, "192.0.2.7", "kmd", 2));
  EXPECT_FALSE(t.IsBanned("192.0.2.7", "kmd", now_));
  EXPECT_TRUE(Fail(t, "192.0.2.7", "kmd"));
  milliseconds left{};
  EXPECT_TRUE(t.IsBanned("192.0.2.7", "kmd", now_, &left));
  EXPECT_EQ(left, minutes(15));
  EXPECT_FALSE(Fail(t, "192.0.2.7", "kmd", 5));         // the ban starts once
  EXPECT_FALSE(t.IsBanned("192.0.2.7", "flis", now_));  // another account from there
  EXPECT_FALSE(t.IsBanned("192.0.2.8", "kmd", now_));   // the account from elsewhere
}

TEST_F(BanTableTest, Ipv6AddressesOfOneSlash64ShareACount) {
  BanTable t;
  Fail(t, "2001:db8:1:2::1", "kmd");
  Fail(t, "2001:db8:1:2::2", "kmd");
  EXPECT_TRUE(Fail(t, "2001:db8:1:2:ffff::3", "kmd"));
  EXPECT_TRUE(t.IsBanned("2001:db8:1:2::99", "kmd", now_));
  EXPECT_FALSE(t.IsBanned("2001:db8:1:3::1", "kmd", now_));
}

TEST_F(BanTableTest, TheCountRestartsAfterTheWindow) {
  BanTable t;
  Fail(t, "192.0.2.7", "kmd", 2);
  now_ += minutes(10);
  EXPECT_FALSE(Fail(t, "192.0.2.7", "kmd", 2));
  EXPECT_FALSE(t.IsBanned("192.0.2.7", "kmd", now_));
  now_ += minutes(9);
  EXPECT_TRUE(Fail(t, "192.0.2.7", "kmd"));
}

TEST_F(BanTableTest, TheBanEndsAfterItsDuration) {
  BanTable t;
  Fail(t, "192.0.2.7", "kmd", 3);
  now_ += minutes(15) - milliseconds(1);
  EXPECT_TRUE(t.IsBanned("192.0.2.7", "kmd", now_));
  now_ += milliseconds(1);
  EXPECT_FALSE(t.IsBanned("192.0.2.7", "kmd", now_));
  EXPECT_FALSE(Fail(t, "192.0.2.7", "kmd", 2));  // counting starts afresh
  EXPECT_TRUE(Fail(t, "192.0.2.7", "kmd"));
}

TEST_F(BanTableTest, ASuccessForgetsTheFailures) {
  BanTable t;
  Fail(t, "192.0.2.7", "kmd", 2);
  t.RecordSuccess("192.0.2.7", "kmd");
  EXPECT_FALSE(Fail(t, "192.0.2.7", "kmd", 2));
  EXPECT_TRUE(Fail(t, "192.0.2.7", "kmd"));
}

TEST_F(BanTableTest, AllowListedAddressesAndBanAfterZeroNeverBan) {
  BanTable t;
  limits_.ban_allow = {"10.0.0.0/8", "2001:db8::/32"};
  EXPECT_FALSE(Fail(t, "10.1.2.3", "kmd", 50));
  EXPECT_FALSE(Fail(t, "2001:db8:5::1", "kmd", 50));
  EXPECT_FALSE(t.IsBanned("10.1.2.3", "kmd", now_));
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(Fail(t, "192.0.2.7", "kmd", 3));
  limits_.ban_after = 0;
  EXPECT_FALSE(Fail(t, "192.0.2.8", "kmd", 50));
  EXPECT_FALSE(t.IsBanned("192.0.2.8", "kmd", now_));
}

TEST_F(BanTableTest, MemoryIsBounded) {
  BanTable t(/*max_entries=*/4);
  for (int i = 0; i < 100; ++i) {
    now_ += seconds(1);
    Fail(t, "192.0.2." + std::to_string(i), "kmd");
    EXPECT_LE(t.size(), 4u);
  }
  // A pair counting towards a ban is not pushed out by older ones: the oldest goes first.
  Fail(t, "198.51.100.1", "kmd", 2);
  now_ += seconds(1);
  Fail(t, "198.51.100.2", "kmd");
  Fail(t, "198.51.100.3", "kmd");
  EXPECT_TRUE(Fail(t, "198.51.100.1", "kmd"));
  // Banned pairs stay; with every slot banned, new failures are not recorded.
  Fail(t, "198.51.100.2", "kmd", 2);
  Fail(t, "198.51.100.3", "kmd", 2);
  Fail(t, "198.51.100.4", "kmd", 3);
  EXPECT_EQ(t.size(), 4u);
  EXPECT_FALSE(Fail(t, "198.51.100.5", "kmd", 3));
  EXPECT_FALSE(t.IsBanned("198.51.100.5", "kmd", now_));
  EXPECT_TRUE(t.IsBanned("198.51.100.1", "kmd", now_));
  // Once bans and windows have passed, their slots are taken again.
  now_ += minutes(30);
  EXPECT_TRUE(Fail(t, "198.51.100.5", "kmd", 3));
  EXPECT_LE(t.size(), 4u);
}

}  // namespace
}  // namespace fordeler
