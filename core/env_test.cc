#include "core/env.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace fordeler {
using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;

namespace {

// Records every file operation, and fails the one named in `fail` with `fail_errno`.
class RecordingEnv : public EnvWrapper {
 public:
  RecordingEnv() : EnvWrapper(Env::Default()) {}
  std::vector<std::string> ops;
  std::string fail;
  int fail_errno = EIO;

  Status Maybe(const std::string& op) {
    ops.push_back(op);
    if (op == fail) {
      errno = fail_errno;
      return Status::FromErrno(fail_errno, "injected " + op);
    }
    return Status::Ok();
  }
  Status Write(int fd, const void* data, size_t len) override {
    Status s = Maybe("write");
    return s.ok() ? EnvWrapper::Write(fd, data, len) : s;
  }
  Status Fsync(int fd) override {
    struct stat st;
    fstat(fd, &st);
    Status s = Maybe(S_ISDIR(st.st_mode) ? "fsync-dir" : "fsync");
    return s.ok() ? EnvWrapper::Fsync(fd) : s;
  }
  Status RenameAt(int a, const std::string& f, int b, const std::string& t, bool nr) override {
    Status s = Maybe("rename");
    return s.ok() ? EnvWrapper::RenameAt(a, f, b, t, nr) : s;
  }
};

class DurableWriteTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fordeler-env-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    mkdir((root_ + "/tmp").c_str(), 0700);
    mkdir((root_ + "/dest").c_str(), 0700);
    tmp_ = open((root_ + "/tmp").c_str(), O_RDONLY | O_DIRECTORY);
    dest_ = open((root_ + "/dest").c_str(), O_RDONLY | O_DIRECTORY);
  }
  void TearDown() override {
    close(tmp_);
    close(dest_);
    std::string cmd = "rm -rf " + root_;
    ASSERT_EQ(std::system(cmd.c_str()), 0);
  }
  bool Exists(const std::string& rel) {
    struct stat st;
    return lstat((root_ + "/" + rel).c_str(), &st) == 0;
  }
  std::string Read(const std::string& rel) {
    std::ifstream in(root_ + "/" + rel);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  Status Put(Env* env, const std::string& data, bool no_replace = false) {
    return WriteFileDurably(env, tmp_, "x.tmp", dest_, "x.metadata", data, 0440, no_replace);
  }

  std::string root_;
  int tmp_ = -1, dest_ = -1;
};

