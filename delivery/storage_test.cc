// Storage's own folders (spool, staging, quarantine) followed to their paths while the daemon
// runs: an operator removes, moves away or replaces one (docs/operations.md).
#include "delivery/storage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "delivery/file_ops.h"

namespace fordeler {
namespace {

class StorageTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fordeler-storage-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto opened = Storage::Open(Env::Default(), root_);
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    storage_ = std::move(*opened);
  }
  void TearDown() override {
    storage_.reset();
    ASSERT_EQ(std::system(("rm -rf " + root_).c_str()), 0);
  }

  std::string At(const std::string& rel) const { return root_ + "/" + rel; }
  void Run(const std::string& cmd) { ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd; }
  ino_t Inode(const std::string& path) const {
    struct stat st;
    return lstat(path.c_str(), &st) == 0 ? st.st_ino : 0;
  }
  ino_t InodeOf(int fd) const {
    struct stat st;
    return fstat(fd, &st) == 0 ? st.st_ino : 0;
  }
  // Creates `name` in the folder the storage hands out now.
  Status Create(int dir, const std::string& name) {
    auto fd = Env::Default()->OpenAt(dir, name, O_WRONLY | O_CREAT | O_EXCL, 0640);
    if (!fd.ok()) return fd.status();
    close(*fd);
    return Status::Ok();
  }

  std::string root_;
  std::unique_ptr<Storage> storage_;
};

TEST_F(StorageTest, FoldersInPlaceAreKeptAsTheyAre) {
  const int spool = storage_->spool();
  const uint64_t generation = storage_->generation();
  EXPECT_TRUE(storage_->Refresh().ok());
  EXPECT_EQ(storage_->spool(), spool);
  EXPECT_EQ(storage_->generation(), generation);
  EXPECT_EQ(InodeOf(storage_->staging()), Inode(At("staging")));
  EXPECT_EQ(InodeOf(storage_->quarantine()), Inode(At("quarantine")));
}

TEST_F(StorageTest, RemovedFolderFailsNamingItUntilItIsMadeAgain) {
  Run("rm -r " + At("staging"));
  Status problem = storage_->Refresh();
  ASSERT_FALSE(problem.ok());
  EXPECT_NE(problem.message().find("the storage folder staging was removed"), std::string::npos)
      << problem.message();
  EXPECT_EQ(storage_->staging(), -1);
  EXPECT_FALSE(Create(storage_->staging(), "x").ok());
  EXPECT_TRUE(storage_->CheckOwnFolder(OwnFolder::kSpool).ok());
  EXPECT_FALSE(storage_->CheckOwnFolder(OwnFolder::kStaging).ok());

  const uint64_t generation = storage_->generation();
  Run("mkdir -m 0750 " + At("staging"));
  EXPECT_TRUE(storage_->Refresh().ok());
  EXPECT_EQ(storage_->generation(), generation + 1);
  ASSERT_TRUE(Create(storage_->staging(), "x").ok());
  EXPECT_NE(Inode(At("staging/x")), 0u);
}

TEST_F(StorageTest, FolderMovedAwayIsNeverWrittenInto) {
  Run("mv " + At("spool") + " " + At("spool.old"));
  EXPECT_FALSE(storage_->Refresh().ok());
  EXPECT_FALSE(Create(storage_->spool(), "after-mv").ok());
  Run("mkdir -m 0750 " + At("spool"));
  EXPECT_TRUE(storage_->Refresh().ok());
  ASSERT_TRUE(Create(storage_->spool(), "after-mkdir").ok());
  EXPECT_NE(Inode(At("spool/after-mkdir")), 0u);
  EXPECT_EQ(Inode(At("spool.old/after-mv")), 0u);
  EXPECT_EQ(Inode(At("spool.old/after-mkdir")), 0u);
}

TEST_F(StorageTest, FolderMovedAwayAndMadeAgainIsFollowedAtOnce) {
  const int old = storage_->quarantine();
  Run("mv " + At("quarantine") + " " + At("quarantine.old") + " && mkdir " + At("quarantine"));
  EXPECT_TRUE(storage_->Refresh().ok());
  EXPECT_NE(storage_->quarantine(), old);
  EXPECT_EQ(InodeOf(storage_->quarantine()), Inode(At("quarantine")));
  // The fd handed out before still works, on the folder it was opened on (another thread may
  // still be using it): it is not closed, nor its number reused.
  EXPECT_EQ(InodeOf(old), Inode(At("quarantine.old")));
  auto qdir = storage_->QuarantineDir("01a200fb-5d2d-76b1-bad0-998dc359be25");
  ASSERT_TRUE(qdir.ok());
  EXPECT_NE(Inode(At("quarantine/01a200fb-5d2d-76b1-bad0-998dc359be25")), 0u);
}

