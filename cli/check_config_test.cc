#include "cli/check_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include <nlohmann/json.hpp>

#include "config/config_testing.h"

namespace fordeler::cli {
namespace {

using fordeler::testing::GenerateKey;
using fordeler::testing::TempDir;

// check-config reads host keys as fordelerd does: every configuration here has a real one.
constexpr const char* kHostKey = "host_keys = [\"host_ed25519\"]\n";

TEST(CheckConfig, GoodConfigurationPrintsASummaryAndExitsZero) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  std::string path =
      dir.Write("fordeler.toml", "[server]\nlisten = [\"127.0.0.1:2222\", \"[::1]:2222\"]\n" +
                                     std::string(kHostKey) +
                                     "[[account]]\nid = \"a\"\n[[account]]\nid = \"b\"\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitOk);
  EXPECT_EQ(out.str(), path +
                           ": configuration OK\n  accounts:   2\n  data areas: 0\n"
                           "  routes:     0\n  listen:     127.0.0.1:2222, [::1]:2222\n");
  EXPECT_EQ(err.str(), "");
}

TEST(CheckConfig, ErrorsGoToStderrAsFileLineMessageAndExitTwo) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  std::string path = dir.Write("fordeler.toml", "[server]\nlistn = []\n" + std::string(kHostKey) +
                                                    "[[account]]\nid = \"A\"\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitUsage);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), path + ":2: [server] unknown key \"listn\" (did you mean \"listen\"?)\n" +
                           path +
                           ":5: [[account]] id: \"A\" must be 1-64 lowercase letters, digits, "
                           "'.', '_' or '-', starting with a letter or digit\n"
                           "fordeler: 2 configuration errors\n");
}

TEST(CheckConfig, JsonCarriesErrorsAndCounts) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  std::string bad = dir.Write(
      "bad.toml", "[delivery]\nretention = \"forever\"\n[server]\n" + std::string(kHostKey));
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(bad, true, out, err), kExitUsage);
  auto doc = nlohmann::json::parse(out.str());
  EXPECT_EQ(doc["ok"], false);
  EXPECT_EQ(doc["config"], bad);
  ASSERT_EQ(doc["errors"].size(), 1u);
  EXPECT_EQ(doc["errors"][0]["file"], bad);
  EXPECT_EQ(doc["errors"][0]["line"], 2);
  EXPECT_TRUE(doc["errors"][0]["message"].get<std::string>().starts_with(
      "[delivery] retention: bad duration"));
  EXPECT_TRUE(doc["accounts"].is_null());

  std::string good =
      dir.Write("good.toml", "[server]\n" + std::string(kHostKey) + "[[account]]\nid = \"a\"\n");
  std::ostringstream out2;
  EXPECT_EQ(RunCheckConfig(good, true, out2, err), kExitOk);
  doc = nlohmann::json::parse(out2.str());
  EXPECT_EQ(doc["ok"], true);
  EXPECT_EQ(doc["errors"], nlohmann::json::array());
  EXPECT_EQ(doc["warnings"], nlohmann::json::array());
  EXPECT_EQ(doc["accounts"], 1);
  EXPECT_EQ(doc["data_areas"], 0);
  EXPECT_EQ(doc["routes"], 0);
  EXPECT_EQ(doc["listen"], nlohmann::json::array({"0.0.0.0:2222"}));
  EXPECT_EQ(err.str(), "");
}

TEST(CheckConfig, AHostKeyTheServerCannotUseIsAnErrorAtItsLine) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  std::string path = dir.Write("fordeler.toml", "[server]\nhost_keys = [\"host_ed25519.pub\"]\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitUsage);
  EXPECT_EQ(err.str(), path + ":2: [server] host_keys: " + dir / "host_ed25519.pub" +
                           " is a public key; host_keys names the private key (the file without "
                           ".pub)\nfordeler: 1 configuration error\n");
}

