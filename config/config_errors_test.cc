// Every kind of configuration error, with its exact file:line and message.
#include "config/config.h"

#include <gtest/gtest.h>

#include "config/config_testing.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;
using testing::FirstLine;
using testing::GenerateKey;
using testing::LoadConfigTest;
using testing::TempDir;

TEST_F(LoadConfigTest, UnknownKeysAreNamedWithTheClosestKnownKey) {
  LoadResult r = Load(
      "[server]\nlisten = [\"0.0.0.0:22\"]\nmax_sesions = 3\nbanana = 1\n\n"
      "[[acount]]\nid = \"x\"\n[[route]]\nid = \"r\"\nsendr = \"x\"\n");
  ExpectErrors(r, {main_ + ":3: [server] unknown key \"max_sesions\" (did you mean "
                           "\"max_sessions\"?)",
                   main_ + ":4: [server] unknown key \"banana\"",
                   main_ + ":6: unknown key \"acount\" (did you mean \"account\"?)",
                   main_ + ":8: route \"r\" missing required key \"data_area\"",
                   main_ + ":8: route \"r\" missing required key \"sender\"",
                   main_ + ":8: route \"r\" missing required key \"recipients\"",
                   main_ + ":8: route \"r\" missing required key \"authorities\"",
                   main_ + ":10: route \"r\" unknown key \"sendr\" (did you mean \"sender\"?)"});
}

TEST_F(LoadConfigTest, DuplicateAccountIdSaysWhereTheFirstWas) {
  LoadResult r = Load("[[account]]\nid = \"kmd\"\n\n[[account]]\nid = \"kmd\"\n");
  ExpectErrors(
      r, {main_ + ":5: account \"kmd\" id: account id \"kmd\" is defined twice (first at " + main_ +
          ":1)"});
}

TEST_F(LoadConfigTest, RouteNamingUnknownAccountsAndDataAreas) {
  LoadResult r = Load(R"([[account]]
id = "kmd"
[[account]]
id = "lis-aarhus"
[[data_area]]
id = "skole"
name = "Skole"
deliver_service = "A"
fetch_service = "B"
[[route]]
id = "r1"
data_area = "skolen"
sender = "kmd"
authorities = ["urn:oio:cvr-nr:55133018"]
recipients = ["kmd",
  "lis-arhus", "nobody", "lis"]
)");
  ExpectErrors(r, {main_ + ":12: route \"r1\" data_area: \"skolen\" is no data area (did you mean "
                           "\"skole\"?)",
                   main_ + ":16: route \"r1\" recipient: \"lis-arhus\" is no account (did you "
                           "mean \"lis-aarhus\"?)",
                   main_ + ":16: route \"r1\" recipient: \"nobody\" is no account",
                   // Too far for a misspelling, but the one id it abbreviates.
                   main_ + ":16: route \"r1\" recipient: \"lis\" is no account (did you mean "
                           "\"lis-aarhus\"?)"});
}

TEST_F(LoadConfigTest, BadDurationsAndSizesCarryTheParsersMessage) {
  LoadResult r = Load(
      "[server]\nlogin_grace = \"30\"\nidle_timeout = 30\n[delivery]\n"
      "max_file_size = \"10 parsecs\"\nretention = \"0s\"\n");
  ExpectErrors(r, {main_ + ":2: [server] login_grace: bad duration \"30\": missing unit (examples: "
                           "\"60s\", \"10m\", \"1h30m\", \"30d\")",
                   main_ + ":3: [server] idle_timeout must be a duration string such as \"60s\" "
                           "or \"30d\", not an integer",
                   main_ + ":5: [delivery] max_file_size: bad size \"10 parsecs\": unknown unit "
                           "\"parsecs\" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; case "
                           "matters) (examples: \"4096\", \"512MiB\", \"10GiB\")",
                   main_ + ":6: [delivery] retention: must be longer than zero"});
  r = Load("[delivery]\nretention = \"2d\"\n");
  ExpectErrors(r, {main_ + ":2: [delivery] retention: the warning (3d) must come before data "
                           "expires: retention_warning must be shorter than retention (2d)"});
}

TEST_F(LoadConfigTest, WorkerCountOutsideItsRangeIsRefused) {
  LoadResult r = Load("[delivery]\nworkers = 0\n");
  ExpectErrors(r, {main_ + ":2: [delivery] workers: 0 is out of range 1..256"});
}

