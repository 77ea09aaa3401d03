#include "sftp/jail.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <set>
#include <string>

#include "sftp/test_util.h"

namespace fordeler {
namespace {

using testing_util::TempDir;

void WriteFile(const std::string& path, const std::string& content) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
  close(fd);
}

class JailTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    Jail::ForceOpenatFallbackForTesting(GetParam());
    Result<std::shared_ptr<Jail>> j = Jail::Open(dir_.path(), "acme", true);
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    jail_ = *j;
    out_ = dir_.path() + "/accounts/acme/OUT/";
    in_ = dir_.path() + "/accounts/acme/IN/";
    secret_ = dir_.path() + "/secret";
    WriteFile(secret_, "host secret");
  }
  void TearDown() override { Jail::ForceOpenatFallbackForTesting(false); }

  std::set<std::string> List(Folder f) {
    std::set<std::string> names;
    Result<DIR*> d = jail_->OpenDir(f);
    EXPECT_TRUE(d.ok());
    if (!d.ok()) return names;
    while (struct dirent* e = readdir(*d)) {
      struct stat st;
      std::string n = e->d_name;
      if (n[0] != '.' && jail_->Stat(f, n, &st).ok()) names.insert(n);
    }
    closedir(*d);
    return names;
  }

  TempDir dir_;
  std::shared_ptr<Jail> jail_;
  std::string out_, in_, secret_;
};

