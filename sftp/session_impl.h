// Internal to sftp/: SftpSession::Impl, shared by sftp_session.cc (framing, the handler table,
// the policy) and the handler files file_handlers.cc and path_handlers.cc.
//
// A request goes through four steps, each once: its arguments are parsed by the row's Args
// (a short packet ends the session), its paths are normalised by path.cc, the policy decides on
// (access, folder, name), and only then does the row's handler run. Handlers return a Status;
// when it is not OK, the dispatcher answers with ToFxStatus of it; when OK, the handler has
// replied (or the dispatcher answers SSH_FX_OK).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/file_events.h"
#include "core/status.h"
#include "sftp/account_registry_impl.h"
#include "sftp/codec.h"
#include "sftp/handle_table.h"
#include "sftp/jail.h"
#include "sftp/path.h"
#include "sftp/sftp_session.h"

namespace fordeler {

// What a request does to the path(s) it names; the policy (CheckPolicy) decides on it.
enum class Access : uint8_t {
  kNone,          // no path (handle-based, or none)
  kAnyPath,       // REALPATH: any path that normalises
  kStat,          // STAT, LSTAT, statvfs: a folder or a reachable file
  kList,          // OPENDIR: a folder
  kOpen,          // OPEN: kRead or kWrite/kCreate, by its pflags
  kRead,          // open for reading
  kWrite,         // change an existing file: open for writing, SETSTAT
  kCreate,        // open with SSH_FXF_CREAT
  kRemove,        // REMOVE
  kRename,        // RENAME, posix-rename: from /OUT to a valid name in /OUT
  kRefuseFolder,  // MKDIR, RMDIR: refused
  kUnsupported,   // SYMLINK, READLINK: refused
};

// How a request's arguments after its id are laid out.
enum class Args : uint8_t {
  kNone,
  kPath,
  kPathAttrs,
  kOpen,  // path, pflags, attrs
  kHandle,
  kHandleRead,   // handle, offset, len
  kHandleWrite,  // handle, offset, data
  kHandleAttrs,
  kTwoPaths,
  kExtended,  // extension name, then the extension's own Args
};

struct Request {
  uint8_t type = 0;
  uint32_t id = 0;
  std::string_view path, path2, handle, data, extension;
  uint64_t offset = 0;
  uint32_t len = 0;
  uint32_t pflags = 0;
  FileAttrs attrs;
  Access access = Access::kNone;
  VirtualPath vp, vp2;  // the normalised path(s)
};

struct SftpSession::Impl {
  using Handler = Status (Impl::*)(Request&);
  struct Row {
    uint8_t type;
    const char* name;  // request type, or extension name for EXTENDED rows
    Args args;
    Access access;
    Handler handler;
  };

  Impl(SftpSessionOptions opts, AccountRegistry* reg, FileEventListener* l, OutputBuffer* out);
  ~Impl();

  // sftp_session.cc
  Result<size_t> Consume(const uint8_t* data, size_t len);
  Status HandlePacket(const uint8_t* body, size_t len);
  Status HandleInit(WireReader* r);
  bool ParseArgs(Args args, WireReader* r, Request* req);
  Status NormalizeAll(Request* req);
  Status CheckPolicy(Request* req);
  // Uses the account's jail as the folders `req` names are now
  // (AccountRegistry::Impl::CurrentJail).
  void RefreshJail(const Request& req);
  void ReplyStatus(uint32_t id, uint32_t code, std::string_view message);
  void ReplyError(uint32_t id, const Status& s);
  void ReplyHandle(uint32_t id, const char* handle);
  void ReplyAttrs(uint32_t id, const struct stat& st);
  void CloseAll(bool abort);
  // max_file_size for data files; a fixed cap for triggers.
  uint64_t UploadLimit(const std::string& name) const;
  void StartWriteBack(Handle* h, uint64_t end, bool closing);
  // A limit refused a request: a log line and an audit event (SessionEvent kLimit).
  void ReportLimit(const std::string& limit);
  // max_handles is reached: reported once per session; the status OPEN/OPENDIR fail with.
  Status HandleLimit();
  // out_quota: OK when /OUT may hold `name` (inode `ino`) at `size` bytes besides the other
  // files there (triggers are not counted); *room receives the size it may grow to before the
  // next check. Always OK without out_quota, and for triggers.
  Status CheckOutQuota(const std::string& name, ino_t ino, uint64_t size, uint64_t* room);
  // Write, FSETSTAT size: checks out_quota when the file grows past h->quota_room.
  Status GrowOutFile(Handle* h, uint64_t end);
  void CloseFileHandle(Handle* h, bool abort, Status* result);
  Handle* FileHandle(std::string_view id, Status* error);

  // file_handlers.cc
  Status Open(Request& r);
  Status Close(Request& r);
  Status Read(Request& r);
  Status Write(Request& r);
  Status Fstat(Request& r);
  Status Fsetstat(Request& r);
  Status Fsync(Request& r);
  Status ApplyAttrs(Handle* h, const FileAttrs& a);
  // Answers request `id` once `fd` (a copy of a closed upload's descriptor, closed here) is
  // synced, through options.offload.
  void SyncThenReply(int fd, uint32_t id, std::string name);
  void PublishDownloaded(Handle* h);

  // path_handlers.cc
  Status Stat(Request& r);
  Status Setstat(Request& r);
  Status Remove(Request& r);
  Status Rename(Request& r);
  Status PosixRename(Request& r);
  Status DoRename(Request& r, bool overwrite);
  Status Realpath(Request& r);
  Status Opendir(Request& r);
  Status Readdir(Request& r);
  Status StatVfs(Request& r);
  Status Limits(Request& r);
  Status Refuse(Request& r);
  bool AppendDirEntry(ReplyWriter* w, const std::string& name, const struct stat& st);

  static const Row kRequests[];
  static const Row kExtensions[];

  SftpSessionOptions options;
  AccountRegistry* registry;
  FileEventListener* listener;
  OutputBuffer* out;
  std::shared_ptr<AccountState> account;  // null when the account has no jail
  std::shared_ptr<Jail> jail_held;        // the jail as the session started (AccountRegistry)
  Jail* jail = nullptr;
  HandleTable handles;
  bool initialized = false;
  bool handle_limit_reported = false;
  bool reply_deferred = false;  // the handler will answer later (SyncThenReply)
  Request req;                  // reused for every request
  std::string scratch;          // long names
};

}  // namespace fordeler
