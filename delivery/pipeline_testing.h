// Test fixtures for the delivery pipeline: a real storage root in a temp directory, a real
// SQLite audit log, and helpers to play a sender (files put straight into /OUT, as another SFTP
// server sharing the storage would) and to look into recipients' folders.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <set>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "audit/audit_store.h"
#include "config/config.h"
#include "core/env.h"
#include "core/mutex.h"
#include "core/sha256.h"
#include "delivery/pipeline.h"
#include "delivery/storage.h"

namespace fordeler::testing {

// No SFTP sessions: nothing is open for writing, every take succeeds.
class NoSessionsGate : public OutboxGate {
 public:
  bool IsOpenForWriting(const std::string&, const std::string&) const override { return false; }
  bool BeginTake(const std::string&, const std::string&) override { return true; }
  void EndTake(const std::string&, const std::string&, bool) override {}
};

// Whether the crash point `name` ("after_<step>") comes right after a commit: the tests that log
// the order of a transfer's operations read those as "commit:<step>". after_taken (nothing
// recorded yet) and after_revealed (the metadata in, its commit not yet begun) lie between.
inline bool MarksACommit(std::string_view name) {
  return name != "after_taken" && name != "after_revealed";
}

inline std::string TriggerXml(const std::string& name, uint64_t size, const std::string& sender,
                              const std::vector<std::string>& recipients,
                              const std::string& extra_descriptor = "",
                              const std::string& content = "") {
  std::string xml =
      "<ns2:Trigger xmlns:ns2=\"http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types\">"
      "<FileDescriptor><FileName>" +
      name + "</FileName><SizeInBytes>" + std::to_string(size) + "</SizeInBytes><Sender>" + sender +
      "</Sender><SendersFileId>sfid-1</SendersFileId>";
  for (const auto& r : recipients) xml += "<Recipients>" + r + "</Recipients>";
  xml += extra_descriptor + "</FileDescriptor>" + content + "</ns2:Trigger>";
  return xml;
}

// Waits until `done()` holds, at most `limit`; whether it does.
inline bool Eventually(const std::function<bool()>& done,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

class PipelineFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fordeler-delivery-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    auto config = std::make_shared<Config>();
    config->storage.root = root_;
    config->database.path = root_ + "/audit.db";
    // Long enough that a trigger never waits it out on a slow machine, unless a test wants that
    // (MissingDataFileIsRejectedAfterTheGrace shortens it).
    config->delivery.trigger_grace = std::chrono::seconds(10);
    config->data_areas.push_back(
        {"oekonomi", "Økonomi", "FLISOekonomiAflever_1", "FLISOekonomiHent_1", {}});
    for (const char* id : {"vendor", "flis", "lis"}) {
      Account a;
      a.id = id;
      a.authority = "urn:oio:cvr-nr:55133018";
      a.it_system = std::string(id) + "-system";
      config->accounts.push_back(a);
      for (const char* folder : {"IN", "OUT"}) {
        std::string path = root_ + "/accounts/" + id + "/" + folder;
        ASSERT_EQ(std::system(("mkdir -p " + path).c_str()), 0);
      }
    }
    Route route;
    route.id = "oekonomi-vendor";
    route.data_area = "oekonomi";
    route.sender = "vendor";
    route.authorities = {"*"};
    route.recipients = {"flis", "lis"};
    config->routes.push_back(route);
    config_ = config;
  }
  void TearDown() override {
    if (pipeline_) pipeline_->Stop();
    pipeline_.reset();
    if (audit_) audit_->Close();
    ASSERT_EQ(std::system(("rm -rf " + root_).c_str()), 0);
  }

  void StartPipeline(Env* env = Env::Default(), AuditStore* audit = nullptr) {
    auto opened = AuditStore::Open(config_->database.path, Env::Default());
    ASSERT_TRUE(opened.ok()) << opened.status().message();
    audit_ = std::move(*opened);
    auto storage = Storage::Open(env, root_);
    ASSERT_TRUE(storage.ok()) << storage.status().message();
    storage_ = std::move(*storage);
    pipeline_ = std::make_unique<DeliveryPipeline>(
        env, storage_.get(), audit ? audit : audit_.get(), &gate_, PipelineOptions{2});
    pipeline_->SetConfig(config_);
    ASSERT_TRUE(pipeline_->Start().ok());
  }