TEST_P(JailTest, CreatesLayout) {
  struct stat st;
  ASSERT_EQ(stat((dir_.path() + "/accounts/acme/IN").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  ASSERT_EQ(stat((dir_.path() + "/accounts/acme/OUT").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_TRUE(jail_->Stat(Folder::kRoot, "", &st).ok());
  EXPECT_TRUE(S_ISDIR(st.st_mode));
}

TEST_P(JailTest, OpensWritesAndReadsRegularFiles) {
  struct stat st;
  Result<int> fd = jail_->OpenFile(Folder::kOut, "data.csv", O_WRONLY | O_CREAT | O_EXCL, &st);
  ASSERT_TRUE(fd.ok()) << fd.status().ToString();
  ASSERT_EQ(write(*fd, "hello", 5), 5);
  close(*fd);
  fd = jail_->OpenFile(Folder::kOut, "data.csv", O_RDONLY, &st);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(st.st_size, 5);
  close(*fd);
  fd = jail_->OpenFile(Folder::kOut, "data.csv", O_WRONLY | O_TRUNC, &st);
  ASSERT_TRUE(fd.ok());
  EXPECT_EQ(st.st_size, 0);
  close(*fd);
  EXPECT_EQ(List(Folder::kOut), std::set<std::string>{"data.csv"});
}

TEST_P(JailTest, PlantedSymlinkIsNeverFollowed) {
  ASSERT_EQ(symlink(secret_.c_str(), (out_ + "link").c_str()), 0);
  // A dangling target outside the jail but inside the test's folder: should the jail ever follow
  // it, what it creates is cleaned up with the folder, not left on the host to fail later runs.
  const std::string nowhere = dir_.path() + "/nowhere";
  ASSERT_EQ(symlink(nowhere.c_str(), (out_ + "dangling").c_str()), 0);
  struct stat st;
  for (int flags : {O_RDONLY, O_WRONLY, O_WRONLY | O_TRUNC, O_WRONLY | O_CREAT, O_RDWR}) {
    Result<int> fd = jail_->OpenFile(Folder::kOut, "link", flags, &st);
    EXPECT_FALSE(fd.ok()) << flags;
    EXPECT_EQ(fd.status().code(), Status::Code::kNotFound);
  }
  EXPECT_FALSE(jail_->OpenFile(Folder::kOut, "dangling", O_WRONLY | O_CREAT, &st).ok());
  EXPECT_EQ(jail_->Stat(Folder::kOut, "link", &st).code(), Status::Code::kNotFound);
  EXPECT_TRUE(List(Folder::kOut).empty());
  EXPECT_FALSE(jail_->SetTimes(Folder::kOut, "link", 1, 1).ok());
  EXPECT_FALSE(jail_->Rename(Folder::kOut, "link", Folder::kOut, "x", true).ok());
  EXPECT_FALSE(jail_->Remove(Folder::kOut, "link").ok());
  // The target outside is untouched.
  ASSERT_EQ(stat(secret_.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);
  struct stat dangling;
  EXPECT_NE(stat(nowhere.c_str(), &dangling), 0);
}

// The callers pass single components (the SFTP policy normalises paths first); openat2's
// RESOLVE_BENEATH keeps even a name that climbs out inside the folder. The openat fallback has
// only O_NOFOLLOW and relies on the callers.
TEST_P(JailTest, Openat2RefusesANameThatClimbsOutOfTheFolder) {
  if (GetParam()) GTEST_SKIP() << "the openat fallback relies on validated names";
  struct open_how how = {};
  how.flags = O_PATH;
  how.resolve = RESOLVE_BENEATH;
  long probe = syscall(SYS_openat2, AT_FDCWD, ".", &how, sizeof(how));
  if (probe < 0) GTEST_SKIP() << "no openat2 here: errno " << errno;
  close(static_cast<int>(probe));
  WriteFile(in_ + "delivered", "for acme");
  struct stat st;
  for (int flags : {O_RDONLY, O_WRONLY, O_WRONLY | O_CREAT}) {
    EXPECT_FALSE(jail_->OpenFile(Folder::kOut, "../IN/delivered", flags, &st).ok()) << flags;
    EXPECT_FALSE(jail_->OpenFile(Folder::kOut, "../../../secret", flags, &st).ok()) << flags;
    EXPECT_FALSE(jail_->OpenFile(Folder::kIn, "../OUT/new", flags, &st).ok()) << flags;
  }
  EXPECT_TRUE(List(Folder::kOut).empty());
  ASSERT_EQ(stat(secret_.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);
}

TEST_P(JailTest, SymlinkedFolderIsRefusedAtOpen) {
  TempDir other;
  ASSERT_EQ(mkdir((other.path() + "/accounts").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((other.path() + "/accounts/evil").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((other.path() + "/accounts/evil/IN").c_str(), 0700), 0);
  ASSERT_EQ(symlink(dir_.path().c_str(), (other.path() + "/accounts/evil/OUT").c_str()), 0);
  auto evil = Jail::Open(other.path(), "evil", false);
  ASSERT_FALSE(evil.ok());
  EXPECT_EQ(evil.status().message(), "folder accounts/evil/OUT: Not a directory");
  ASSERT_EQ(unlink((other.path() + "/accounts/evil/OUT").c_str()), 0);
  ASSERT_EQ(close(creat((other.path() + "/accounts/evil/OUT").c_str(), 0600)), 0);
  evil = Jail::Open(other.path(), "evil", true);  // which account and folder is wrong, and why
  ASSERT_FALSE(evil.ok());
  EXPECT_EQ(evil.status().message(), "folder accounts/evil/OUT: Not a directory");
  EXPECT_FALSE(Jail::Open(other.path(), "..", true).ok());
  EXPECT_FALSE(Jail::Open(other.path(), "a/b", true).ok());
}

TEST_P(JailTest, PlantedFifoIsRefusedWithoutBlocking) {
  ASSERT_EQ(mkfifo((out_ + "fifo").c_str(), 0600), 0);
  ASSERT_EQ(mkfifo((in_ + "fifo").c_str(), 0600), 0);
  struct stat st;
  for (int flags : {O_RDONLY, O_WRONLY, O_RDWR, O_WRONLY | O_CREAT}) {
    EXPECT_EQ(jail_->OpenFile(Folder::kOut, "fifo", flags, &st).status().code(),
              Status::Code::kNotFound);
  }
  EXPECT_EQ(jail_->OpenFile(Folder::kIn, "fifo", O_RDONLY, &st).status().code(),
            Status::Code::kNotFound);
  EXPECT_EQ(jail_->Stat(Folder::kOut, "fifo", &st).code(), Status::Code::kNotFound);
  EXPECT_TRUE(List(Folder::kOut).empty());
}

TEST_P(JailTest, DirectoriesAreNotFiles) {
  ASSERT_EQ(mkdir((out_ + "sub").c_str(), 0700), 0);
  struct stat st;
  EXPECT_FALSE(jail_->OpenFile(Folder::kOut, "sub", O_RDONLY, &st).ok());
  EXPECT_FALSE(jail_->OpenFile(Folder::kOut, "sub", O_WRONLY | O_CREAT, &st).ok());
  EXPECT_FALSE(jail_->Stat(Folder::kOut, "sub", &st).ok());
  EXPECT_FALSE(jail_->Remove(Folder::kOut, "sub").ok());
  EXPECT_FALSE(jail_->OpenFile(Folder::kRoot, "IN", O_RDONLY, &st).ok());
}

// Hard links: allowed in /IN (delivery links one spooled file into several /IN folders),
// refused in /OUT, where writing through one would change bytes visible elsewhere.
TEST_P(JailTest, HardLinksAreRefusedInOutAndAllowedInIn) {
  ASSERT_EQ(link(secret_.c_str(), (out_ + "hard").c_str()), 0);
  struct stat st;
  for (int flags : {O_RDONLY, O_WRONLY, O_WRONLY | O_TRUNC}) {
    EXPECT_EQ(jail_->OpenFile(Folder::kOut, "hard", flags, &st).status().code(),
              Status::Code::kPermissionDenied);
  }
  ASSERT_EQ(stat(secret_.c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 11);  // O_TRUNC never truncated it
  ASSERT_EQ(link(secret_.c_str(), (in_ + "delivered").c_str()), 0);
  Result<int> fd = jail_->OpenFile(Folder::kIn, "delivered", O_RDONLY, &st);
  ASSERT_TRUE(fd.ok());
  close(*fd);
}

TEST_P(JailTest, RenameRefusesToOverwriteUnlessAsked) {
  WriteFile(out_ + "a", "A");
  WriteFile(out_ + "b", "B");
  EXPECT_EQ(jail_->Rename(Folder::kOut, "a", Folder::kOut, "b", false).code(),
            Status::Code::kAlreadyExists);
  EXPECT_TRUE(jail_->Rename(Folder::kOut, "a", Folder::kOut, "b", true).ok());
  EXPECT_EQ(List(Folder::kOut), std::set<std::string>{"b"});
}

TEST_P(JailTest, StatVfsWorksOnTheFolderFd) {
  struct statvfs sv;
  EXPECT_TRUE(jail_->StatVfs(Folder::kOut, &sv).ok());
  EXPECT_GT(sv.f_bsize, 0u);
}

INSTANTIATE_TEST_SUITE_P(OpenPath, JailTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "Fallback" : "Openat2"; });

}  // namespace
}  // namespace fordeler
