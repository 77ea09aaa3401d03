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

// The configuration of contract §9 spread over a main file and includes, with relative paths.
class FullConfigTest : public LoadConfigTest {
 protected:
  LoadResult LoadFull() {
    GenerateKey(dir_, "etc/keys/ssh_host_ed25519_key", "ed25519");
    std::string kmd = GenerateKey(dir_, "etc/keys/kmd", "ed25519") + ".pub";
    std::string flis = GenerateKey(dir_, "flis", "ecdsa", 256) + ".pub";
    dir_.Write("etc/keys/kmd-authorized", "# KMD\n" + FirstLine(kmd) + "\n");
    dir_.Write("etc/conf.d/10-accounts.toml",
               "[[account]]\nid = \"flis\"\nkeys = [\"from=\\\"10.0.0.0/8\\\" " + FirstLine(flis) +
                   "\"]\n\n[[account]]\nid = \"lis-aarhus\"\nauthority = "
                   "\"urn:oio:cvr-nr:55133017\"\nit_system = \"lis\"\n");
    dir_.Write(
        "etc/conf.d/20-areas.toml",
        "[[data_area]]\nid = \"oekonomi\"\nname = \"Økonomi\"\n"
        "deliver_service = \"FLISOekonomiAflever_1\"\nfetch_service = \"FLISOekonomiHent_1\"\n");
    dir_.Write("etc/conf.d/README", "not toml: not matched by the glob\n");
    dir_.Write(
        "etc/extra/routes.toml",
        "[[route]]\nid = \"oekonomi-kmd\"\ndata_area = \"oekonomi\"\nsender = "
        "\"kmd-oekonomi\"\nauthorities = [\"*\"]\nrecipients = [\"flis\", \"lis-aarhus\"]\n");
    return Load(R"(include = ["conf.d/*.toml", "extra/routes.toml"]

[server]
listen = ["127.0.0.1:2222", "[::1]:2222"]
host_keys = ["keys/ssh_host_ed25519_key"]
max_sessions_per_account = 4
max_sessions = 100
login_grace = "10s"
idle_timeout = "5m"
time_zone = "UTC"
threads = 2

[storage]
root = "../var/./fordeler"

[delivery]
trigger_grace = "90s"
retention = "14d"
retention_warning = "2d"
max_file_size = "1GiB"
metadata_format = "filemetadata"
workers = 24

[[account]]
id = "kmd-oekonomi"
authority = "urn:oio:cvr-nr:55133018"
it_system = "kmd-oekonomi"
authorized_keys = "keys/kmd-authorized"
quota = "200GiB"
quota_files = 100000
out_quota = "50GiB"
)");
  }
};

TEST_F(FullConfigTest, SettingsAndRelativePaths) {
  LoadResult r = LoadFull();
  ASSERT_TRUE(r.errors.empty()) << testing::Describe(r.errors);
  ASSERT_NE(r.config, nullptr);
  const Config& c = *r.config;
  EXPECT_EQ(c.path, main_);
  EXPECT_EQ(c.server.listen, (std::vector<std::string>{"127.0.0.1:2222", "[::1]:2222"}));
  EXPECT_EQ(c.server.host_keys, std::vector<std::string>{Etc("keys/ssh_host_ed25519_key")});
  EXPECT_EQ(c.server.max_sessions_per_account, 4);
  EXPECT_EQ(c.server.max_sessions, 100);
  EXPECT_EQ(c.server.login_grace, milliseconds(10'000));
  EXPECT_EQ(c.server.idle_timeout, milliseconds(300'000));
  EXPECT_EQ(c.server.time_zone, "UTC");
  EXPECT_EQ(c.server.threads, 2);
  EXPECT_EQ(c.storage.root, dir_ / "var/fordeler");
  EXPECT_EQ(c.database.path, dir_ / "var/fordeler/audit.db");  // follows the root
  EXPECT_EQ(c.delivery.trigger_grace, milliseconds(90'000));
  EXPECT_EQ(c.delivery.retention, milliseconds(14LL * 86'400'000));
  EXPECT_EQ(c.delivery.retention_warning, milliseconds(2LL * 86'400'000));
  EXPECT_EQ(c.delivery.max_file_size, 1ULL << 30);
  EXPECT_EQ(c.delivery.metadata_format, MetadataFormat::kFileMetadata);
  EXPECT_EQ(c.delivery.workers, 24);
}

TEST_F(FullConfigTest, EntriesFromTheMainFileAndIncludes) {
  LoadResult r = LoadFull();
  ASSERT_TRUE(r.errors.empty()) << testing::Describe(r.errors);
  ASSERT_NE(r.config, nullptr);
  const Config& c = *r.config;
  ASSERT_EQ(c.accounts.size(), 3u);
  const Account* k = c.FindAccount("kmd-oekonomi");
  ASSERT_NE(k, nullptr);
  EXPECT_EQ(k->authority, "urn:oio:cvr-nr:55133018");
  EXPECT_EQ(k->it_system, "kmd-oekonomi");
  EXPECT_EQ(k->quota, 200ULL << 30);
  EXPECT_EQ(k->quota_files, 100000u);
  EXPECT_EQ(k->out_quota, 50ULL << 30);
  EXPECT_EQ(k->where.ToString(), main_ + ":24");
  ASSERT_EQ(k->keys.size(), 1u);
  EXPECT_EQ(k->keys[0].type, "ssh-ed25519");
  EXPECT_EQ(k->keys[0].where.ToString(), Etc("keys/kmd-authorized") + ":2");
  const Account* f = c.FindAccount("flis");
  ASSERT_NE(f, nullptr);
  ASSERT_EQ(f->keys.size(), 1u);
  EXPECT_EQ(f->keys[0].type, "ecdsa-sha2-nistp256");
  EXPECT_EQ(f->keys[0].from, std::vector<std::string>{"10.0.0.0/8"});
  EXPECT_EQ(f->keys[0].where.ToString(), Etc("conf.d/10-accounts.toml") + ":3");
  EXPECT_FALSE(f->quota.has_value());
  EXPECT_TRUE(c.FindAccount("lis-aarhus")->keys.empty());

  ASSERT_EQ(c.data_areas.size(), 1u);
  EXPECT_EQ(c.FindDataArea("oekonomi")->name, "Økonomi");
  EXPECT_EQ(c.FindDataArea("oekonomi")->fetch_service, "FLISOekonomiHent_1");
  ASSERT_EQ(c.routes.size(), 1u);
  EXPECT_EQ(c.routes[0].id, "oekonomi-kmd");
  EXPECT_EQ(c.routes[0].authorities, std::vector<std::string>{"*"});
  EXPECT_EQ(c.routes[0].recipients, (std::vector<std::string>{"flis", "lis-aarhus"}));
  EXPECT_EQ(c.routes[0].where.ToString(), Etc("extra/routes.toml") + ":1");
}

TEST_F(LoadConfigTest, AnEmptyFileGivesTheDefaults) {
  LoadResult r = Load("# nothing configured yet\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->server.listen, std::vector<std::string>{"0.0.0.0:2222"});
  EXPECT_EQ(r.config->server.max_sessions_per_account, 16);
  EXPECT_EQ(r.config->server.max_sessions, 2048);
  EXPECT_EQ(r.config->storage.root, "/var/lib/fordeler");
  EXPECT_EQ(r.config->database.path, "/var/lib/fordeler/audit.db");
  EXPECT_EQ(r.config->delivery.trigger_grace, milliseconds(60'000));
  EXPECT_EQ(r.config->delivery.metadata_format, MetadataFormat::kTrigger);
  EXPECT_EQ(r.config->delivery.workers, 64);
  EXPECT_TRUE(r.config->accounts.empty());
}

TEST_F(LoadConfigTest, ExplicitDatabasePathWins) {
  LoadResult r = Load("[storage]\nroot = \"/srv/f\"\n[database]\npath = \"db/audit.db\"\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->storage.root, "/srv/f");
  EXPECT_EQ(r.config->database.path, Etc("db/audit.db"));
}

TEST_F(LoadConfigTest, SettingsAndIncludeOnlyInTheMainFile) {
  std::string inc = dir_.Write("etc/conf.d/x.toml",
                               "include = [\"more/*.toml\"]\n\n[server]\nlisten = [\"1.2.3.4:1\"]\n"
                               "[[account]]\nid = \"fine\"\n[delivery]\n");
  LoadResult r = Load("include = [\"conf.d/*.toml\"]\n");
  ExpectErrors(r, {inc + ":1: include may stand only in the main file " + main_ +
                       " (included files do not include others)",
                   inc + ":3: [server] may stand only in the main file " + main_ +
                       "; included files hold only [[account]], [[data_area]] and [[route]]",
                   inc + ":7: [delivery] may stand only in the main file " + main_ +
                       "; included files hold only [[account]], [[data_area]] and [[route]]"});
}

TEST_F(LoadConfigTest, IncludePatternsAndUnreadableFiles) {
  LoadResult r = Load("include = [\n  \"conf.d/*.toml\",\n  \"missing.toml\",\n  \"\",\n]\n");
  ExpectErrors(
      r, {main_ + ":3: include: cannot read " + Etc("missing.toml") + ": No such file or directory",
          main_ + ":4: include: an empty pattern"});
  ExpectErrors(LoadConfig(dir_ / "nowhere.toml"),
               {dir_ / "nowhere.toml" + ": cannot read " + (dir_ / "nowhere.toml") +
                ": No such file or directory"});
}

TEST_F(LoadConfigTest, AWildcardThatMatchesNothingIsAWarning) {
  dir_.Write("etc/conf.d/a.toml", "[[account]]\nid = \"a\"\n");
  LoadResult r = Load("include = [\"conf.d/*.tml\",\n  \"conf/*.toml\", \"conf.d/*.toml\"]\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->accounts.size(), 1u);
  std::vector<std::string> got;
  for (const ConfigError& w : r.warnings) got.push_back(w.ToString());
  EXPECT_EQ(got, (std::vector<std::string>{
                     main_ + ":1: include: " + Etc("conf.d/*.tml") + " matches no file",
                     main_ + ":2: include: " + Etc("conf/*.toml") +
                         " matches no file (there is no folder " + Etc("conf") + ")"}));
}

// fordelerd and check-config hand the loader a check of each host key (sftp/host_keys.h); its
// answer is an error at the key's line, and the server must then have at least one key.
TEST_F(LoadConfigTest, TheHostKeyCheckReportsAtTheKeysLine) {
  dir_.Write("etc/good_key", "k");
  dir_.Write("etc/bad_key", "k");
  LoadOptions options;
  std::vector<std::string> asked;
  options.host_key_problem = [&](const std::string& path) -> std::string {
    asked.push_back(path);
    return path.ends_with("bad_key") ? "is not a key" : "";
  };
  main_ = dir_.Write("etc/fordeler.toml",
                     "[server]\nhost_keys = [\n  \"good_key\",\n  \"bad_key\",\n]\n");
  ExpectErrors(LoadConfig(main_, options),
               {main_ + ":4: [server] host_keys: " + Etc("bad_key") + " is not a key"});
  EXPECT_EQ(asked, (std::vector<std::string>{Etc("good_key"), Etc("bad_key")}));

  main_ = dir_.Write("etc/fordeler.toml", "[server]\nhost_keys = []\n");
  ExpectErrors(LoadConfig(main_, options),
               {main_ + ":2: [server] host_keys: fordelerd needs at least one host key"});
  main_ = dir_.Write("etc/fordeler.toml", "[storage]\nroot = \"/srv/fordeler\"\n");
  ExpectErrors(LoadConfig(main_, options),
               {main_ + ": [server] host_keys: fordelerd needs at least one host key (e.g. "
                        "ssh-keygen -t ed25519 -N '' -f /etc/fordeler/keys/ssh_host_ed25519_key)"});
  // Without the check (the CLI's read commands), no host key is needed.
  EXPECT_NE(LoadConfig(main_).config, nullptr);
}

TEST_F(LoadConfigTest, TomlSyntaxErrorsGiveTheirLine) {
  std::string inc = dir_.Write("etc/conf.d/bad.toml", "[[account]]\nid = \"a\"\nid = \"b\"\n");
  LoadResult r = Load("include = [\"conf.d/*.toml\"]\n[server]\nlisten = [\"0.0.0.0:1\"\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), main_ + ":3");  // the array never closes
  EXPECT_TRUE(r.errors[0].message.starts_with("TOML syntax error: ")) << r.errors[0].message;
  r = Load("include = [\"conf.d/*.toml\"]\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), inc + ":3");
  // A route naming what the broken file defines is not also reported: the file was not read.
  r = Load(
      "include = [\"conf.d/*.toml\"]\n[[route]]\nid = \"r\"\ndata_area = \"x\"\nsender = "
      "\"a\"\nauthorities = [\"*\"]\nrecipients = [\"a\"]\n");
  ASSERT_EQ(r.errors.size(), 1u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), inc + ":3");
}

TEST_F(LoadConfigTest, AllErrorsOfAllFilesAreCollected) {
  std::string inc = dir_.Write("etc/conf.d/r.toml", "[[route]]\nid = \"r\"\nfoo = 1\n");
  LoadResult r = Load(
      "include = [\"conf.d/*.toml\"]\n[server]\nlisten = []\n"
      "[[account]]\nid = \"-bad\"\n");
  ASSERT_EQ(r.errors.size(), 7u) << testing::Describe(r.errors);
  EXPECT_EQ(r.errors[0].where.ToString(), main_ + ":3");
  EXPECT_EQ(r.errors[1].where.ToString(), main_ + ":5");
  EXPECT_EQ(r.errors[2].where.ToString(), inc + ":1");  // route "r" misses four keys
  EXPECT_EQ(r.errors[6].where.ToString(), inc + ":3");
}

TEST_F(LoadConfigTest, TheSameFileIsIncludedOnceAndTheMainFileNever) {
  dir_.Write("etc/conf.d/a.toml", "[[account]]\nid = \"a\"\n");
  LoadResult r = Load("include = [\"conf.d/*.toml\", \"conf.d/a.toml\", \"*.toml\"]\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  EXPECT_EQ(r.config->accounts.size(), 1u);
}

TEST_F(LoadConfigTest, ConnectionAndBanLimitsAreReadWithDefaults) {
  LoadResult r = Load("# defaults\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  const ServerConfig& d = r.config->server;
  EXPECT_EQ(d.max_unauthenticated, 256);
  EXPECT_EQ(d.max_unauthenticated_per_address, 32);
  EXPECT_EQ(d.max_handles_per_session, 1024);
  EXPECT_EQ(d.ban_after, 10);
  EXPECT_EQ(d.ban_window, milliseconds(600'000));
  EXPECT_EQ(d.ban_duration, milliseconds(900'000));
  EXPECT_TRUE(d.ban_allow.empty());
  r = Load(
      "[server]\nmax_unauthenticated = 20\nmax_unauthenticated_per_address = 3\n"
      "max_handles_per_session = 100\nban_after = 0\nban_window = \"1m\"\n"
      "ban_duration = \"2h\"\nban_allow = [\"10.0.0.0/8\", \"2001:db8::1\"]\n");
  ASSERT_NE(r.config, nullptr) << testing::Describe(r.errors);
  const ServerConfig& s = r.config->server;
  EXPECT_EQ(s.max_unauthenticated, 20);
  EXPECT_EQ(s.max_unauthenticated_per_address, 3);
  EXPECT_EQ(s.max_handles_per_session, 100);
  EXPECT_EQ(s.ban_after, 0);
  EXPECT_EQ(s.ban_window, milliseconds(60'000));
  EXPECT_EQ(s.ban_duration, milliseconds(7'200'000));
  EXPECT_EQ(s.ban_allow, (std::vector<std::string>{"10.0.0.0/8", "2001:db8::1"}));
}

}  // namespace
}  // namespace fordeler
