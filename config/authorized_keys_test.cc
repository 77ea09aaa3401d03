#include "config/authorized_keys.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdlib>
#include <cstring>
#include <ctime>

#include "config/config_testing.h"
#include "config/ssh_public_key.h"

namespace fordeler {
namespace {

using namespace std::string_literals;
using std::chrono::system_clock;
using testing::FirstLine;
using testing::GenerateKey;
using testing::RunCommand;
using testing::TempDir;

const SourceLocation kHere{"test", 1};

// "256 SHA256:abc... comment (ED25519)" -> {bits, fingerprint}
std::pair<int, std::string> KeygenFingerprint(const std::string& pub) {
  std::string out = RunCommand("ssh-keygen -lf '" + pub + "'");
  size_t space = out.find(' ');
  size_t end = out.find(' ', space + 1);
  return {std::atoi(out.substr(0, space).c_str()), out.substr(space + 1, end - space - 1)};
}

class KeyFiles : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    ed25519_ = GenerateKey(*dir_, "ed25519", "ed25519") + ".pub";
    ecdsa_ = GenerateKey(*dir_, "ecdsa", "ecdsa", 384) + ".pub";
    rsa_ = GenerateKey(*dir_, "rsa", "rsa", 2048) + ".pub";
    rsa_short_ = GenerateKey(*dir_, "rsa1024", "rsa", 1024) + ".pub";
  }
  static void TearDownTestSuite() { delete dir_; }

  static TempDir* dir_;
  static std::string ed25519_, ecdsa_, rsa_, rsa_short_;
};
TempDir* KeyFiles::dir_ = nullptr;
std::string KeyFiles::ed25519_, KeyFiles::ecdsa_, KeyFiles::rsa_, KeyFiles::rsa_short_;

// The blob's base64 of a one-line .pub file.
std::string Blob64(const std::string& line) {
  size_t a = line.find(' ') + 1;
  return line.substr(a, line.find(' ', a) - a);
}

TEST_F(KeyFiles, FingerprintAndBitsEqualSshKeygens) {
  for (const std::string& pub : {ed25519_, ecdsa_, rsa_}) {
    auto key = ParseAuthorizedKeyLine(FirstLine(pub), kHere);
    ASSERT_TRUE(key.ok()) << key.status().message();
    auto [bits, fingerprint] = KeygenFingerprint(pub);
    EXPECT_EQ(key->fingerprint, fingerprint) << pub;
    EXPECT_EQ(key->bits, bits) << pub;
    EXPECT_TRUE(key->fingerprint.starts_with("SHA256:"));
  }
}

TEST_F(KeyFiles, ReadsTypeBlobAndComment) {
  auto key = ParseAuthorizedKeyLine(FirstLine(ed25519_), kHere);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->type, "ssh-ed25519");
  EXPECT_EQ(key->comment, "test-ed25519");
  EXPECT_EQ(key->blob, *Base64Decode(Blob64(FirstLine(ed25519_))));
  EXPECT_TRUE(key->from.empty());
  EXPECT_FALSE(key->restrict);
  EXPECT_FALSE(key->expiry.has_value());
  auto ecdsa = ParseAuthorizedKeyLine(FirstLine(ecdsa_), kHere);
  ASSERT_TRUE(ecdsa.ok());
  EXPECT_EQ(ecdsa->type, "ecdsa-sha2-nistp384");
  EXPECT_EQ(ecdsa->bits, 384);
}

TEST_F(KeyFiles, ShortRsaKeyIsRefused) {
  auto key = ParseAuthorizedKeyLine(FirstLine(rsa_short_), kHere);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message(), "RSA key of 1024 bits: RSA keys need at least 2048 bits");
}

TEST_F(KeyFiles, OptionsAreParsed) {
  std::string line =
      "from=\"10.0.0.0/8,!10.0.0.5\",restrict,expiry-time=\"20300101Z\" " + FirstLine(ed25519_);
  auto key = ParseAuthorizedKeyLine(line, kHere);
  ASSERT_TRUE(key.ok()) << key.status().message();
  EXPECT_EQ(key->from, (std::vector<std::string>{"10.0.0.0/8", "!10.0.0.5"}));
  EXPECT_TRUE(key->restrict);
  ASSERT_TRUE(key->expiry.has_value());
  EXPECT_EQ(system_clock::to_time_t(*key->expiry), 1893456000);  // 2030-01-01T00:00:00Z
  EXPECT_TRUE(key->AllowsAddress("10.1.1.1"));
  EXPECT_FALSE(key->AllowsAddress("10.0.0.5"));
  // Option names are case-insensitive, as in sshd; values may hold quoted spaces.
  auto upper = ParseAuthorizedKeyLine(
      "RESTRICT,FROM=\"192.0.2.1, 192.0.2.2\" " + FirstLine(ed25519_), kHere);
  ASSERT_TRUE(upper.ok()) << upper.status().message();
  EXPECT_EQ(upper->from, (std::vector<std::string>{"192.0.2.1", "192.0.2.2"}));
}

