// Test-only: a Client that drives an SftpSession with request bytes encoded by PacketBuilder,
// and SessionTest, a fixture with a real temporary storage root and two accounts.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/sha256.h"
#include "sftp/account_registry.h"
#include "sftp/codec.h"
#include "sftp/sftp_session.h"
#include "sftp/test_util.h"

namespace fordeler {
namespace testing_util {

struct Reply {
  uint8_t type = 0;
  uint32_t id = 0;
  uint32_t code = 0;  // STATUS
  std::string message;
  std::string handle;                             // HANDLE
  std::string data;                               // DATA
  FileAttrs attrs;                                // ATTRS
  std::vector<std::string> names, longnames;      // NAME
  std::map<std::string, std::string> extensions;  // VERSION
  std::vector<uint64_t> u64s;                     // EXTENDED_REPLY
};

// Drives one SftpSession as a client would, with request bytes encoded by PacketBuilder.
class Client {
 public:
  Client(AccountRegistry* registry, EventRecorder* events, const std::string& account,
         size_t max_handles = 64)
      : session_(Options(account, max_handles), registry, events) {}
  Client(AccountRegistry* registry, EventRecorder* events, SftpSessionOptions options)
      : session_(std::move(options), registry, events) {}

  static SftpSessionOptions Options(const std::string& account, size_t max_handles) {
    SftpSessionOptions o;
    o.account = account;
    o.address = "127.0.0.1:1234";
    o.max_handles = max_handles;
    o.max_file_size = 1 << 20;
    return o;
  }

  // Feeds raw bytes; returns the session's verdict.
  Status Feed(const std::string& bytes) {
    in_ += bytes;
    Result<size_t> used =
        session_.Consume(reinterpret_cast<const uint8_t*>(in_.data()), in_.size());
    if (!used.ok()) return used.status();
    in_.erase(0, *used);
    return Status::Ok();
  }

  Reply Call(const std::string& packet) {
    Status s = Feed(packet);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return Next();
  }

  Reply Next() {
    Reply r;
    OutputBuffer& out = session_.output();
    const uint8_t* body;
    size_t len, total;
    if (NextFrame(out.data(), out.size(), &body, &len, &total) != Frame::kComplete) {
      ADD_FAILURE() << "no reply";
      return r;
    }
    WireReader w(body, len);
    w.U8(&r.type);
    if (r.type == kFxpVersion) {
      w.U32(&r.id);
      std::string_view k, v;
      while (w.String(&k) && w.String(&v)) r.extensions[std::string(k)] = std::string(v);
    } else {
      w.U32(&r.id);
      ParseBody(&w, &r);
    }
    out.Consume(total);
    return r;
  }

  uint32_t id() { return ++id_; }
  SftpSession& session() { return session_; }

  void Init() {
    Reply r = Call(PacketBuilder(kFxpInit).U32(6).Finish());
    ASSERT_EQ(r.type, kFxpVersion);
  }
  Reply Open(const std::string& path, uint32_t pflags, FileAttrs a = {}) {
    return Call(PacketBuilder(kFxpOpen).U32(id()).String(path).U32(pflags).Attrs(a).Finish());
  }
  Reply Create(const std::string& path) { return Open(path, kFxfWrite | kFxfCreat | kFxfTrunc); }
  Reply Write(const std::string& h, uint64_t off, const std::string& data) {
    return Call(PacketBuilder(kFxpWrite).U32(id()).String(h).U64(off).String(data).Finish());
  }
  Reply Read(const std::string& h, uint64_t off, uint32_t len) {
    return Call(PacketBuilder(kFxpRead).U32(id()).String(h).U64(off).U32(len).Finish());
  }
  Reply Close(const std::string& h) {
    return Call(PacketBuilder(kFxpClose).U32(id()).String(h).Finish());
  }
  Reply PathOp(uint8_t type, const std::string& path) {
    return Call(PacketBuilder(type).U32(id()).String(path).Finish());
  }
  Reply Setstat(const std::string& path, const FileAttrs& a) {
    return Call(PacketBuilder(kFxpSetstat).U32(id()).String(path).Attrs(a).Finish());
  }
  Reply Rename(const std::string& from, const std::string& to, bool posix = false) {
    PacketBuilder b(posix ? kFxpExtended : kFxpRename);
    b.U32(id());
    if (posix) b.String("posix-rename@openssh.com");
    return Call(b.String(from).String(to).Finish());
  }
  // Uploads `data` to `path` in one WRITE; returns the final CLOSE status.
  uint32_t Put(const std::string& path, const std::string& data) {
    Reply h = Create(path);
    if (h.type != kFxpHandle) return h.code;
    if (!data.empty()) {
      EXPECT_EQ(Write(h.handle, 0, data).code, kFxOk);
    }
    return Close(h.handle).code;
  }
  std::vector<std::string> List(const std::string& path) {
    std::vector<std::string> names;
    Reply h = PathOp(kFxpOpendir, path);
    if (h.type != kFxpHandle) return {"<" + std::to_string(h.code) + ">"};
    for (;;) {
      Reply r = Call(PacketBuilder(kFxpReaddir).U32(id()).String(h.handle).Finish());
      if (r.type != kFxpName) break;
      names.insert(names.end(), r.names.begin(), r.names.end());
    }
    Close(h.handle);
    return names;
  }

 private:
  static void ParseBody(WireReader* w, Reply* r) {
    std::string_view s, l;
    switch (r->type) {
      case kFxpStatus:
        w->U32(&r->code);
        if (w->String(&s)) r->message = s;
        break;
      case kFxpHandle:
        if (w->String(&s)) r->handle = s;
        break;
      case kFxpData:
        if (w->String(&s)) r->data = s;
        break;
      case kFxpAttrs:
        w->Attrs(&r->attrs);
        break;
      case kFxpName: {
        uint32_t n = 0;
        w->U32(&n);
        FileAttrs a;
        for (uint32_t i = 0; i < n && w->String(&s) && w->String(&l) && w->Attrs(&a); ++i) {
          r->names.emplace_back(s);
          r->longnames.emplace_back(l);
          r->attrs = a;
        }
        break;
      }
      case kFxpExtendedReply: {
        uint64_t v;
        while (w->U64(&v)) r->u64s.push_back(v);
        break;
      }
    }
  }

  SftpSession session_;
  std::string in_;
  uint32_t id_ = 0;
};

class SessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(configured_.ok()) << configured_.ToString();
    client_.Init();
  }
  Status ConfigureAccounts() {
    Config config;
    config.storage.root = dir_.path();
    for (const char* id : {"acme", "other"}) {
      config.accounts.emplace_back();
      config.accounts.back().id = id;
    }
    return registry_.Configure(config);
  }
  std::string Out(const std::string& account = "acme") {
    return dir_.path() + "/accounts/" + account + "/OUT/";
  }
  std::string In(const std::string& account = "acme") {
    return dir_.path() + "/accounts/" + account + "/IN/";
  }
  static void WriteFile(const std::string& path, const std::string& content) {
    int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(write(fd, content.data(), content.size()), static_cast<ssize_t>(content.size()));
    close(fd);
  }
  static bool Exists(const std::string& path) {
    struct stat st;
    return lstat(path.c_str(), &st) == 0;
  }

  TempDir dir_;
  FakeEnv env_;
  AccountRegistry registry_{&env_};
  EventRecorder events_;
  Status configured_ = ConfigureAccounts();  // before client_: a session needs its jail
  Client client_{&registry_, &events_, "acme"};
};

}  // namespace testing_util
}  // namespace fordeler