// The storage as fordelerd would find it: a folder it uses that is a file or a symlink (or on
// another file system: tests/e2e/test_operator_faults.py, with a mount) is an error at the
// account's line, or [storage] root's for fordelerd's own folders; fordelerd would not start.
TEST(CheckConfig, StorageFoldersFordelerdWouldRefuseAreErrors) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  const std::string root = dir / "state";
  std::filesystem::create_directories(root + "/accounts/a/IN");
  std::filesystem::create_directories(root + "/accounts/b");
  std::filesystem::create_directories(root + "/elsewhere");
  std::filesystem::create_symlink(root + "/elsewhere", root + "/accounts/b/IN");
  dir.Write("state/spool", "not a folder");
  std::string path = dir.Write("fordeler.toml", "[storage]\nroot = \"" + root + "\"\n[server]\n" +
                                                    std::string(kHostKey) +
                                                    "[[account]]\nid = \"a\"\n"
                                                    "[[account]]\nid = \"b\"\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitUsage);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), path + ":2: " + root + "/spool is not a folder\n" + path +
                           ":7: account b: " + root +
                           "/accounts/b/IN is a symlink: fordelerd follows none\n"
                           "fordeler: 2 configuration errors\n");
  // Folders not made yet are fine: fordelerd makes them.
  std::filesystem::remove(root + "/spool");
  std::filesystem::remove(root + "/accounts/b/IN");
  std::ostringstream out2, err2;
  EXPECT_EQ(RunCheckConfig(path, false, out2, err2), kExitOk);
  EXPECT_EQ(err2.str(), "");
}

// fordelerd makes the storage root (and the folders above it), but not a folder elsewhere for the
// database: without it, it would make the root and then refuse to start. check-config says so at
// the line of [database] path.
TEST(CheckConfig, ADatabaseFolderFordelerdWouldNotFindIsAnErrorAtPathsLine) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  std::string path = dir.Write("fordeler.toml", "[server]\n" + std::string(kHostKey) +
                                                    "[storage]\nroot = \"st4\"\n"
                                                    "[database]\npath = \"st4db/sub/audit.db\"\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitUsage);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), path + ":6: [database] path: the folder " + dir / "st4db/sub" +
                           " does not exist (fordelerd makes the storage root only), so "
                           "fordelerd would not start\nfordeler: 1 configuration error\n");
  std::ostringstream json;
  EXPECT_EQ(RunCheckConfig(path, true, json, err), kExitUsage);
  auto doc = nlohmann::json::parse(json.str());
  ASSERT_EQ(doc["errors"].size(), 1u);
  EXPECT_EQ(doc["errors"][0]["line"], 6);

  dir.Write("st4db/sub", "not a folder");
  std::ostringstream out2, err2;
  EXPECT_EQ(RunCheckConfig(path, false, out2, err2), kExitUsage);
  EXPECT_EQ(err2.str(), path + ":6: [database] path: " + dir / "st4db/sub" +
                            " is not a folder\nfordeler: 1 configuration error\n");

  std::filesystem::remove(dir / "st4db/sub");
  std::filesystem::create_directory(dir / "st4db/sub");
  std::ostringstream out3, err3;
  EXPECT_EQ(RunCheckConfig(path, false, out3, err3), kExitOk);
  EXPECT_EQ(err3.str(), "");
}

// In the storage root, beside it or above it, the database's folder is made with the root.
TEST(CheckConfig, ADatabaseFolderMadeWithTheStorageRootIsFine) {
  TempDir dir;
  GenerateKey(dir, "host_ed25519", "ed25519");
  for (const char* database : {"", "[database]\npath = \"new/state/audit.db\"\n",
                               "[database]\npath = \"new/audit.db\"\n"}) {
    std::string path =
        dir.Write("fordeler.toml", "[server]\n" + std::string(kHostKey) +
                                       "[storage]\nroot = \"new/state\"\n" + database);
    std::ostringstream out, err;
    EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitOk) << database << err.str();
    EXPECT_EQ(err.str(), "");
  }
  // A root that is not yet there, with the database beside a sibling of it: not made.
  std::string path = dir.Write("fordeler.toml", "[server]\n" + std::string(kHostKey) +
                                                    "[storage]\nroot = \"new/state\"\n"
                                                    "[database]\npath = \"new/db/audit.db\"\n");
  std::ostringstream out, err;
  EXPECT_EQ(RunCheckConfig(path, false, out, err), kExitUsage);
  EXPECT_NE(err.str().find(path + ":6: [database] path: the folder " + dir / "new/db"),
            std::string::npos)
      << err.str();
}

}  // namespace
}  // namespace fordeler::cli