TEST_F(KeyFiles, EveryOtherOptionIsRefusedByName) {
  for (const char* option : {"no-pty", "command=\"/bin/true\"", "permitopen=\"h:1\"",
                             "cert-authority", "no-port-forwarding", "environment=\"A=b\""}) {
    auto key = ParseAuthorizedKeyLine(std::string(option) + " " + FirstLine(ed25519_), kHere);
    ASSERT_FALSE(key.ok()) << option;
    std::string name(option, std::string_view(option).find('=') == std::string_view::npos
                                 ? std::strlen(option)
                                 : std::string_view(option).find('='));
    EXPECT_EQ(key.status().message(),
              "option \"" + name +
                  "\" is not supported: fordeler honours only from=, restrict and expiry-time=, "
                  "and refuses a key with any other option");
  }
  auto after = ParseAuthorizedKeyLine("restrict,pty " + FirstLine(ed25519_), kHere);
  ASSERT_FALSE(after.ok());
  EXPECT_NE(after.status().message().find("\"pty\""), std::string::npos);
}

TEST_F(KeyFiles, MalformedOptionsAreRefused) {
  std::string key = " " + FirstLine(ed25519_);
  for (const char* options :
       {"from=10.0.0.1", "from=\"10.0.0.1", "restrict=\"x\"", "from", "restrict,restrict",
        "from=\"*.example.com\"", "expiry-time=\"2030\"", "from=\"10.0.0.1\"x"}) {
    EXPECT_FALSE(ParseAuthorizedKeyLine(options + key, kHere).ok()) << options;
  }
}

TEST_F(KeyFiles, BlobTypeMustMatchTheLine) {
  std::string blob = Blob64(FirstLine(ed25519_));
  auto key = ParseAuthorizedKeyLine("ssh-rsa " + blob, kHere);
  ASSERT_FALSE(key.ok());
  EXPECT_EQ(key.status().message(), "the line says ssh-rsa but the key is ssh-ed25519");
}

TEST_F(KeyFiles, SignatureAlgorithmsAndOtherTypesAreNoKeyTypes) {
  std::string blob = Blob64(FirstLine(rsa_));
  auto sig = ParseAuthorizedKeyLine("rsa-sha2-256 " + blob, kHere);
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.status().message(),
            "rsa-sha2-256 is a signature algorithm, not a key type: an RSA key's type is ssh-rsa");
  for (const char* type :
       {"ssh-dss", "sk-ssh-ed25519@openssh.com", "ssh-ed25519-cert-v01@openssh.com"}) {
    auto key = ParseAuthorizedKeyLine(std::string(type) + " " + blob, kHere);
    ASSERT_FALSE(key.ok());
    EXPECT_NE(key.status().message().find("is not supported"), std::string::npos)
        << key.status().message();
  }
}

TEST(AuthorizedKeyLine, BadBase64AndTruncatedBlobsAreRefused) {
  auto bad = ParseAuthorizedKeyLine("ssh-ed25519 AAAA!!!!", kHere);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "the key is not valid base64");
  EXPECT_FALSE(ParseAuthorizedKeyLine("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA", kHere).ok());
  std::string truncated = "\0\0\0\x0bssh-ed25519\0\0\0\x20short"s;
  auto key = ParseAuthorizedKeyLine("ssh-ed25519 " + Base64Encode(truncated), kHere);
  ASSERT_FALSE(key.ok());
  EXPECT_NE(key.status().message().find("malformed ssh-ed25519 key"), std::string::npos);
  EXPECT_FALSE(ParseAuthorizedKeyLine("ssh-ed25519", kHere).ok());
}

TEST(Base64, RoundTripsAndIsStrict) {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10"}) {
    EXPECT_EQ(*Base64Decode(Base64Encode(s)), s);
  }
  EXPECT_EQ(Base64Encode("ab", false), "YWI");
  EXPECT_FALSE(Base64Decode("YWI").has_value());
  EXPECT_FALSE(Base64Decode("Y=WI").has_value());
  EXPECT_FALSE(Base64Decode("YW I").has_value());
}

TEST(ExpiryTime, UtcFormsAreExact) {
  auto at = [](const char* text) { return system_clock::to_time_t(*ParseExpiryTime(text)); };
  EXPECT_EQ(at("20300101Z"), 1893456000);
  EXPECT_EQ(at("203001010830Z"), 1893456000 + 8 * 3600 + 30 * 60);
  EXPECT_EQ(at("20300101083015Z"), 1893456000 + 8 * 3600 + 30 * 60 + 15);
}