TEST_F(DurableWriteTest, WritesFsyncsRenamesThenFsyncsTheDirectory) {
  RecordingEnv env;
  ASSERT_TRUE(Put(&env, "<doc/>").ok());
  EXPECT_EQ(env.ops, (std::vector<std::string>{"write", "fsync", "rename", "fsync-dir"}));
  EXPECT_EQ(Read("dest/x.metadata"), "<doc/>");
  EXPECT_FALSE(Exists("tmp/x.tmp"));
  struct stat st;
  ASSERT_EQ(stat((root_ + "/dest/x.metadata").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0440u);
}

TEST_F(DurableWriteTest, AnyFailureBeforeTheRenameLeavesNothingVisible) {
  for (const char* op : {"write", "fsync", "rename"}) {
    RecordingEnv env;
    env.fail = op;
    env.fail_errno = std::string(op) == "write" ? ENOSPC : EIO;
    Status s = Put(&env, "<doc/>");
    EXPECT_FALSE(s.ok()) << op;
    EXPECT_FALSE(Exists("dest/x.metadata")) << op;
    EXPECT_FALSE(Exists("tmp/x.tmp")) << op;
  }
}

// A temp file left by an attempt a crash cut short is read-only (0440). The daemon runs as its own
// user without root's DAC override (systemd unit), so reopening it for writing would fail for
// ever; it is replaced instead. Run as that kind of user: as root, in a child that drops to
// nobody.
TEST_F(DurableWriteTest, ALeftoverReadOnlyTempFileIsReplaced) {
  {
    std::ofstream old(root_ + "/tmp/x.tmp");
    old << "from before the crash";
  }
  ASSERT_EQ(chmod((root_ + "/tmp/x.tmp").c_str(), 0440), 0);
  if (geteuid() != 0) {
    ASSERT_TRUE(Put(Env::Default(), "<doc/>").ok());
  } else {
    constexpr uid_t kNobody = 65534;
    for (const char* rel : {"", "/tmp", "/dest", "/tmp/x.tmp"}) {
      ASSERT_EQ(chown((root_ + rel).c_str(), kNobody, kNobody), 0) << rel;
    }
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      if (setgroups(0, nullptr) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
      _exit(Put(Env::Default(), "<doc/>").ok() ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_EQ(WEXITSTATUS(status), 0) << "1: the write failed; 2: could not drop to nobody";
  }
  EXPECT_EQ(Read("dest/x.metadata"), "<doc/>");
  EXPECT_FALSE(Exists("tmp/x.tmp"));
}

TEST_F(DurableWriteTest, DiskFullIsReportedAsNoSpace) {
  RecordingEnv env;
  env.fail = "write";
  env.fail_errno = ENOSPC;
  EXPECT_EQ(Put(&env, "data").code(), Status::Code::kNoSpace);
}

TEST_F(DurableWriteTest, NoReplaceKeepsTheExistingFile) {
  ASSERT_TRUE(Put(Env::Default(), "first").ok());
  Status s = Put(Env::Default(), "second", /*no_replace=*/true);
  EXPECT_EQ(s.code(), Status::Code::kAlreadyExists);
  EXPECT_EQ(Read("dest/x.metadata"), "first");
  EXPECT_FALSE(Exists("tmp/x.tmp"));
  ASSERT_TRUE(Put(Env::Default(), "third").ok());  // replacing is the default
  EXPECT_EQ(Read("dest/x.metadata"), "third");
}

TEST_F(DurableWriteTest, OpenAtNeverFollowsASymlink) {
  ASSERT_EQ(symlink("/etc/passwd", (root_ + "/dest/link").c_str()), 0);
  auto fd = Env::Default()->OpenAt(dest_, "link", O_RDONLY, 0);
  EXPECT_FALSE(fd.ok());
}

// A folder held open is "still at" its path until the path names another file: moved away and
// made again, removed, or a symlink to it put in its place.
TEST_F(DurableWriteTest, IsStillAtFollowsTheFolderAtItsPath) {
  int root = open(root_.c_str(), O_RDONLY | O_DIRECTORY);
  ASSERT_GE(root, 0);
  EXPECT_TRUE(IsStillAt(dest_, root, "dest"));
  EXPECT_FALSE(IsStillAt(dest_, root, "tmp"));
  ASSERT_EQ(rename((root_ + "/dest").c_str(), (root_ + "/dest.old").c_str()), 0);
  EXPECT_FALSE(IsStillAt(dest_, root, "dest"));
  ASSERT_EQ(symlink("dest.old", (root_ + "/dest").c_str()), 0);
  EXPECT_FALSE(IsStillAt(dest_, root, "dest"));
  EXPECT_TRUE(IsStillAt(dest_, root, "dest.old"));
  ASSERT_EQ(rmdir((root_ + "/tmp").c_str()), 0);
  EXPECT_FALSE(IsStillAt(tmp_, root, "tmp"));
  ASSERT_EQ(mkdir((root_ + "/tmp").c_str(), 0700), 0);
  EXPECT_FALSE(IsStillAt(tmp_, root, "tmp"));
  close(root);
}

TEST_F(DurableWriteTest, CheckSameFilesystemNamesBothFoldersAndTheirDevices) {
  int root = open(root_.c_str(), O_PATH | O_DIRECTORY);
  ASSERT_GE(root, 0);
  EXPECT_TRUE(CheckSameFilesystem(root, root_, dest_, root_ + "/dest").ok());
  int shm = open("/dev/shm", O_PATH | O_DIRECTORY);
  struct stat here, there;
  bool other =
      shm >= 0 && fstat(root, &here) == 0 && fstat(shm, &there) == 0 && here.st_dev != there.st_dev;
  if (!other) {
    if (shm >= 0) close(shm);
    close(root);
    GTEST_SKIP() << "no /dev/shm on another filesystem than " << root_;
  }
  auto device = [](dev_t d) { return std::to_string(major(d)) + ":" + std::to_string(minor(d)); };
  Status s = CheckSameFilesystem(root, root_, shm, "/dev/shm");
  EXPECT_EQ(s.code(), Status::Code::kInvalidArgument);
  EXPECT_EQ(s.message(), "/dev/shm is on another filesystem (device " + device(there.st_dev) +
                             ") than the storage root " + root_ + " (device " +
                             device(here.st_dev) +
                             "): fordeler moves and links files between them");
  close(shm);
  close(root);
}

// Counts the syncs FsyncAll hands out (from several threads at once) and fails one fd's.
class CountingEnv : public EnvWrapper {
 public:
  CountingEnv() : EnvWrapper(Env::Default()) {}
  std::atomic<int> calls{0};
  int fail_fd = -100;
  Status Fsync(int fd) override {
    ++calls;
    if (fd == fail_fd) return Status::FromErrno(EIO, "injected fsync");
    return EnvWrapper::Fsync(fd);
  }
};

TEST_F(DurableWriteTest, FsyncAllSyncsEveryFdThroughFsyncAndReportsAFailure) {
  CountingEnv env;
  std::vector<int> fds = {tmp_, dest_, tmp_, dest_, tmp_};
  EXPECT_TRUE(env.FsyncAll(fds).ok());
  EXPECT_EQ(env.calls, 5);
  EXPECT_TRUE(env.FsyncAll({}).ok());
  EXPECT_EQ(env.calls, 5);
  // Many callers at once: each waits for its own syncs only.
  std::vector<std::thread> callers;
  std::atomic<int> ok{0};
  for (int i = 0; i < 16; ++i) {
    callers.emplace_back([&] { ok += env.FsyncAll(fds).ok() ? 1 : 0; });
  }
  for (auto& t : callers) t.join();
  EXPECT_EQ(ok, 16);
  EXPECT_EQ(env.calls, 5 + 16 * 5);
  // A failure anywhere is the result, once all have finished; a bad fd is an error too.
  env.fail_fd = dest_;
  Status s = env.FsyncAll(fds);
  EXPECT_EQ(s.message(), "injected fsync: Input/output error") << s.message();
  EXPECT_EQ(env.calls, 5 + 16 * 5 + 5);
  std::vector<int> bad = {tmp_, -1};
  EXPECT_FALSE(Env::Default()->FsyncAll(bad).ok());
}

// Syncs of a set duration on a clock of the test's, each noting the thread it ran on and how
// many ran at once; with `company` set, each is held until that many run at once (up to 10 s).
// Syncs and write-backs started are noted in order, as "s<fd>" and "w<fd>".
class TimedSyncEnv : public EnvWrapper {
 public:
  TimedSyncEnv() : EnvWrapper(Env::Default()) {}
  std::chrono::steady_clock::time_point Steady() const override {
    return std::chrono::steady_clock::time_point(std::chrono::nanoseconds(clock_ns_.load()));
  }
  void StartWriteBack(int fd) override {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.push_back("w" + std::to_string(fd));
  }
  Status Fsync(int fd) override {
    std::unique_lock<std::mutex> lock(mu_);
    calls_.push_back("s" + std::to_string(fd));
    threads_.insert(std::this_thread::get_id());
    ++running_;
    most_at_once_ = std::max(most_at_once_, running_);
    company_.notify_all();
    company_.wait_for(lock, std::chrono::seconds(10), [this] { return most_at_once_ >= company; });
    --running_;
    clock_ns_ += took.count();
    return Status::Ok();
  }
  // The threads that synced, and the most syncs at once, since the last call.
  std::pair<std::set<std::thread::id>, int> Seen() {
    std::lock_guard<std::mutex> lock(mu_);
    auto seen = std::make_pair(std::move(threads_), most_at_once_);
    threads_.clear();
    most_at_once_ = 0;
    return seen;
  }
  // The syncs and write-backs since the last call, in order.
  std::vector<std::string> Calls() {
    std::lock_guard<std::mutex> lock(mu_);
    return std::exchange(calls_, {});
  }

  std::chrono::nanoseconds took{0};
  int company = 0;

 private:
  std::atomic<int64_t> clock_ns_{1'000'000'000};
  std::mutex mu_;
  std::condition_variable company_;
  std::set<std::thread::id> threads_;
  std::vector<std::string> calls_;
  int running_ = 0;
  int most_at_once_ = 0;
};

TEST(FsyncAllTest, QuickSyncsRunOnTheCallersThreadAndSlowOnesTogether) {
  using std::chrono::microseconds;
  TimedSyncEnv env;
  const std::vector<int> fds = {3, 4, 5, 6};
  const std::set<std::thread::id> caller = {std::this_thread::get_id()};
  env.took = microseconds(2);  // tmpfs-like: no hand-offs, and no write-back started first
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(env.FsyncAll(fds).ok());
  EXPECT_EQ(env.Seen().first, caller);
  env.Calls();
  ASSERT_TRUE(env.FsyncAll(fds).ok());
  EXPECT_THAT(env.Calls(), ElementsAre("s3", "s4", "s5", "s6"));

  // A slow sync sends what follows it to the helpers; then they run at once.
  env.took = microseconds(3000);
  ASSERT_TRUE(env.FsyncAll(std::vector<int>{3}).ok());
  env.Seen();
  env.Calls();
  env.company = 2;
  ASSERT_TRUE(env.FsyncAll(fds).ok());
  auto [threads, at_once] = env.Seen();
  EXPECT_GE(at_once, 2);
  EXPECT_GT(threads.size(), 1u);
  // Every file's write-back started before the first of the round's syncs.
  std::vector<std::string> calls = env.Calls();
  ASSERT_EQ(calls.size(), 8u);
  EXPECT_THAT(std::vector<std::string>(calls.begin(), calls.begin() + 4),
              ElementsAre("w3", "w4", "w5", "w6"));
  EXPECT_THAT(std::vector<std::string>(calls.begin() + 4, calls.end()),
              UnorderedElementsAre("s3", "s4", "s5", "s6"));

  // Quick again: back on the caller's thread once the average has come down.
  env.company = 0;
  env.took = microseconds(2);
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(env.FsyncAll(fds).ok());
  env.Seen();
  ASSERT_TRUE(env.FsyncAll(fds).ok());
  EXPECT_EQ(env.Seen().first, caller);
}

// Every sync of a round waits at once, however many there are: a journal commit completes all
// the syncs waiting for it, so a round (or many callers' rounds) is not cut into batches of a
// fixed number of helpers.
TEST(FsyncAllTest, ARoundLargerThanAnyFixedPoolRunsAllAtOnce) {
  using std::chrono::microseconds;
  TimedSyncEnv env;
  env.took = microseconds(3000);  // a disk: the round goes to the helpers
  ASSERT_TRUE(env.FsyncAll(std::vector<int>{3}).ok());
  std::vector<int> fds(40);
  std::iota(fds.begin(), fds.end(), 100);
  env.Seen();
  env.company = 40;
  auto start = std::chrono::steady_clock::now();
  ASSERT_TRUE(env.FsyncAll(fds).ok());
  EXPECT_EQ(env.Seen().second, 40);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

}  // namespace
}  // namespace fordeler
