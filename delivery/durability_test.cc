// The delivery state machine's order of operations and its behaviour under injected faults,
// through the Env seam. A SIGKILL leaves the page cache intact and so cannot show a missing
// fsync; recording the order of write, fsync, rename, directory fsync and commit can.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>

#include "core/mutex.h"
#include "core/sha256.h"
#include "delivery/pipeline_testing.h"

namespace fordeler {
namespace {

using testing::PipelineFixture;
using testing::TriggerXml;

// Records every file operation as "op:where" and every commit (CrashPoint "after_<step>" is
// reached right after the commit recording <step>); fails renames into one folder on demand.
class RecordingEnv : public EnvWrapper {
 public:
  explicit RecordingEnv(std::string root) : EnvWrapper(Env::Default()), root_(std::move(root)) {}

  std::vector<std::string> ops() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return ops_;
  }
  void FailRenamesInto(std::string folder) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    fail_into_ = std::move(folder);
  }

  Status Write(int fd, const void* d, size_t n) override {
    Log("write", fd);
    return EnvWrapper::Write(fd, d, n);
  }
  Status Fsync(int fd) override {
    struct stat st;
    fstat(fd, &st);
    Log(S_ISDIR(st.st_mode) ? "fsync-dir" : "fsync", fd);
    return EnvWrapper::Fsync(fd);
  }
  Status RenameAt(int a, const std::string& f, int b, const std::string& t, bool nr) override {
    std::string into = Where(b);
    Log("rename", b);
    {
      MutexLock lock(&mu_);
      if (!fail_into_.empty() && into == fail_into_) {
        return Status::FromErrno(EACCES, "injected rename into " + into);
      }
    }
    return EnvWrapper::RenameAt(a, f, b, t, nr);
  }
  Status LinkAt(int a, const std::string& f, int b, const std::string& t) override {
    Log("link", b);
    return EnvWrapper::LinkAt(a, f, b, t);
  }
  Status UnlinkAt(int d, const std::string& n) override {
    Log("unlink", d);
    return EnvWrapper::UnlinkAt(d, n);
  }
  void CrashPoint(std::string_view name) override {
    MutexLock lock(&mu_);
    ops_.push_back("commit:" + std::string(name.substr(6)));  // "after_<step>"
  }

 private:
  // The folder a directory fd stands for, relative to the storage root ("spool", "flis/IN").
  std::string Where(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return "?";
    std::string p(path, static_cast<size_t>(n));
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode)) return "file";
    if (p.rfind(root_, 0) == 0) p = p.substr(root_.size() + 1);
    if (p.rfind("accounts/", 0) == 0) p = p.substr(9);
    return p;
  }
  void Log(const char* op, int fd) EXCLUDES(mu_) {
    std::string entry = std::string(op) + ":" + Where(fd);
    MutexLock lock(&mu_);
    ops_.push_back(entry);
  }

  std::string root_;
  Mutex mu_;
  std::vector<std::string> ops_ GUARDED_BY(mu_);
  std::string fail_into_ GUARDED_BY(mu_);
};

class DurabilityTest : public PipelineFixture {};

TEST_F(DurabilityTest, EveryStepIsDurableBeforeItsCommitAndCommittedBeforeTheNext) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Send("d.csv", "abc", TriggerXml("d.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> expected = {
      "commit:received",
      // the trigger leaves /OUT for the spool; the data is complete, so it follows at once
      "rename:spool",
      // the data file (put in /OUT by other means) is copied and hashed, then removed from /OUT
      "write:file",
      "fsync:file",
      "rename:spool",
      "fsync-dir:spool",
      "unlink:vendor/OUT",
      // one fsync per folder makes the trigger's and the data's moves durable together
      "fsync-dir:spool",
      "fsync-dir:vendor/OUT",
      // the spooled data itself is durable before it is recorded (and before any link to it)
      "fsync:file",
      "commit:spooled",
      // data linked into staging and renamed into /IN, then metadata via temp+fsync+rename
      "link:staging",
      "rename:flis/IN",
      "fsync-dir:flis/IN",
      "write:file",
      "fsync:file",
      "rename:flis/IN",
      "fsync-dir:flis/IN",
      "commit:placed",
      // the receipt, the same way
      "write:file",
      "fsync:file",
      "rename:vendor/IN",
      "fsync-dir:vendor/IN",
      "commit:receipt_sent",
      "unlink:spool",
      "commit:done",
  };
  EXPECT_EQ(env.ops(), expected);
}

