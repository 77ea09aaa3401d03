#include "daemon/restart_only.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

Config Started() {
  Config c;
  c.http.listen = {"127.0.0.1:9122"};
  c.http.user = "ops";
  c.http.password_hash = "$6$old$hash";
  return c;
}

TEST(RestartOnly, NothingDiffersNothingNamed) {
  EXPECT_EQ(RestartOnlyChanges(Started(), Started()), "");
}

// An operator rotating a leaked password must learn that the old one still works until restart.
TEST(RestartOnly, EveryHttpSettingThatDiffersIsNamedAndKeptAsStarted) {
  Config fresh = Started();
  fresh.http.listen = {"127.0.0.1:9123"};
  fresh.http.user = "admin";
  fresh.http.password_hash = "$6$new$hash";
  fresh.http.tls_certificate = "/etc/fordeler/http.crt";
  fresh.http.tls_key = "/etc/fordeler/http.key";
  fresh.server.threads = 3;
  EXPECT_EQ(RestartOnlyChanges(fresh, Started()),
            "server.threads,http.listen,http.user,http.password_hash,http.tls_certificate,"
            "http.tls_key");
  auto applied = KeepRestartOnly(fresh, Started());
  EXPECT_EQ(applied->http.listen, Started().http.listen);
  EXPECT_EQ(applied->http.user, "ops");
  EXPECT_EQ(applied->http.password_hash, "$6$old$hash");
  EXPECT_EQ(applied->http.tls_certificate, "");
  EXPECT_EQ(applied->http.tls_key, "");
  EXPECT_EQ(applied->server.threads, 0);
}

TEST(RestartOnly, OnlyThePasswordDiffers) {
  Config fresh = Started();
  fresh.http.password_hash = "$6$new$hash";
  EXPECT_EQ(RestartOnlyChanges(fresh, Started()), "http.password_hash");
}

TEST(RestartOnly, SettingsAReloadAppliesAreTaken) {
  Config fresh = Started();
  fresh.server.max_sessions = 7;
  Account flis;
  flis.id = "flis";
  fresh.accounts.push_back(flis);
  EXPECT_EQ(RestartOnlyChanges(fresh, Started()), "");
  auto applied = KeepRestartOnly(fresh, Started());
  EXPECT_EQ(applied->server.max_sessions, 7);
  ASSERT_EQ(applied->accounts.size(), 1u);
  EXPECT_EQ(applied->accounts[0].id, "flis");
}

}  // namespace
}  // namespace fordeler
