#include "sftp/sftp_fuzz.h"

#include <cstdlib>
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

AccountRegistry* FuzzRegistry() {
  static AccountRegistry* registry = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string root = std::string(tmp ? tmp : "/tmp") + "/fordeler-fuzz-XXXXXX";
    if (mkdtemp(root.data()) == nullptr) std::abort();
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

void RunSession(const uint8_t* data, size_t size, size_t piece) {
  NullListener listener;
  SftpSessionOptions options;
  options.account = "fuzz";
  options.max_handles = 16;
  options.max_file_size = 1 << 20;
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
}

}  // namespace

int FuzzSftpSession(const uint8_t* data, size_t size) {
  RunSession(data, size, size == 0 ? 1 : size);
  RunSession(data, size, 7);
  return 0;
}

}  // namespace fordeler