TEST_F(LoadConfigTest, UnreadableAuthorizedKeysFileIsReportedWithStrerror) {
  LoadResult r = Load("[[account]]\nid = \"kmd\"\nauthorized_keys = \"keys/kmd.pub\"\n");
  ExpectErrors(r, {main_ + ":3: account \"kmd\" authorized_keys: cannot read " +
                   Etc("keys/kmd.pub") + ": No such file or directory"});
}

TEST_F(LoadConfigTest, ShortRsaKeyIsAConfigurationError) {
  std::string pub = GenerateKey(dir_, "etc/keys/weak", "rsa", 1024) + ".pub";
  LoadResult r = Load("[[account]]\nid = \"kmd\"\nauthorized_keys = \"keys/weak.pub\"\n");
  ExpectErrors(r, {pub + ":1: RSA key of 1024 bits: RSA keys need at least 2048 bits"});
}

TEST_F(LoadConfigTest, UnsupportedInlineKeyOptionIsRefused) {
  std::string pub = GenerateKey(dir_, "k", "ed25519") + ".pub";
  LoadResult r = Load("[[account]]\nid = \"kmd\"\nkeys = [\n  \"" + FirstLine(pub) +
                      "\",\n  \"no-pty " + FirstLine(pub) + "\",\n]\n");
  ExpectErrors(r, {main_ + ":5: account \"kmd\" keys[1]: option \"no-pty\" is not supported: "
                           "fordeler honours only from=, restrict and expiry-time=, and refuses "
                           "a key with any other option"});
}

TEST_F(LoadConfigTest, BadBase64InAnAuthorizedKeysFileNamesItsLine) {
  std::string keys = dir_.Write("etc/ak", "# comment\n\nssh-ed25519 AAAAC3Nza=C1lZDI1NTE5 x\n");
  LoadResult r = Load("[[account]]\nid = \"kmd\"\nauthorized_keys = \"ak\"\n");
  ExpectErrors(r, {keys + ":3: the key is not valid base64"});
}

TEST_F(LoadConfigTest, DataAreaDefinedTwiceAcrossFiles) {
  std::string area = "[[data_area]]\nid = \"skole\"\nname = \"Skole\"\n";
  std::string a = dir_.Write("etc/conf.d/a.toml", area +
                                                      "deliver_service = \"D1\"\n"
                                                      "fetch_service = \"F1\"\n");
  std::string b = dir_.Write("etc/conf.d/b.toml", "\n" + area +
                                                      "deliver_service = \"D2\"\n"
                                                      "fetch_service = \"F2\"\n");
  LoadResult r = Load("include = [\"conf.d/*.toml\"]\n");
  ExpectErrors(r, {b +
                   ":3: data_area \"skole\" id: data area id \"skole\" is defined twice "
                   "(first at " +
                   a + ":1)"});
}

TEST_F(LoadConfigTest, ServiceNamesMustBeUniqueAcrossDataAreas) {
  LoadResult r = Load(R"([[data_area]]
id = "a"
name = "A"
deliver_service = "D"
fetch_service = "F"
[[data_area]]
id = "b"
name = "B"
deliver_service = "D"
fetch_service = "F"
)");
  ExpectErrors(r, {main_ +
                       ":9: data_area \"b\" deliver_service: \"D\" is already data area \"a\"'s "
                       "deliver service (at " +
                       main_ + ":1)",
                   main_ +
                       ":10: data_area \"b\" fetch_service: \"F\" is already data area \"a\"'s "
                       "fetch service (at " +
                       main_ + ":1)"});
}

