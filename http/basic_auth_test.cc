#include "http/basic_auth.h"

#include <crypt.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <memory>

namespace fordeler {
namespace {

std::string Hash(const char* password, const char* prefix) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  EXPECT_NE(crypt_gensalt_rn(prefix, 0, nullptr, 0, salt, sizeof salt), nullptr);
  auto data = std::make_unique<crypt_data>();
  const char* h = crypt_r(password, salt, data.get());
  return h == nullptr ? "" : h;
}

std::string Header(const std::string& user_password) {
  std::string out(4 * ((user_password.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(user_password.data()),
                          static_cast<int>(user_password.size()));
  out.resize(static_cast<size_t>(n));
  return "Basic " + out;
}

TEST(BasicAuthTest, AcceptsTheRightPasswordForSha512AndYescrypt) {
  for (const char* prefix : {"$6$", "$y$"}) {
    BasicAuth auth("ops", Hash("s3cret", prefix));
    EXPECT_TRUE(auth.Allows(Header("ops:s3cret"))) << prefix;
    EXPECT_TRUE(auth.Allows("basic " + Header("ops:s3cret").substr(6))) << prefix;
    EXPECT_FALSE(auth.Allows(Header("ops:s3cret!"))) << prefix;
    EXPECT_FALSE(auth.Allows(Header("root:s3cret"))) << prefix;
    // crypt_r would stop at the NUL and see "s3cret".
    EXPECT_FALSE(auth.Allows(Header(std::string("ops:s3cret\0junk", 15)))) << prefix;
  }
}

TEST(BasicAuthTest, RefusesMalformedHeaders) {
  BasicAuth auth("ops", Hash("pw", "$6$"));
  EXPECT_FALSE(auth.Allows(""));
  EXPECT_FALSE(auth.Allows("Bearer abc"));
  EXPECT_FALSE(auth.Allows("Basic !!!!"));
  EXPECT_FALSE(auth.Allows("Basic b3Bz"));  // "ops": no colon
  EXPECT_FALSE(auth.Allows(Header("ops:")));
}

TEST(BasicAuthTest, OffWhenNoUser) { EXPECT_TRUE(BasicAuth("", "").Allows("")); }

TEST(BasicAuthTest, DecodesBase64) {
  std::string out;
  ASSERT_TRUE(DecodeBase64("b3BzOnB3", &out));
  EXPECT_EQ(out, "ops:pw");
  ASSERT_TRUE(DecodeBase64("b3BzOnB3eA==", &out));
  EXPECT_EQ(out, "ops:pwx");
  EXPECT_FALSE(DecodeBase64("abc", &out));
}

}  // namespace
}  // namespace fordeler
