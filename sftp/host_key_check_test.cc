#include "sftp/host_key_check.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace fordeler {
namespace {

class HostKeyCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("host_key_check_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Key(const std::string& name, mode_t mode) {
    auto path = (dir_ / name).string();
    std::ofstream(path) << "placeholder: only the file's owner and mode are checked\n";
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    return path;
  }

  static HostKeyIdentity Me() { return {::geteuid(), ::getegid()}; }

  std::filesystem::path dir_;
};

TEST_F(HostKeyCheckTest, AcceptsOwnerOnlyModesAndGroupReadByTheDaemonsGroup) {
  EXPECT_TRUE(CheckHostKeyPermissions({Key("a", 0600), Key("b", 0400)}, Me()).ok());
  // The file's group is ours (it was just created by us): root:fordeler 0640 in production.
  Status s = CheckHostKeyPermissions({Key("c", 0640)}, Me());
  EXPECT_TRUE(s.ok()) << s.message();
}

TEST_F(HostKeyCheckTest, RefusesOtherBitsAndGroupWriteAndNamesTheFile) {
  for (mode_t mode : {0644, 0604, 0602, 0601, 0620, 0660, 0610}) {
    std::string good = Key("good", 0600);
    std::string bad = Key("bad", mode);
    Status s = CheckHostKeyPermissions({good, bad}, Me());
    ASSERT_FALSE(s.ok()) << std::oct << mode;
    EXPECT_NE(s.message().find("unprotected host key " + bad), std::string::npos) << s.message();
  }
}

TEST_F(HostKeyCheckTest, RefusesGroupReadByAnotherGroup) {
  std::string key = Key("k", 0640);
  Status s = CheckHostKeyPermissions({key}, {::geteuid(), ::getegid() + 4242});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("not the daemon's group"), std::string::npos) << s.message();
}

TEST_F(HostKeyCheckTest, RefusesAnotherOwner) {
  std::string key = Key("k", 0600);
  uid_t other = ::geteuid() + 4242;
  HostKeyIdentity daemon = Me();
  if (::geteuid() == 0) {
    // Give the file to a uid that is neither the daemon's (root here) nor root.
    ASSERT_EQ(::chown(key.c_str(), other, static_cast<gid_t>(-1)), 0);
  } else {
    daemon.uid = other;  // the file is ours: a daemon running as another user must refuse it
  }
  Status s = CheckHostKeyPermissions({key}, daemon);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find("owned by uid"), std::string::npos) << s.message();
}

TEST_F(HostKeyCheckTest, MissingFileAndDirectoryAreErrors) {
  EXPECT_FALSE(CheckHostKeyPermissions({(dir_ / "missing").string()}, Me()).ok());
  EXPECT_FALSE(CheckHostKeyPermissions({dir_.string()}, Me()).ok());
}

TEST_F(HostKeyCheckTest, WithoutTheDaemonsIdentityOnlyWhatIsWrongForAnyUserIsAProblem) {
  EXPECT_EQ(HostKeyModeProblem(Key("a", 0600)), "");
  EXPECT_EQ(HostKeyModeProblem(Key("b", 0640)), "");               // the group may be the daemon's
  EXPECT_EQ(HostKeyModeProblem((dir_ / "missing").string()), "");  // reading is checked elsewhere
  std::string others = HostKeyModeProblem(Key("c", 0644));
  EXPECT_EQ(others.rfind("has mode 0644, which gives others access", 0), 0u) << others;
  EXPECT_NE(others.find("chmod 0600"), std::string::npos) << others;
  EXPECT_NE(HostKeyModeProblem(Key("d", 0660)).find("lets its group write it"), std::string::npos);
  EXPECT_EQ(HostKeyModeProblem(dir_.string()), "is not a regular file");
}

}  // namespace
}  // namespace fordeler