TEST_F(LoadConfigTest, WrongTypesAndShapes) {
  LoadResult r = Load(R"(include = "conf.d/*.toml"
server = 3
[account]
id = "a"
[[route]]
id = "r"
data_area = 5
sender = "a"
authorities = ["*", 7]
recipients = []
)");
  ExpectErrors(r, {main_ + ":1: include must be an array of strings, not a string",
                   main_ + ":2: server must be a table ([server]), not an integer",
                   main_ + ":3: account must be an array of tables: write [[account]], not a "
                           "table",
                   main_ + ":7: route \"r\" data_area must be a string, not an integer",
                   main_ + ":8: route \"r\" sender: \"a\" is no account",
                   main_ + ":9: route \"r\" authorities must be an array of strings: an "
                           "element, not an integer",
                   main_ + ":10: route \"r\" recipients: must name at least one"});
}

TEST_F(LoadConfigTest, IdsAuthoritiesAndValuesAreValidated) {
  LoadResult r = Load(R"([[account]]
id = "KMD Økonomi"
[[account]]
id = "kmd"
authority = "55133018"
quota_files = -1
[[route]]
id = "r"
data_area = "x"
sender = "kmd"
authorities = ["55133018"]
recipients = ["kmd", "kmd"]
)");
  ExpectErrors(
      r, {main_ + ":2: [[account]] id: \"KMD Økonomi\" must be 1-64 lowercase letters, "
                  "digits, '.', '_' or '-', starting with a letter or digit",
          main_ + ":5: account \"kmd\" authority: \"55133018\" is not a URN such as "
                  "\"urn:oio:cvr-nr:55133018\"",
          main_ + ":6: account \"kmd\" quota_files: -1 is out of range 0..9223372036854775807",
          main_ + ":9: route \"r\" data_area: \"x\" is no data area",
          main_ + ":11: route \"r\" authorities: \"55133018\" is neither \"*\" nor a URN "
                  "such as \"urn:oio:cvr-nr:55133018\"",
          main_ + ":12: route \"r\" recipients: \"kmd\" is named twice"});
}

TEST_F(LoadConfigTest, ServerSettingsAreValidated) {
  LoadResult r = Load(R"([server]
listen = ["0.0.0.0", "[::1]:99999", "::1:22", "localhost:22", "[::1]:22", "[::1]:22"]
host_keys = ["keys/none"]
max_sessions = 0
max_sessions_per_account = 4096
time_zone = "Mars/Olympus_Mons"
[delivery]
metadata_format = "xml"
)");
  ExpectErrors(
      r, {main_ +
              ":2: [server] listen: \"0.0.0.0\": no port (write \"0.0.0.0:2222\" or \"[::]:2222\")",
          main_ + ":2: [server] listen: \"[::1]:99999\": the port must be a number 0..65535 (write "
                  "\"0.0.0.0:2222\" or \"[::]:2222\")",
          main_ + ":2: [server] listen: \"::1:22\": an IPv6 address needs brackets (write "
                  "\"0.0.0.0:2222\" or \"[::]:2222\")",
          main_ + ":2: [server] listen: \"localhost:22\": the host must be an IPv4 address or an "
                  "IPv6 address in brackets (write \"0.0.0.0:2222\" or \"[::]:2222\")",
          main_ + ":2: [server] listen: \"[::1]:22\" is named twice",
          main_ + ":3: [server] host_keys: cannot read " + Etc("keys/none") +
              ": No such file or directory",
          main_ + ":4: [server] max_sessions: 0 is out of range 1..2147483647",
          main_ + ":5: [server] max_sessions_per_account: is more than max_sessions (2048)",
          main_ + ":6: [server] time_zone: time zone \"Mars/Olympus_Mons\" is unknown (not in "
                  "/usr/share/zoneinfo)",
          main_ + ":8: [delivery] metadata_format: \"xml\" is neither \"trigger\" nor "
                  "\"filemetadata\""});
}

TEST_F(LoadConfigTest, BadConnectionAndBanLimitsAreNamed) {
  LoadResult r = Load(
      "[server]\nmax_unauthenticated = 4\nmax_unauthenticated_per_address = 5\n"
      "max_handles_per_session = 0\nban_after = -1\nban_allow = [\"10.0.0.1/8\"]\n");
  ASSERT_EQ(r.errors.size(), 4u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), main_ + ":3");
  EXPECT_NE(r.errors[0].message.find("more than max_unauthenticated (4)"), std::string::npos)
      << r.errors[0].message;
  EXPECT_EQ(r.errors[1].where.ToString(), main_ + ":4");
  EXPECT_EQ(r.errors[2].where.ToString(), main_ + ":5");
  EXPECT_EQ(r.errors[3].where.ToString(), main_ + ":6");
  EXPECT_NE(r.errors[3].message.find("ban_allow pattern \"10.0.0.1/8\": "), std::string::npos)
      << r.errors[3].message;
  EXPECT_EQ(r.errors[3].message.find("from="), std::string::npos) << r.errors[3].message;
}

}  // namespace
}  // namespace fordeler