TEST_F(StorageTest, SymlinkOrFileInItsPlaceIsRefusedNamingTheFolder) {
  Run("mkdir " + At("elsewhere") + " && rm -r " + At("spool") + " && ln -s elsewhere " +
      At("spool"));
  Status problem = storage_->Refresh();
  ASSERT_FALSE(problem.ok());
  EXPECT_NE(problem.message().find("the storage folder spool was replaced by a symlink"),
            std::string::npos)
      << problem.message();
  EXPECT_FALSE(Create(storage_->spool(), "x").ok());
  EXPECT_EQ(Inode(At("elsewhere/x")), 0u);
  // A reload makes missing folders; it does not remove what is in the way.
  EXPECT_FALSE(storage_->Refresh(/*make_missing=*/true).ok());

  Run("rm -r " + At("quarantine") + " && touch " + At("quarantine"));
  problem = storage_->CheckOwnFolder(OwnFolder::kQuarantine);
  ASSERT_FALSE(problem.ok());
  EXPECT_NE(problem.message().find("the storage folder quarantine was replaced"), std::string::npos)
      << problem.message();
  EXPECT_FALSE(storage_->QuarantineDir("01a200fb-5d2d-76b1-bad0-998dc359be25").ok());
}

TEST_F(StorageTest, ReloadMakesMissingFolders) {
  Run("rm -r " + At("spool") + " " + At("quarantine"));
  EXPECT_FALSE(storage_->Refresh().ok());
  EXPECT_EQ(Inode(At("spool")), 0u);  // not without being asked
  EXPECT_TRUE(storage_->Refresh(/*make_missing=*/true).ok());
  struct stat st;
  ASSERT_EQ(lstat(At("spool").c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777 & ~0750, 0u);
  EXPECT_EQ(InodeOf(storage_->spool()), st.st_ino);
  EXPECT_EQ(InodeOf(storage_->quarantine()), Inode(At("quarantine")));
}

TEST_F(StorageTest, TakeOverLinksWhatWasLeftInAReplacedFolder) {
  const std::vector<std::string> none;
  const std::vector<std::string> names = {"data", "trigger", "absent"};
  auto nothing = storage_->TakeOver(OwnFolder::kSpool, names);  // nothing replaced yet
  ASSERT_TRUE(nothing.ok());
  EXPECT_TRUE(nothing->empty());

  ASSERT_TRUE(Create(storage_->spool(), "data").ok());
  ASSERT_TRUE(Create(storage_->spool(), "trigger").ok());
  ASSERT_TRUE(Create(storage_->spool(), "other").ok());
  Run("mv " + At("spool") + " " + At("spool.old") + " && mkdir " + At("spool"));
  ASSERT_TRUE(storage_->Refresh().ok());
  ASSERT_TRUE(Create(storage_->spool(), "trigger").ok());  // a file of that name is there now

  auto taken = storage_->TakeOver(OwnFolder::kSpool, names);
  ASSERT_TRUE(taken.ok()) << taken.status().message();
  EXPECT_EQ(*taken, std::vector<std::string>{"data"});
  EXPECT_EQ(Inode(At("spool/data")), Inode(At("spool.old/data")));  // the same file
  EXPECT_NE(Inode(At("spool/trigger")), Inode(At("spool.old/trigger")));
  EXPECT_EQ(Inode(At("spool/other")), 0u);      // only what was asked for
  EXPECT_NE(Inode(At("spool.old/other")), 0u);  // and nothing taken out of the old folder
  auto again = storage_->TakeOver(OwnFolder::kSpool, names);
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->empty());

  // Replaced twice: the newest folder first, then older ones.
  ASSERT_TRUE(Create(storage_->spool(), "second").ok());
  Run("mv " + At("spool") + " " + At("spool.older") + " && mkdir " + At("spool"));
  ASSERT_TRUE(storage_->Refresh().ok());
  const std::vector<std::string> both = {"second", "data"};
  taken = storage_->TakeOver(OwnFolder::kSpool, both);
  ASSERT_TRUE(taken.ok());
  EXPECT_EQ(*taken, both);
  EXPECT_EQ(Inode(At("spool/second")), Inode(At("spool.older/second")));
  EXPECT_EQ(Inode(At("spool/data")), Inode(At("spool.old/data")));

  // A removed folder leaves nothing to take; a missing one cannot take anything in.
  Run("rm -r " + At("spool"));
  EXPECT_FALSE(storage_->Refresh().ok());
  EXPECT_FALSE(storage_->TakeOver(OwnFolder::kSpool, both).ok());
  EXPECT_TRUE(storage_->TakeOver(OwnFolder::kStaging, none).ok());
}

}  // namespace
}  // namespace fordeler
