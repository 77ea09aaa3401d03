#include "config/http_settings.h"

#include <gtest/gtest.h>

#include "config/config_testing.h"

namespace fordeler {
namespace {

using testing::LoadConfigTest;

TEST_F(LoadConfigTest, HttpDefaultsToLoopbackWithoutAuthOrTls) {
  LoadResult r = Load("# defaults\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->http.listen, std::vector<std::string>{"127.0.0.1:9122"});
  EXPECT_TRUE(r.config->http.user.empty());
  EXPECT_TRUE(r.config->http.tls_certificate.empty());
  r = Load("[http]\nlisten = []\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_TRUE(r.config->http.listen.empty());
}

TEST_F(LoadConfigTest, HttpReadsAuthAndTlsWithPathsRelativeToTheFile) {
  dir_.Write("etc/tls/http.crt", "cert");
  dir_.Write("etc/tls/http.key", "key");
  LoadResult r = Load(
      "[http]\nlisten = [\"0.0.0.0:9122\", \"[::1]:9122\"]\nuser = \"ops\"\n"
      "password_hash = \"$6$salt$abc\"\ntls_certificate = \"tls/http.crt\"\n"
      "tls_key = \"tls/http.key\"\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->http.user, "ops");
  EXPECT_EQ(r.config->http.password_hash, "$6$salt$abc");
  EXPECT_EQ(r.config->http.tls_certificate, Etc("tls/http.crt"));
  EXPECT_EQ(r.config->http.tls_key, Etc("tls/http.key"));
}

TEST_F(LoadConfigTest, HttpRefusesNonLoopbackWithoutAuthAndTls) {
  LoadResult r = Load("[http]\nlisten = [\"127.0.0.1:1\",\n  \"0.0.0.0:9122\"]\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), main_ + ":3");
  EXPECT_NE(r.errors[0].message.find("not a loopback address"), std::string::npos);
  r = Load("[http]\nlisten = [\"192.0.2.1:80\"]\nuser = \"ops\"\npassword_hash = \"$6$s$h\"\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);  // auth alone is not enough
}

TEST_F(LoadConfigTest, HttpRefusesHalfSettingsAndPlainPasswords) {
  LoadResult r = Load("[http]\nuser = \"ops\"\ntls_key = \"missing.key\"\n");
  EXPECT_EQ(r.errors.size(), 3u) << testing::Describe(r.errors);
  r = Load("[http]\nuser = \"ops\"\npassword_hash = \"hunter2\"\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  EXPECT_NE(r.errors[0].message.find("crypt(3)"), std::string::npos);
  EXPECT_EQ(r.errors[0].message.find("hunter2"), std::string::npos);
}

TEST(HttpSettingsTest, LoopbackAddresses) {
  EXPECT_TRUE(IsLoopbackListenAddress("127.0.0.1:9122"));
  EXPECT_TRUE(IsLoopbackListenAddress("127.1.2.3:0"));
  EXPECT_TRUE(IsLoopbackListenAddress("[::1]:9122"));
  EXPECT_FALSE(IsLoopbackListenAddress("0.0.0.0:9122"));
  EXPECT_FALSE(IsLoopbackListenAddress("[::]:9122"));
  EXPECT_FALSE(IsLoopbackListenAddress("10.0.0.1:9122"));
}

}  // namespace
}  // namespace fordeler
