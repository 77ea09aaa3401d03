// Host private keys as the server reads them: real keys from ssh-keygen, made at test time.
#include "sftp/host_keys.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/config_testing.h"

namespace fordeler {
namespace {

using testing::GenerateKey;
using ::testing::HasSubstr;
using testing::RunCommand;
using testing::TempDir;

class HostKeysTest : public ::testing::Test {
 protected:
  TempDir dir_;
};

TEST_F(HostKeysTest, TheKeysTheServerOffersAreFine) {
  EXPECT_EQ(HostKeyProblem(GenerateKey(dir_, "ed25519", "ed25519")), "");
  EXPECT_EQ(HostKeyProblem(GenerateKey(dir_, "rsa", "rsa", 3072)), "");
  EXPECT_EQ(HostKeyProblem(GenerateKey(dir_, "rsa2048", "rsa", 2048)), "");
  // The older PEM encoding that ssh-keygen -m PEM writes.
  std::string pem = GenerateKey(dir_, "pem", "rsa", 2048);
  int rc = 0;
  RunCommand("ssh-keygen -q -p -N '' -m PEM -f '" + pem + "' >/dev/null 2>&1", &rc);
  ASSERT_EQ(rc, 0);
  ASSERT_THAT(testing::FirstLine(pem), HasSubstr("BEGIN RSA"));
  EXPECT_EQ(HostKeyProblem(pem), "");
}

TEST_F(HostKeysTest, AKeyTheServerWouldNotOfferIsRefused) {
  EXPECT_THAT(HostKeyProblem(GenerateKey(dir_, "ecdsa", "ecdsa", 256)),
              HasSubstr("is an ecdsa-sha2-nistp256 key; fordelerd offers ssh-ed25519 and RSA"));
  EXPECT_THAT(HostKeyProblem(GenerateKey(dir_, "rsa1024", "rsa", 1024)),
              HasSubstr("is refused: The host key size 1024 is too small"));
}

TEST_F(HostKeysTest, WhatIsNotAUsablePrivateKeySaysWhy) {
  std::string key = GenerateKey(dir_, "ed25519", "ed25519");
  EXPECT_EQ(HostKeyProblem(key + ".pub"),
            "is a public key; host_keys names the private key (the file without .pub)");

  std::string locked = GenerateKey(dir_, "locked", "ed25519");
  int rc = 0;
  RunCommand("ssh-keygen -q -p -P '' -N secret -f '" + locked + "' >/dev/null 2>&1", &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_THAT(HostKeyProblem(locked), HasSubstr("is protected by a passphrase"));

  std::string pem = GenerateKey(dir_, "locked-pem", "rsa", 2048);
  RunCommand("ssh-keygen -q -p -P '' -N secret -m PEM -f '" + pem + "' >/dev/null 2>&1", &rc);
  ASSERT_EQ(rc, 0);
  EXPECT_THAT(HostKeyProblem(pem), HasSubstr("is protected by a passphrase"));

  EXPECT_THAT(HostKeyProblem(dir_.Write("garbage", "not a key\n")),
              HasSubstr("is not a private key libssh can read"));
  EXPECT_THAT(HostKeyProblem(dir_.Write("empty", "")),
              HasSubstr("is not a private key libssh can read"));
  EXPECT_THAT(HostKeyProblem(dir_ / "absent"), HasSubstr("cannot be read: No such file"));
}

}  // namespace
}  // namespace fordeler