// What a transfer costs until its metadata is visible, in the common case: the data uploaded
// through fordeler's own server (its digest known), then the trigger. Two renames into the spool,
// one fsync per folder, the data file's own fsync, one commit.
TEST_F(DurabilityTest, AnUploadThroughTheServerIsMovedWithOneSyncPerFolder) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Put(Path("vendor", "OUT", "s.csv"), "abc");
  struct stat st;
  ASSERT_EQ(stat(Path("vendor", "OUT", "s.csv").c_str(), &st), 0);
  pipeline_->OnUploadClosed(
      {"vendor", "s.csv", 3, st.st_ino, Sha256::Of("abc"), UploadClosed::How::kClosed});
  Put(Path("vendor", "OUT", "s.csv.trigger"), TriggerXml("s.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "s.csv.trigger", false);
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> ops = env.ops();
  std::vector<std::string> until_spooled(
      ops.begin(), std::find(ops.begin(), ops.end(), std::string("commit:spooled")) + 1);
  EXPECT_EQ(until_spooled, (std::vector<std::string>{
                               "commit:received", "rename:spool", "rename:spool", "fsync-dir:spool",
                               "fsync-dir:vendor/OUT", "fsync:file", "commit:spooled"}));
  EXPECT_EQ(Read(Path("flis", "IN", "s.csv")), "abc");
}

// The slow path: a trigger whose data is not there yet is recorded as trigger_taken, waits, and
// takes the data in a step of its own.
TEST_F(DurabilityTest, ATriggerBeforeItsDataWaitsInTriggerTaken) {
  RecordingEnv env(root_);
  config_->routes[0].recipients = {"flis"};
  StartPipeline(&env);
  Put(Path("vendor", "OUT", "late.csv.trigger"), TriggerXml("late.csv", 3, "vendor", {"flis"}));
  pipeline_->OnFolderChange("vendor", Folder::kOut, "late.csv.trigger", false);
  bool waiting = false;
  for (int i = 0; i < 400 && !waiting; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& t : Transfers()) waiting |= t.step == TransferStep::kTriggerTaken;
  }
  ASSERT_TRUE(waiting) << "the transfer did not wait in trigger_taken";
  Put(Path("vendor", "OUT", "late.csv"), "abc");
  ASSERT_TRUE(WaitFinished(1));
  std::vector<std::string> ops = env.ops();
  std::vector<std::string> until_spooled(
      ops.begin(), std::find(ops.begin(), ops.end(), std::string("commit:spooled")) + 1);
  EXPECT_EQ(until_spooled,
            (std::vector<std::string>{"commit:received", "rename:spool", "fsync-dir:spool",
                                      "fsync-dir:vendor/OUT", "commit:trigger_taken",
                                      "commit:accepted", "write:file", "fsync:file", "rename:spool",
                                      "fsync-dir:spool", "unlink:vendor/OUT", "fsync-dir:spool",
                                      "fsync-dir:vendor/OUT", "fsync:file", "commit:spooled"}));
  EXPECT_EQ(Read(Path("flis", "IN", "late.csv")), "abc");
}

TEST_F(DurabilityTest, AnUnwritableRecipientFolderIsRetriedUntilItWorks) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("lis/IN");
  Send("u.csv", "abc", TriggerXml("u.csv", 3, "vendor", {"flis", "lis"}));
  // The transfer keeps failing (code 5001, visible to the operator) without finishing...
  std::string uuid;
  for (int i = 0; i < 400 && uuid.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    for (const auto& t : Transfers()) {
      if (t.error_code == 5001) uuid = t.uuid;
    }
  }
  ASSERT_FALSE(uuid.empty()) << "no 5001 recorded while the folder was unwritable";
  EXPECT_EQ(pipeline_->finished(), 0);
  EXPECT_FALSE(Exists(Path("lis", "IN", "u.csv")));
  // ...and completes once the fault is gone, delivering exactly once to each recipient.
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(1, std::chrono::seconds(15)));
  EXPECT_EQ(Read(Path("lis", "IN", "u.csv")), "abc");
  EXPECT_EQ(List(Path("flis", "IN")), (std::set<std::string>{"u.csv", "u.csv.metadata"}));
  auto t = audit_->GetTransfer(uuid);
  ASSERT_TRUE(t.ok() && t->has_value());
  EXPECT_EQ((*t)->state, TransferState::kDelivered);
  EXPECT_EQ((*t)->error_code, 0);
}

TEST_F(DurabilityTest, OtherSendersContinueWhileOneTransferFails) {
  RecordingEnv env(root_);
  StartPipeline(&env);
  env.FailRenamesInto("lis/IN");
  Send("stuck.csv", "abc", TriggerXml("stuck.csv", 3, "vendor", {"lis"}));
  Send("fine.csv", "xyz", TriggerXml("fine.csv", 3, "vendor", {"flis"}));
  ASSERT_TRUE(WaitFinished(1));
  EXPECT_EQ(Read(Path("flis", "IN", "fine.csv")), "xyz");
  env.FailRenamesInto("");
  ASSERT_TRUE(WaitFinished(2, std::chrono::seconds(15)));
}

}  // namespace
}  // namespace fordeler