TEST(ExpiryTime, WithoutZItIsLocalTime) {
  const char* old = std::getenv("TZ");
  std::string saved = old ? old : "";
  setenv("TZ", "Europe/Copenhagen", 1);
  tzset();
  auto winter = ParseExpiryTime("203001011200");  // CET, UTC+1
  auto summer = ParseExpiryTime("203007011200");  // CEST, UTC+2
  old ? setenv("TZ", saved.c_str(), 1) : unsetenv("TZ");
  tzset();
  ASSERT_TRUE(winter.ok() && summer.ok());
  EXPECT_EQ(system_clock::to_time_t(*winter), 1893456000 + 11 * 3600);
  EXPECT_EQ(system_clock::to_time_t(*summer), 1893456000 + 181 * 86400 + 10 * 3600);
}

TEST(ExpiryTime, MalformedTimesAreRefused) {
  for (const char* bad :
       {"", "Z", "2030", "2030010", "203001011", "20301301Z", "20300132Z", "20300230Z",
        "203001012460Z", "203001011261Z", "2030-01-01", "20300101X", "2030010112000Z"}) {
    EXPECT_FALSE(ParseExpiryTime(bad).ok()) << bad;
  }
}

TEST(ExpiryTime, KeyIsValidUntilItsExpiry) {
  AuthorizedKey key;
  key.expiry = *ParseExpiryTime("20300101Z");
  EXPECT_TRUE(key.ValidAt(*key.expiry - std::chrono::seconds(1)));
  EXPECT_FALSE(key.ValidAt(*key.expiry));
  EXPECT_TRUE(AuthorizedKey().ValidAt(system_clock::now()));
}

TEST_F(KeyFiles, FileSkipsCommentsAndReportsBadLinesWithTheirNumbers) {
  std::string path =
      dir_->Write("ak/authorized_keys",
                  "# vendor keys\n\n" + FirstLine(ed25519_) + "\r\n" + "ssh-ed25519 AAAA!!!!\n" +
                      "   # indented comment\n" + "no-pty " + FirstLine(ecdsa_) + "\n" +
                      FirstLine(rsa_short_) + "\n" + FirstLine(rsa_));  // no final newline
  std::vector<AuthorizedKey> keys;
  std::vector<ConfigError> errors;
  ReadAuthorizedKeysFile(path, SourceLocation{"main.toml", 9}, &keys, &errors);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0].where.ToString(), path + ":3");
  EXPECT_EQ(keys[0].comment, "test-ed25519");
  EXPECT_EQ(keys[1].where.ToString(), path + ":8");
  ASSERT_EQ(errors.size(), 3u) << testing::Describe(errors);
  EXPECT_EQ(errors[0].ToString(), path + ":4: the key is not valid base64");
  EXPECT_EQ(errors[1].where.line, 6);
  EXPECT_EQ(errors[2].ToString(),
            path + ":7: RSA key of 1024 bits: RSA keys need at least 2048 bits");
}

TEST(AuthorizedKeysFile, UnreadableOrWorldWritableFilesAreReportedWhereNamed) {
  TempDir dir;
  std::vector<AuthorizedKey> keys;
  std::vector<ConfigError> errors;
  ReadAuthorizedKeysFile(dir / "missing.pub", SourceLocation{"main.toml", 9}, &keys, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(),
            "main.toml:9: cannot read " + (dir / "missing.pub") + ": No such file or directory");
  std::string open = dir.Write("open.pub", "");
  chmod(open.c_str(), 0666);
  errors.clear();
  ReadAuthorizedKeysFile(open, SourceLocation{"main.toml", 10}, &keys, &errors);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].ToString(),
            "main.toml:10: " + open + " is writable by anyone: refused (chmod o-w)");
  EXPECT_TRUE(keys.empty());
}

TEST(ExpiryTime, FarFutureMeansNever) {
  // system_clock ends in 2262; a later expiry must not overflow into the past.
  auto far = ParseExpiryTime("29991231Z");
  ASSERT_TRUE(far.ok());
  EXPECT_EQ(*far, system_clock::time_point::max());
  EXPECT_GT(*far, system_clock::now());
}

// Found by fuzz_authorized_keys: a year before 1677 overflowed system_clock's nanoseconds
// (undefined behaviour). Such a key expired long ago.
TEST(ExpiryTime, FarPastMeansExpired) {
  for (const char* text : {"10301231Z", "103012312359", "00010101Z"}) {
    auto past = ParseExpiryTime(text);
    ASSERT_TRUE(past.ok()) << text;
    EXPECT_EQ(*past, system_clock::time_point::min()) << text;
  }
}

}  // namespace
}  // namespace fordeler
