// FolderWatcher on real folders: what it reports, and a folder an operator moves away and makes
// again (docs/operations.md, "A jail folder removed or replaced").
#include "delivery/folder_watcher.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace fordeler {
namespace {

using std::chrono::milliseconds;

struct Seen {
  Folder folder;
  std::string name;
  bool removed;
};

class FolderWatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/folder_watcher_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    std::filesystem::create_directories(Path("IN"));
    std::filesystem::create_directories(Path("OUT"));
    config_.storage.root = root_;
    Account a;
    a.id = "a";
    config_.accounts.push_back(a);
    ASSERT_TRUE(watcher_.Start().ok());
    watcher_.Watch(config_);
  }
  void TearDown() override {
    watcher_.Stop();
    std::filesystem::remove_all(root_);
  }

  std::string Path(const std::string& rel) const { return root_ + "/accounts/a/" + rel; }
  static void Write(const std::string& path) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(write(fd, "x", 1), 1);
    close(fd);
  }
  // Waits (at most 5 s) until `name` was reported; true when it was.
  bool WaitFor(const std::string& name) {
    std::unique_lock<std::mutex> lock(mu_);
    return changed_.wait_for(lock, milliseconds(5000), [&] { return Has(name); });
  }
  bool Has(const std::string& name) {
    for (const Seen& s : seen_) {
      if (s.name == name) return true;
    }
    return false;
  }
  bool Reported(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return Has(name);
  }

  std::string root_;
  Config config_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Seen> seen_;
  FolderWatcher watcher_{
      [this](const std::string&, Folder folder, const std::string& name, bool removed) {
        std::lock_guard<std::mutex> lock(mu_);
        seen_.push_back({folder, name, removed});
        changed_.notify_all();
      }};
};

TEST_F(FolderWatcherTest, ReportsFilesWrittenInOutAndRemovedFromIn) {
  Write(Path("OUT/f.trigger"));
  Write(Path("IN/d.csv"));
  ASSERT_EQ(unlink(Path("IN/d.csv").c_str()), 0);
  ASSERT_TRUE(WaitFor("f.trigger"));
  ASSERT_TRUE(WaitFor("d.csv"));
  std::lock_guard<std::mutex> lock(mu_);
  for (const Seen& s : seen_) {
    if (s.name == "f.trigger") {
      EXPECT_TRUE(s.folder == Folder::kOut && !s.removed);
    } else if (s.name == "d.csv") {
      EXPECT_TRUE(s.folder == Folder::kIn && s.removed);
    }
  }
}

TEST_F(FolderWatcherTest, AnInMovedAwayIsNoLongerListenedToAndTheNewOneIs) {
  Write(Path("IN/old.csv"));
  ASSERT_EQ(rename(Path("IN").c_str(), Path("IN.old").c_str()), 0);
  ASSERT_EQ(mkdir(Path("IN").c_str(), 0750), 0);
  ASSERT_EQ(unlink(Path("IN.old/old.csv").c_str()), 0);  // nobody's pickup
  // The new IN is watched within a second or so: remove a file there until that is reported.
  bool seen = false;
  for (int i = 0; i < 50 && !seen; ++i) {
    std::string name = "new" + std::to_string(i) + ".csv";
    Write(Path("IN/" + name));
    ASSERT_EQ(unlink(Path("IN/" + name).c_str()), 0);
    std::unique_lock<std::mutex> lock(mu_);
    seen = changed_.wait_for(lock, milliseconds(100), [&] { return Has(name); });
  }
  EXPECT_TRUE(seen) << "the new IN was never watched";
  EXPECT_FALSE(Reported("old.csv")) << "a removal in the folder moved away counted";
}

TEST_F(FolderWatcherTest, WhatArrivedInANewOutBeforeItWasWatchedIsReported) {
  ASSERT_EQ(rename(Path("OUT").c_str(), Path("OUT.old").c_str()), 0);
  ASSERT_EQ(mkdir(Path("OUT").c_str(), 0770), 0);
  Write(Path("OUT.old/stray.trigger"));
  Write(Path("OUT/f.trigger"));  // most likely before the new OUT is watched
  EXPECT_TRUE(WaitFor("f.trigger"));
  EXPECT_FALSE(Reported("stray.trigger"));
}

TEST_F(FolderWatcherTest, AFolderRemovedAndMadeAgainIsWatchedAgain) {
  ASSERT_EQ(rmdir(Path("OUT").c_str()), 0);
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_EQ(mkdir(Path("OUT").c_str(), 0770), 0);
  Write(Path("OUT/g.trigger"));
  EXPECT_TRUE(WaitFor("g.trigger"));
}

TEST_F(FolderWatcherTest, OwnFoldersChangedInTheStorageRootAreReported) {
  std::atomic<int> calls{0};
  for (const char* name : {"spool", "staging", "quarantine"}) {
    ASSERT_EQ(mkdir((root_ + "/" + name).c_str(), 0750), 0);
  }
  ASSERT_TRUE(watcher_.WatchStorageRoot(root_, [&] { ++calls; }).ok());
  auto after = [&](int n) {
    for (int i = 0; i < 500 && calls < n; ++i) std::this_thread::sleep_for(milliseconds(10));
    return calls.load();
  };
  Write(root_ + "/audit.db-wal");  // other entries of the root are not reported
  ASSERT_EQ(rename((root_ + "/spool").c_str(), (root_ + "/spool.old").c_str()), 0);
  EXPECT_EQ(after(1), 1);  // spool moved away (the move's other name is not an own folder)
  ASSERT_EQ(mkdir((root_ + "/spool").c_str(), 0750), 0);
  EXPECT_EQ(after(2), 2);
  ASSERT_EQ(rmdir((root_ + "/staging").c_str()), 0);
  EXPECT_EQ(after(3), 3);
  ASSERT_EQ(symlink("spool.old", (root_ + "/staging").c_str()), 0);
  EXPECT_EQ(after(4), 4);
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_EQ(calls.load(), 4);
}

}  // namespace
}  // namespace fordeler