  std::string Path(const std::string& account, const std::string& folder,
                   const std::string& name = "") const {
    return root_ + "/accounts/" + account + "/" + folder + (name.empty() ? "" : "/" + name);
  }
  void Put(const std::string& path, const std::string& data) {
    std::ofstream out(path, std::ios::binary);
    out << data;
  }
  // Puts a file whole, as a writer by other means should once its trigger may be waiting:
  // written under another name, then renamed into place. (A trigger's re-examination can come
  // between Put's create and write, find the file empty and reject it with 1005.)
  void PutWhole(const std::string& path, const std::string& data) {
    const std::string temp = root_ + "/.put-whole";
    Put(temp, data);
    ASSERT_EQ(std::rename(temp.c_str(), path.c_str()), 0) << path;
  }
  std::string Read(const std::string& path) const {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  bool Exists(const std::string& path) const {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }
  std::set<std::string> List(const std::string& path) const {
    std::set<std::string> names;
    std::string cmd = "ls -A '" + path + "' 2>/dev/null";
    FILE* p = popen(cmd.c_str(), "r");
    char line[1024];
    while (p != nullptr && fgets(line, sizeof line, p) != nullptr) {
      std::string s = line;
      if (!s.empty() && s.back() == '\n') s.pop_back();
      names.insert(s);
    }
    if (p != nullptr) pclose(p);
    return names;
  }

  // Uploads data and trigger as a sender would, and tells the pipeline about the trigger.
  void Send(const std::string& name, const std::string& data, const std::string& trigger_xml) {
    Put(Path("vendor", "OUT", name), data);
    Put(Path("vendor", "OUT", name + ".trigger"), trigger_xml);
    pipeline_->OnFolderChange("vendor", Folder::kOut, name + ".trigger", false);
  }

  // Waits (bounded) until `n` transfers have finished.
  bool WaitFinished(int64_t n, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (pipeline_->finished() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  std::vector<TransferRecord> Transfers() {
    std::vector<TransferRecord> out;
    TransferFilter all;
    all.limit = 1000;
    EXPECT_TRUE(audit_
                    ->ListTransfers(all,
                                    [&](const TransferRecord& t) {
                                      out.push_back(t);
                                      return true;
                                    })
                    .ok());
    return out;
  }

  std::string root_;
  std::shared_ptr<Config> config_;
  NoSessionsGate gate_;
  std::unique_ptr<AuditStore> audit_;
  std::unique_ptr<Storage> storage_;
  std::unique_ptr<DeliveryPipeline> pipeline_;
};

// Records every file operation as "op:where" and every commit (CrashPoint "after_<step>" is
// reached right after the commit recording <step>); fails renames into one folder on demand.
class RecordingEnv : public EnvWrapper {
 public:
  explicit RecordingEnv(std::string root) : EnvWrapper(Env::Default()), root_(std::move(root)) {}

  std::vector<std::string> ops() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    return ops_;
  }
  void Clear() EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    ops_.clear();
  }
  void FailRenamesInto(std::string folder) EXCLUDES(mu_) {
    MutexLock lock(&mu_);
    fail_into_ = std::move(folder);
  }
  // Holds every link (the placement's first operation) or every commit's completion back.
  std::atomic<int> slow_link_ms{0};
  std::atomic<int> slow_commit_ms{0};

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
  // One entry for syncs issued together: "fsyncs:<what>,<what>,...".
  Status FsyncAll(std::span<const int> fds) override {
    std::string entry = "fsyncs:";
    for (int fd : fds) entry += (entry.size() > 7 ? "," : "") + Where(fd);
    {
      MutexLock lock(&mu_);
      ops_.push_back(entry);
    }
    return target()->FsyncAll(fds);
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
    std::this_thread::sleep_for(std::chrono::milliseconds(slow_link_ms.load()));
    Log("link", b);
    return EnvWrapper::LinkAt(a, f, b, t);
  }
  Status UnlinkAt(int d, const std::string& n) override {
    Log("unlink", d);
    return EnvWrapper::UnlinkAt(d, n);
  }
  void CrashPoint(std::string_view name) override {
    if (!MarksACommit(name)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(slow_commit_ms.load()));
    MutexLock lock(&mu_);
    ops_.push_back("commit:" + std::string(name.substr(6)));  // "after_<step>"
  }

 private:
  // The folder a directory fd stands for, relative to the storage root ("spool", "flis/IN",
  // "quarantine/<uuid>"); "file" for a file.
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
    if (p.rfind("quarantine/", 0) == 0) p = "quarantine/<uuid>";
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

}  // namespace fordeler::testing
