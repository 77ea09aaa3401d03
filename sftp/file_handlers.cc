// The handlers of requests on file handles: OPEN, CLOSE, READ, WRITE, FSTAT, FSETSTAT and
// fsync@openssh.com. Part of SftpSession::Impl; the policy has already approved OPEN's path.
#include <dirent.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <utility>

#include "core/names.h"
#include "sftp/session_impl.h"

namespace fordeler {

using I = SftpSession::Impl;

namespace {

int OpenFlags(uint32_t pflags, bool write) {
  bool read = !write || (pflags & kFxfRead);
  int flags = write ? (read ? O_RDWR : O_WRONLY) : O_RDONLY;
  if (!write) return flags;  // an open for reading may carry attributes and flags: ignored
  if (pflags & kFxfCreat) flags |= O_CREAT;
  if (pflags & kFxfTrunc) flags |= O_TRUNC;
  if (pflags & kFxfExcl) flags |= O_EXCL;
  if (pflags & kFxfAppend) flags |= O_APPEND;
  return flags;
}

Status TooLarge() { return Status::Unavailable("file too large"); }

// A trigger is not a data file: max_file_size does not apply to it. It is kept small anyway;
// one over 64 KiB is accepted here and rejected by delivery with TRIGGER_MALFORMED (1001).
constexpr uint64_t kMaxTriggerUpload = 1 << 20;

// out_quota is checked again each time an upload grows this much past its last check (a scan
// of /OUT); parallel uploads may pass the quota by at most this much each.
constexpr uint64_t kQuotaChunk = 8 << 20;

}  // namespace

void I::ReportLimit(const std::string& limit) {
  spdlog::warn("event=limit account={} peer={} limit={}", options.account, options.address,
               LogValue(limit));
  listener->OnSessionEvent(
      {SessionEvent::Kind::kLimit, options.account, options.address, "", Folder::kRoot, "", limit});
}

Status I::HandleLimit() {
  std::string limit = "max_handles_per_session (" + std::to_string(handles.max()) + ") reached";
  if (!handle_limit_reported) {
    handle_limit_reported = true;
    ReportLimit(limit);
  }
  return Status::Unavailable("too many open handles: " + limit);
}

Status I::CheckOutQuota(const std::string& name, ino_t ino, uint64_t size, uint64_t* room) {
  *room = UINT64_MAX;
  if (!options.out_quota || IsTriggerName(name)) return Status::Ok();
  uint64_t quota = *options.out_quota;
  Result<DIR*> d = jail->OpenDir(Folder::kOut);
  if (!d.ok()) return d.status();
  uint64_t others = 0;
  struct stat st;
  while (struct dirent* e = readdir(*d)) {
    if (e->d_ino == ino || e->d_name[0] == '.' || IsTriggerName(e->d_name)) continue;
    if (fstatat(dirfd(*d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        st.st_ino != ino) {
      others += static_cast<uint64_t>(st.st_size);
    }
  }
  closedir(*d);
  if (others > quota || size > quota - others) {
    return Status::Unavailable("quota exceeded: /OUT may hold " + std::to_string(quota) +
                               " bytes (out_quota), " + std::to_string(others) +
                               " are taken by other files");
  }
  *room = std::min(quota - others, size + kQuotaChunk);
  return Status::Ok();
}

Status I::GrowOutFile(Handle* h, uint64_t end) {
  if (!options.out_quota || h->folder != Folder::kOut || end <= h->quota_room) {
    return Status::Ok();
  }
  struct stat st;
  if (fstat(h->fd, &st) == 0) end = std::max(end, static_cast<uint64_t>(st.st_size));
  Status s = CheckOutQuota(h->name, h->ino, end, &h->quota_room);
  if (!s.ok()) {
    h->quota_room = 0;
    if (!h->write_failed) ReportLimit("out_quota: " + h->name + ": " + s.message());
    h->write_failed = true;
  }
  return s;
}

uint64_t I::UploadLimit(const std::string& name) const {
  return IsTriggerName(name) ? kMaxTriggerUpload : options.max_file_size;
}

Status I::Open(Request& r) {
  if (handles.full()) return HandleLimit();
  bool write = r.access != Access::kRead;
  int flags = OpenFlags(r.pflags, write);
  std::shared_ptr<FileTicket> ticket;
  uint64_t overlaps_seen = 0;
  if (r.vp.folder == Folder::kOut) {
    Result<std::shared_ptr<FileTicket>> t = account->Acquire(r.vp.name, write, &overlaps_seen);
    if (!t.ok()) return t.status();
    ticket = std::move(*t);
  }
  struct stat st;
  Result<int> fd = jail->OpenFile(r.vp.folder, r.vp.name, flags, &st);
  if (!fd.ok()) {
    if (ticket) account->Release(r.vp.name, write);
    return fd.status();
  }
  if (ticket && write) account->ForgetTaken(r.vp.name);
  char id[HandleTable::kIdSize];
  Handle* h = handles.Allocate(Handle::Kind::kFile, id);
  h->fd = *fd;
  h->folder = r.vp.folder;
  h->name.assign(r.vp.name);
  h->readable = (flags & O_ACCMODE) != O_WRONLY;
  h->writable = write;
  h->append = (flags & O_APPEND) != 0;
  h->ticket = std::move(ticket);
  h->overlaps_seen = overlaps_seen;
  h->dev = st.st_dev;
  h->ino = st.st_ino;
  if (write) {
    // Marked as unfinished until an upload of it finishes (CloseFileHandle clears the mark). A
    // file of another owner (put in /OUT by other means) may refuse the mark: then it has none
    // to clear either.
    constexpr mode_t kMarked = kUploadMode | kUnfinishedUploadMark;
    if (h->folder == Folder::kOut && !IsTriggerName(h->name)) {
      h->marked = (st.st_mode & 07777) == kMarked || fchmod(h->fd, kMarked) == 0;
    }
    if (!h->hash) h->hash = std::make_unique<Sha256>();
    h->next_offset = h->append ? static_cast<uint64_t>(st.st_size) : 0;
    h->hash_valid = !h->append || st.st_size == 0;
  }
  ReplyHandle(r.id, id);
  return Status::Ok();
}

Status I::Close(Request& r) {
  Handle* h = handles.Find(r.handle);
  if (h == nullptr) return Status::Unavailable("invalid handle");
  if (h->kind == Handle::Kind::kDir) {
    if (h->dir != nullptr) closedir(h->dir);
    handles.Free(h);
    return Status::Ok();
  }
  // An upload that was written back while it arrived is answered once it is on disk.
  int copy = -1;
  if (options.offload && h->writable && h->folder == Folder::kOut && h->written_back > 0 &&
      !h->write_failed && !h->revoked()) {
    copy = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
  }
  std::string name = h->name;
  Status result;
  CloseFileHandle(h, /*abort=*/false, &result);
  if (copy < 0) return result;
  if (!result.ok()) {
    close(copy);
    return result;
  }
  SyncThenReply(copy, r.id, std::move(name));
  return Status::Ok();
}

void I::SyncThenReply(int fd, uint32_t id, std::string name) {
  auto error = std::make_shared<int>(0);
  reply_deferred = true;
  options.offload(
      [fd, error] {
        if (fdatasync(fd) != 0) *error = errno;
        close(fd);
      },
      [this, id, error, name = std::move(name)] {
        if (*error == 0) {
          ReplyStatus(id, kFxOk, "Success");
        } else {
          ReplyError(id, Status::FromErrno(*error, name));
        }
      });
}

Status I::Read(Request& r) {
  Status error;
  Handle* h = FileHandle(r.handle, &error);
  if (h == nullptr) return error;
  if (!h->readable) return Status::PermissionDenied("handle not open for reading");
  size_t len = std::min<size_t>(r.len, kMaxReadWrite);
  constexpr size_t kHeader = 13;  // length, type, id, data length
  // The data goes from the file straight into the output buffer: no copy.
  uint8_t* p = out->Append(kHeader + len);
  ssize_t n = 0;
  if (len > 0) {
    do {
      n = pread(h->fd, p + kHeader, len, static_cast<off_t>(r.offset));
    } while (n < 0 && errno == EINTR);
  }
  if (n < 0 || (n == 0 && len > 0)) {
    int err = errno;
    out->Shrink(kHeader + len);
    if (n < 0) return Status::FromErrno(err, h->name);
    if (h->folder == Folder::kIn) PublishDownloaded(h);
    ReplyStatus(r.id, kFxEof, "end of file");
    return Status::Ok();
  }
  StoreU32(p, static_cast<uint32_t>(kHeader - 4 + n));
  p[4] = kFxpData;
  StoreU32(p + 5, r.id);
  StoreU32(p + 9, static_cast<uint32_t>(n));
  out->Shrink(len - static_cast<size_t>(n));
  return Status::Ok();
}

Status I::Write(Request& r) {
  Status error;
  Handle* h = FileHandle(r.handle, &error);
  if (h == nullptr) return error;
  if (!h->writable) return Status::PermissionDenied("handle not open for writing");
  // With O_APPEND the kernel writes at the end of the file, whatever offset the client sent: the
  // limits must see that end, not the offset (a file reopened for appending grew past
  // max_file_size and out_quota while next_offset stood still).
  uint64_t at = r.offset;
  if (h->append) {
    struct stat st;
    if (fstat(h->fd, &st) != 0) return Status::FromErrno(errno, h->name);
    at = static_cast<uint64_t>(st.st_size);
  }
  uint64_t limit = UploadLimit(h->name);
  if (at > limit || r.data.size() > limit - at) {
    h->write_failed = true;
    return TooLarge();
  }
  Status quota = GrowOutFile(h, at + r.data.size());
  if (!quota.ok()) return quota;
  // Straight from the input buffer to the file: no copy.
  const char* p = r.data.data();
  size_t left = r.data.size();
  off_t pos = static_cast<off_t>(at);
  while (left > 0) {
    ssize_t n = pwrite(h->fd, p, left, pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      h->hash_valid = false;
      h->write_failed = true;
      return Status::FromErrno(errno, h->name);
    }
    p += n;
    left -= static_cast<size_t>(n);
    pos += n;
  }
  if (h->hash_valid && at == h->next_offset) {
    h->hash->Update(r.data.data(), r.data.size());
    h->next_offset += r.data.size();
  } else {
    h->hash_valid = false;  // out of order: no digest for this upload (never reordered)
  }
  StartWriteBack(h, static_cast<uint64_t>(pos), /*closing=*/false);
  return Status::Ok();
}

// Delivery fsyncs an upload before it records it; starting the write-back of every MiB as it
// arrives (asynchronous: sync_file_range does not wait) keeps that fsync short. At close the
// rest is started too, so that the tail is on its way to the disk while the client sends the
// trigger.
void I::StartWriteBack(Handle* h, uint64_t end, bool closing) {
  constexpr uint64_t kChunk = 1 << 20;
  bool due = closing ? end >= kChunk && end > h->written_back : end >= h->written_back + kChunk;
  if (!due) return;
  sync_file_range(h->fd, static_cast<off_t>(h->written_back),
                  static_cast<off_t>(end - h->written_back), SYNC_FILE_RANGE_WRITE);
  h->written_back = end;
}

Status I::Fstat(Request& r) {
  Status error;
  Handle* h = FileHandle(r.handle, &error);
  if (h == nullptr) return error;
  struct stat st;
  if (fstat(h->fd, &st) != 0) return Status::FromErrno(errno, h->name);
  ReplyAttrs(r.id, st);
  return Status::Ok();
}

Status I::Fsetstat(Request& r) {
  Status error;
  Handle* h = FileHandle(r.handle, &error);
  if (h == nullptr) return error;
  if (h->folder != Folder::kOut) return Status::PermissionDenied("/IN is read-only");
  return ApplyAttrs(h, r.attrs);
}

// Size and times are applied; permissions and owner are accepted and ignored (the daemon must
// always be able to read what was uploaded).
Status I::ApplyAttrs(Handle* h, const FileAttrs& a) {
  if (a.flags & kAttrSize) {
    if (!h->writable) return Status::PermissionDenied("handle not open for writing");
    if (a.size > UploadLimit(h->name)) return TooLarge();
    Status quota = GrowOutFile(h, a.size);
    if (!quota.ok()) return quota;
    if (ftruncate(h->fd, static_cast<off_t>(a.size)) != 0) return Status::FromErrno(errno, h->name);
    if (a.size != h->next_offset) h->hash_valid = false;
  }
  if (a.flags & kAttrAcModTime) {
    struct timespec times[2] = {{static_cast<time_t>(a.atime), 0},
                                {static_cast<time_t>(a.mtime), 0}};
    if (futimens(h->fd, times) != 0) return Status::FromErrno(errno, h->name);
  }
  return Status::Ok();
}

Status I::Fsync(Request& r) {
  Status error;
  Handle* h = FileHandle(r.handle, &error);
  if (h == nullptr) return error;
  if (fsync(h->fd) != 0) return Status::FromErrno(errno, h->name);
  return Status::Ok();
}

void I::PublishDownloaded(Handle* h) {
  if (h->download_reported) return;
  h->download_reported = true;
  SessionEvent event{SessionEvent::Kind::kDownloaded,
                     options.account,
                     options.address,
                     "",
                     Folder::kIn,
                     h->name,
                     ""};
  listener->OnSessionEvent(event);
}

}  // namespace fordeler
