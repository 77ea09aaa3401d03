#include "sftp/account_registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <string>
#include <vector>

#include "config/config.h"
#include "sftp/test_util.h"

namespace fordeler {
namespace {

using ::testing::HasSubstr;
using testing_util::FakeEnv;
using testing_util::TempDir;

// Contract §9: the jails and the spool on one filesystem. The other filesystem is a tmpfs
// mounted below the storage root, which needs root (CAP_SYS_ADMIN): without it the tests skip.
class RegistryFilesystemTest : public ::testing::Test {
 protected:
  void TearDown() override {  // before dir_ is removed
    for (auto it = mounts_.rbegin(); it != mounts_.rend(); ++it) umount2(it->c_str(), MNT_DETACH);
  }

  // Mounts a tmpfs at root/`rel` (made first); false, with why_, when mount(2) refuses.
  bool MountTmpfs(const std::string& rel) {
    std::string path = dir_.path() + "/" + rel;
    std::filesystem::create_directories(path);
    if (mount("tmpfs", path.c_str(), "tmpfs", 0, "size=1m,mode=0750") != 0) {
      why_ = "cannot mount a tmpfs at " + path +
             " (needs root / CAP_SYS_ADMIN): " + std::strerror(errno);
      return false;
    }
    mounts_.push_back(path);
    return true;
  }

  Config With(std::initializer_list<const char*> ids) {
    Config config;
    config.storage.root = dir_.path();
    for (const char* id : ids) {
      config.accounts.emplace_back();
      config.accounts.back().id = id;
    }
    return config;
  }

  TempDir dir_;
  FakeEnv env_;
  AccountRegistry registry_{&env_};
  std::vector<std::string> mounts_;
  std::string why_;
};

TEST_F(RegistryFilesystemTest, OneFilesystemIsFine) {
  ASSERT_TRUE(registry_.Configure(With({"acme", "other"})).ok());
  EXPECT_NE(registry_.JailOf("acme"), nullptr);
  EXPECT_NE(registry_.JailOf("other"), nullptr);
}

TEST_F(RegistryFilesystemTest, AccountsOnAnotherFilesystemAreRefused) {
  if (!MountTmpfs("accounts")) GTEST_SKIP() << why_;
  Status s = registry_.Configure(With({"acme"}));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(dir_.path() + "/accounts is on another filesystem (device "));
  EXPECT_THAT(s.message(), HasSubstr("than the storage root " + dir_.path() + " (device "));
  EXPECT_EQ(registry_.JailOf("acme"), nullptr);
}

TEST_F(RegistryFilesystemTest, AnInFolderOnAnotherFilesystemIsRefusedNamingBothDevices) {
  if (!MountTmpfs("accounts/acme/IN")) GTEST_SKIP() << why_;
  struct stat in, root;
  ASSERT_EQ(stat((dir_.path() + "/accounts/acme/IN").c_str(), &in), 0);
  ASSERT_EQ(stat(dir_.path().c_str(), &root), 0);
  auto device = [](dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); };
  Status s = registry_.Configure(With({"other", "acme"}));
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), dir_.path() + "/accounts/acme/IN is on another filesystem (device " +
                             device(in.st_dev) + ") than the storage root " + dir_.path() +
                             " (device " + device(root.st_dev) +
                             "): fordeler moves and links files between them");
  EXPECT_EQ(registry_.JailOf("acme"), nullptr);
  EXPECT_EQ(registry_.JailOf("other"), nullptr) << "a refused configuration added an account";
}

TEST_F(RegistryFilesystemTest, AReloadAddingSuchAnAccountIsRefusedAndTheOthersStay) {
  ASSERT_TRUE(registry_.Configure(With({"acme"})).ok());
  if (!MountTmpfs("accounts/newcomer/OUT")) GTEST_SKIP() << why_;
  Status s = registry_.Configure(With({"newcomer"}));
  EXPECT_THAT(s.message(), HasSubstr(dir_.path() + "/accounts/newcomer/OUT is on another"));
  EXPECT_EQ(registry_.JailOf("newcomer"), nullptr);
  EXPECT_NE(registry_.JailOf("acme"), nullptr) << "a refused reload dropped an account";
}

}  // namespace
}  // namespace fordeler
