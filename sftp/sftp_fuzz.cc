#include "sftp/sftp_fuzz.h"

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "config/config.h"
#include "core/env.h"
#include "sftp/account_registry.h"
#include "sftp/codec.h"
#include "sftp/sftp_session.h"

namespace fordeler {

namespace {

class NullListener : public FileEventListener {
 public:
  void OnUploadClosed(const UploadClosed&) override {}
  void OnSessionEvent(const SessionEvent&) override {}
};

// Small, so that inputs of a few packets can reach them (the packet limit is 256 KiB).
constexpr uint64_t kMaxFileSize = 64 << 10;
constexpr uint64_t kOutQuota = 192 << 10;

std::string& FuzzRoot() {
  static std::string root;
  return root;
}

AccountRegistry* FuzzRegistry() {
  static AccountRegistry* registry = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string root = std::string(tmp ? tmp : "/tmp") + "/fordeler-fuzz-XXXXXX";
    if (mkdtemp(root.data()) == nullptr) std::abort();
    FuzzRoot() = root;
    Config config;
    config.storage.root = root;
    config.accounts.emplace_back();
    config.accounts.back().id = "fuzz";
    auto* r = new AccountRegistry(Env::Default());
    if (!r->Configure(config).ok()) std::abort();
    return r;
  }();
  return registry;
}

namespace fs = std::filesystem;

// Every run starts from the same jail, so that a run's outcome depends on its input alone: /OUT
// empty, /IN holding a delivery (data and metadata) to read, stat and remove.
void ResetJail() {
  fs::path account = fs::path(FuzzRoot()) / "accounts" / "fuzz";
  for (const char* folder : {"IN", "OUT"}) {
    for (const auto& entry : fs::directory_iterator(account / folder)) fs::remove_all(entry.path());
  }
  std::ofstream(account / "IN" / "a.csv") << "a;b;c\n1;2;3\n";
  std::ofstream(account / "IN" / "a.csv.metadata") << "<m/>\n";
}

// What no input may achieve: anything in the account's folder but /IN and /OUT, anything in them
// but regular files, a data file in /OUT over max_file_size, or /OUT over its quota.
void CheckJail() {
  fs::path account = fs::path(FuzzRoot()) / "accounts" / "fuzz";
  for (const auto& entry : fs::directory_iterator(account)) {
    std::string name = entry.path().filename().string();
    if (name != "IN" && name != "OUT") std::abort();
  }
  uint64_t out_bytes = 0;
  for (const char* folder : {"IN", "OUT"}) {
    for (const auto& entry : fs::directory_iterator(account / folder)) {
      struct stat st;
      if (lstat(entry.path().c_str(), &st) != 0 || !S_ISREG(st.st_mode)) std::abort();
      if (std::string(folder) == "IN") continue;
      bool trigger = entry.path().extension() == ".trigger";
      auto size = static_cast<uint64_t>(st.st_size);
      if (!trigger && size > kMaxFileSize) std::abort();
      if (!trigger) out_bytes += size;
    }
  }
  if (out_bytes > kOutQuota) std::abort();
}

void RunSession(const uint8_t* data, size_t size, size_t piece) {
  NullListener listener;
  SftpSessionOptions options;
  options.account = "fuzz";
  options.max_handles = 16;
  options.max_file_size = kMaxFileSize;
  options.out_quota = kOutQuota;
  ResetJail();
  SftpSession session(options, FuzzRegistry(), &listener);
  std::string init = PacketBuilder(kFxpInit).U32(3).Finish();
  session.Consume(reinterpret_cast<const uint8_t*>(init.data()), init.size());
  std::string pending;
  for (size_t at = 0; at < size; at += piece) {
    pending.append(reinterpret_cast<const char*>(data) + at, std::min(piece, size - at));
    Result<size_t> used =
        session.Consume(reinterpret_cast<const uint8_t*>(pending.data()), pending.size());
    if (!used.ok()) break;
    pending.erase(0, *used);
    session.output().Consume(session.output().size());
  }
  session.Abort();
  CheckJail();
}

}  // namespace

int FuzzSftpSession(const uint8_t* data, size_t size) {
  FuzzRegistry();
  RunSession(data, size, size == 0 ? 1 : size);
  RunSession(data, size, 7);
  return 0;
}

}  // namespace fordeler
