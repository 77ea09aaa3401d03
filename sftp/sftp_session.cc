#include "sftp/sftp_session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "sftp/session_impl.h"

namespace fordeler {

// ---- OutputBuffer

void OutputBuffer::Consume(size_t n) {
  head_ += std::min(n, size());
  if (head_ == tail_) head_ = tail_ = 0;
}

uint8_t* OutputBuffer::Append(size_t n) {
  if (tail_ + n > cap_) {
    size_t used = size();
    // Slide the pending bytes to the front when they are few (cheap); otherwise grow, so that a
    // steady stream of READ replies is not copied twice.
    if (head_ > 0 && used + n <= cap_ && used <= cap_ / 2) {
      std::memmove(buf_.get(), buf_.get() + head_, used);
    } else {
      size_t cap = std::max({cap_ * 2, used + n, size_t{64 * 1024}});
      std::unique_ptr<uint8_t[]> bigger(new uint8_t[cap]);
      if (used > 0) std::memcpy(bigger.get(), buf_.get() + head_, used);
      buf_ = std::move(bigger);
      cap_ = cap;
    }
    head_ = 0;
    tail_ = used;
  }
  uint8_t* p = buf_.get() + tail_;
  tail_ += n;
  return p;
}

void OutputBuffer::Append(const void* data, size_t n) {
  if (n > 0) std::memcpy(Append(n), data, n);
}

void OutputBuffer::Shrink(size_t unused) { tail_ -= std::min(unused, size()); }

// ---- SftpSession

SftpSession::SftpSession(SftpSessionOptions options, AccountRegistry* registry,
                         FileEventListener* listener)
    : impl_(std::make_unique<Impl>(std::move(options), registry, listener, &output_)) {}

SftpSession::~SftpSession() = default;

Result<size_t> SftpSession::Consume(const uint8_t* data, size_t len) {
  return impl_->Consume(data, len);
}

void SftpSession::Abort() { impl_->CloseAll(/*abort=*/true); }

// ---- The handler table: one row per request type, OpenSSH style.

using I = SftpSession::Impl;

const I::Row I::kRequests[] = {
    {kFxpOpen, "open", Args::kOpen, Access::kOpen, &I::Open},
    {kFxpClose, "close", Args::kHandle, Access::kNone, &I::Close},
    {kFxpRead, "read", Args::kHandleRead, Access::kNone, &I::Read},
    {kFxpWrite, "write", Args::kHandleWrite, Access::kNone, &I::Write},
    {kFxpLstat, "lstat", Args::kPath, Access::kStat, &I::Stat},
    {kFxpFstat, "fstat", Args::kHandle, Access::kNone, &I::Fstat},
    {kFxpSetstat, "setstat", Args::kPathAttrs, Access::kWrite, &I::Setstat},
    {kFxpFsetstat, "fsetstat", Args::kHandleAttrs, Access::kNone, &I::Fsetstat},
    {kFxpOpendir, "opendir", Args::kPath, Access::kList, &I::Opendir},
    {kFxpReaddir, "readdir", Args::kHandle, Access::kNone, &I::Readdir},
    {kFxpRemove, "remove", Args::kPath, Access::kRemove, &I::Remove},
    {kFxpMkdir, "mkdir", Args::kPathAttrs, Access::kRefuseFolder, &I::Refuse},
    {kFxpRmdir, "rmdir", Args::kPath, Access::kRefuseFolder, &I::Refuse},
    {kFxpRealpath, "realpath", Args::kPath, Access::kAnyPath, &I::Realpath},
    {kFxpStat, "stat", Args::kPath, Access::kStat, &I::Stat},
    {kFxpRename, "rename", Args::kTwoPaths, Access::kRename, &I::Rename},
    {kFxpReadlink, "readlink", Args::kPath, Access::kUnsupported, &I::Refuse},
    {kFxpSymlink, "symlink", Args::kTwoPaths, Access::kUnsupported, &I::Refuse},
    {kFxpExtended, "extended", Args::kExtended, Access::kNone, nullptr},
};

// No hardlink@openssh.com: delivered files must stay immutable (contract §2).
const I::Row I::kExtensions[] = {
    {kFxpExtended, "posix-rename@openssh.com", Args::kTwoPaths, Access::kRename, &I::PosixRename},
    {kFxpExtended, "statvfs@openssh.com", Args::kPath, Access::kStat, &I::StatVfs},
    {kFxpExtended, "fsync@openssh.com", Args::kHandle, Access::kNone, &I::Fsync},
    {kFxpExtended, "limits@openssh.com", Args::kNone, Access::kNone, &I::Limits},
};

namespace {

// Row lookup by type without searching: built once.
struct RowIndex {
  const I::Row* by_type[256] = {};
  RowIndex() {
    for (const I::Row& row : I::kRequests) by_type[row.type] = &row;
  }
};

const I::Row* FindRow(uint8_t type) {
  static const RowIndex index;
  return index.by_type[type];
}

const I::Row* FindExtension(std::string_view name) {
  for (const I::Row& row : I::kExtensions) {
    if (name == row.name) return &row;
  }
  return nullptr;
}

// Whether a request of this kind reaches the jail's folders on disk (and so must see them as they
// are now): REALPATH only normalises, MKDIR, RMDIR, SYMLINK and READLINK are refused unseen.
bool UsesFolders(Access access) {
  switch (access) {
    case Access::kNone:
    case Access::kAnyPath:
    case Access::kRefuseFolder:
    case Access::kUnsupported:
      return false;
    default:
      return true;
  }
}

}  // namespace

// ---- Impl

SftpSession::Impl::Impl(SftpSessionOptions opts, AccountRegistry* reg, FileEventListener* l,
                        OutputBuffer* o)
    : options(std::move(opts)),
      registry(reg),
      listener(l),
      out(o),
      account(reg->impl().Find(options.account)),
      jail_held(account ? reg->impl().CurrentJail(*account) : nullptr),
      jail(jail_held.get()),
      handles(options.max_handles, options.connection_handles) {}

SftpSession::Impl::~Impl() { CloseAll(/*abort=*/true); }

Result<size_t> SftpSession::Impl::Consume(const uint8_t* data, size_t len) {
  if (jail == nullptr)
    return Status::PermissionDenied("account " + options.account + " has no jail");
  size_t consumed = 0;
  while (out->size() < kOutputHighWater) {
    const uint8_t* body;
    size_t body_len, total;
    Frame f = NextFrame(data + consumed, len - consumed, &body, &body_len, &total);
    if (f == Frame::kIncomplete) break;
    if (f == Frame::kTooLarge) return Status::InvalidArgument("SFTP packet over 256 KiB");
    if (f == Frame::kEmpty) return Status::InvalidArgument("empty SFTP packet");
    Status s = HandlePacket(body, body_len);
    if (!s.ok()) return s;
    consumed += total;
  }
  return consumed;
}

Status SftpSession::Impl::HandlePacket(const uint8_t* body, size_t len) {
  WireReader r(body, len);
  uint8_t type = 0;
  r.U8(&type);  // len >= 1: framing guarantees it
  if (!initialized) {
    if (type != kFxpInit) return Status::InvalidArgument("SFTP request before INIT");
    return HandleInit(&r);
  }
  if (type == kFxpInit) return Status::InvalidArgument("second SFTP INIT");
  req.type = type;
  if (!r.U32(&req.id)) return Status::InvalidArgument("SFTP packet without request id");
  const Row* row = FindRow(type);
  if (row == nullptr) {
    ReplyStatus(req.id, kFxOpUnsupported, "unsupported request type");
    return Status::Ok();
  }
  if (row->args == Args::kExtended) {
    if (!r.String(&req.extension))
      return Status::InvalidArgument("malformed SFTP extended request");
    row = FindExtension(req.extension);
    if (row == nullptr) {
      ReplyStatus(req.id, kFxOpUnsupported, "unsupported extension");
      return Status::Ok();
    }
  }
  if (!ParseArgs(row->args, &r, &req)) {
    return Status::InvalidArgument(std::string("malformed SFTP ") + row->name + " request");
  }
  req.access = row->access;
  Status s = NormalizeAll(&req);
  if (s.ok() && UsesFolders(req.access)) RefreshJail(req);
  if (s.ok()) s = CheckPolicy(&req);
  size_t before = out->size();
  if (s.ok()) s = (this->*(row->handler))(req);
  const bool deferred = std::exchange(reply_deferred, false);
  if (!s.ok()) {
    ReplyError(req.id, s);
  } else if (out->size() == before && !deferred) {
    ReplyStatus(req.id, kFxOk, "Success");
  }
  return Status::Ok();
}

void SftpSession::Impl::RefreshJail(const Request& req) {
  if (account == nullptr) return;
  std::shared_ptr<Jail> now =
      req.access == Access::kRename
          ? registry->impl().CurrentJail(*account, {req.vp.folder, req.vp2.folder})
          : registry->impl().CurrentJail(*account, {req.vp.folder});
  if (now.get() == jail) return;
  jail_held = std::move(now);
  jail = jail_held.get();
}

Status SftpSession::Impl::HandleInit(WireReader* r) {
  uint32_t client_version;
  if (!r->U32(&client_version)) return Status::InvalidArgument("malformed SFTP INIT");
  initialized = true;
  // Version 3 whatever the client asks (lftp asks for 6).
  ReplyWriter w(out, kFxpVersion);
  w.U32(kSftpVersion);
  for (const Row& row : kExtensions) {
    std::string_view name = row.name;
    w.String(name).String(name == "statvfs@openssh.com" ? "2" : "1");
  }
  w.Finish();
  return Status::Ok();
}

bool SftpSession::Impl::ParseArgs(Args args, WireReader* r, Request* q) {
  switch (args) {
    case Args::kNone:
    case Args::kExtended:
      return true;
    case Args::kPath:
      return r->String(&q->path);
    case Args::kPathAttrs:
      return r->String(&q->path) && r->Attrs(&q->attrs);
    case Args::kOpen:
      return r->String(&q->path) && r->U32(&q->pflags) && r->Attrs(&q->attrs);
    case Args::kHandle:
      return r->String(&q->handle);
    case Args::kHandleRead:
      return r->String(&q->handle) && r->U64(&q->offset) && r->U32(&q->len);
    case Args::kHandleWrite:
      return r->String(&q->handle) && r->U64(&q->offset) && r->String(&q->data);
    case Args::kHandleAttrs:
      return r->String(&q->handle) && r->Attrs(&q->attrs);
    case Args::kTwoPaths:
      return r->String(&q->path) && r->String(&q->path2);
  }
  return false;
}

Status SftpSession::Impl::NormalizeAll(Request* q) {
  switch (q->access) {
    case Access::kNone:
    case Access::kRefuseFolder:
    case Access::kUnsupported:
      return Status::Ok();  // no path, or refused whatever it is
    case Access::kRename: {
      Status s = NormalizePath(q->path, &q->vp);
      return s.ok() ? NormalizePath(q->path2, &q->vp2) : s;
    }
    default:
      return NormalizePath(q->path, &q->vp);
  }
}

// ---- Replies

void SftpSession::Impl::ReplyStatus(uint32_t id, uint32_t code, std::string_view message) {
  // Messages may quote a client's bytes; the protocol wants UTF-8 (paramiko fails otherwise).
  bool plain = std::all_of(message.begin(), message.end(),
                           [](char c) { return c >= 0x20 && c < 0x7f && c != '\\'; });
  std::string escaped;
  if (!plain) escaped = PrintableName(message);
  ReplyWriter w(out, kFxpStatus);
  w.U32(id).U32(code).String(plain ? message : std::string_view(escaped)).String("");
  w.Finish();
}

void SftpSession::Impl::ReplyError(uint32_t id, const Status& s) {
  std::string_view message;
  uint32_t code = ToFxStatus(s, &message);
  ReplyStatus(id, code, message);
}

void SftpSession::Impl::ReplyHandle(uint32_t id, const char* handle) {
  ReplyWriter w(out, kFxpHandle);
  w.U32(id).String(std::string_view(handle, HandleTable::kIdSize));
  w.Finish();
}

void SftpSession::Impl::ReplyAttrs(uint32_t id, const struct stat& st) {
  ReplyWriter w(out, kFxpAttrs);
  w.U32(id).Attrs(AttrsFromStat(st));
  w.Finish();
}

// ---- Handles

Handle* SftpSession::Impl::FileHandle(std::string_view id, Status* error) {
  Handle* h = handles.Find(id);
  if (h == nullptr || h->kind != Handle::Kind::kFile) {
    *error = Status::Unavailable("invalid handle");
    return nullptr;
  }
  if (h->revoked()) {
    *error = Status::NotFound(h->name + ": the file has been taken for delivery");
    return nullptr;
  }
  return h;
}

void SftpSession::Impl::CloseAll(bool abort) {
  handles.ForEachOpen([&](Handle* h) {
    if (h->kind == Handle::Kind::kDir) {
      if (h->dir != nullptr) closedir(h->dir);
      handles.Free(h);
    } else {
      CloseFileHandle(h, abort, nullptr);
    }
  });
}

namespace {

// A "<name>.trigger" whose upload did not finish must never look complete: remove it, if the
// name still names the file this handle wrote.
void RemoveHalfWrittenTrigger(Jail* jail, const Handle& h) {
  if (!IsTriggerName(h.name)) return;
  struct stat st;
  int dir = jail->folder_fd(Folder::kOut);
  if (fstatat(dir, h.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && st.st_dev == h.dev &&
      st.st_ino == h.ino) {
    unlinkat(dir, h.name.c_str(), 0);
  }
}

}  // namespace

void SftpSession::Impl::CloseFileHandle(Handle* h, bool abort, Status* result) {
  bool upload = h->writable && h->folder == Folder::kOut && !h->revoked();
  // An upload whose writes failed is incomplete: it is not announced, and a trigger is removed
  // (as after an aborted session) so that nothing half-written looks complete.
  bool incomplete = abort || h->write_failed;
  bool publish = upload && !incomplete;
  bool shared = h->shared_with_another_writer();
  UploadClosed event;
  if (upload) {
    struct stat st;
    if (fstat(h->fd, &st) == 0) {
      event.size = static_cast<uint64_t>(st.st_size);
      event.inode = static_cast<uint64_t>(st.st_ino);
      if (publish) StartWriteBack(h, event.size, /*closing=*/true);
    }
    // The digest describes the file only if this handle wrote all of it, alone.
    if (publish && h->hash_valid && h->next_offset == event.size && !shared) {
      event.sha256 = h->hash->Finish();
    }
  }
  if (h->writable && h->hash && !event.sha256) h->hash->Finish();  // reset for the slot's reuse
  // A finished upload of a data file loses its mark (kUnfinishedUploadMark); should that fail,
  // the upload is reported as failed, as the file would not be taken.
  if (publish && h->marked && fchmod(h->fd, kUploadMode) != 0) {
    if (result != nullptr) *result = Status::FromErrno(errno, h->name);
    publish = false;
    event.sha256.reset();
  }
  // A trigger that another writer had open meanwhile may have been written completely by it (a
  // client retrying while its old session lives on): it is not removed, and delivery looks at
  // it as at any closed trigger (waiting for that writer's close if it still writes).
  if (upload && incomplete && !shared) RemoveHalfWrittenTrigger(jail, *h);
  if (close(h->fd) != 0 && publish) {
    if (result != nullptr) *result = Status::FromErrno(errno, h->name);
    publish = false;
    event.sha256.reset();
  }
  event.account = options.account;
  event.name = h->name;
  event.how = publish ? UploadClosed::How::kClosed : UploadClosed::How::kChanged;
  // A data file is announced before the handle lets go of it, so that no take can begin with
  // what an earlier close said about it; an upload that is not announced may still have changed
  // its bytes (kChanged), and delivery must not trust that earlier digest any longer. A trigger
  // is announced after: delivery looks at it at once, and must find it closed.
  bool trigger = IsTriggerName(h->name);
  if (upload && !trigger) listener->OnUploadClosed(event);
  if (h->ticket) account->Release(h->name, h->writable);
  if (!abort && h->folder == Folder::kIn && h->readable) PublishDownloaded(h);
  if (trigger && (publish || (upload && incomplete && shared))) {
    event.how = UploadClosed::How::kClosed;
    listener->OnUploadClosed(event);
  }
  handles.Free(h);
}

}  // namespace fordeler
