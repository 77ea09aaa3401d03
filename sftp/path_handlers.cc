// The handlers of requests on paths and folders: STAT/LSTAT, SETSTAT, REMOVE, RENAME and
// posix-rename, REALPATH, OPENDIR/READDIR, statvfs@ and limits@openssh.com. Part of
// SftpSession::Impl; the policy has already approved every path they get.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

#include "sftp/session_impl.h"

namespace fordeler {

using I = SftpSession::Impl;

namespace {

constexpr uint32_t kReaddirBatch = 100;

}  // namespace

// STAT and LSTAT alike: nothing in a jail is followed. A file delivery took from /OUT shows its
// attributes for 10 s more (contract §2).
Status I::Stat(Request& r) {
  struct stat st;
  Status s = jail->Stat(r.vp.folder, r.vp.name, &st);
  if (!s.ok() && r.vp.folder == Folder::kOut && !r.vp.is_folder() &&
      account->GhostStat(r.vp.name, &st)) {
    s = Status::Ok();
  }
  if (!s.ok()) return s;
  ReplyAttrs(r.id, st);
  return Status::Ok();
}

Status I::Setstat(Request& r) {
  const std::string& name = r.vp.name;
  struct stat st;
  if (account->IsBeingTaken(name)) return Status::Ok();  // without effect (contract §2)
  Status s = jail->Stat(Folder::kOut, name, &st);
  if (!s.ok()) return account->GhostStat(name, &st) ? Status::Ok() : s;
  if (r.attrs.flags & kAttrSize) {
    if (r.attrs.size > UploadLimit(name)) return Status::Unavailable("file too large");
    uint64_t room = 0;
    if (r.attrs.size > static_cast<uint64_t>(st.st_size)) {
      s = CheckOutQuota(name, st.st_ino, r.attrs.size, &room);
      if (!s.ok()) {
        ReportLimit("out_quota: " + name + ": " + s.message());
        return s;
      }
    }
    Result<std::shared_ptr<FileTicket>> t = account->Acquire(name, /*write=*/true);
    if (!t.ok()) return t.status();
    Result<int> fd = jail->OpenFile(Folder::kOut, name, O_WRONLY, &st);
    bool changed = false;
    if (fd.ok()) {
      account->ForgetTaken(name);
      if (ftruncate(*fd, static_cast<off_t>(r.attrs.size)) != 0) {
        s = Status::FromErrno(errno, name);
      } else {
        changed = true;
        if (fstat(*fd, &st) != 0) st = {};
      }
      close(*fd);
    } else {
      s = fd.status();
    }
    // What an earlier close said about the file (its digest) no longer holds; said before
    // letting go, so that no take can begin with it.
    if (changed && !IsTriggerName(name)) {
      UploadClosed event;
      event.account = options.account;
      event.name = name;
      event.size = static_cast<uint64_t>(st.st_size);
      event.inode = static_cast<uint64_t>(st.st_ino);
      event.how = UploadClosed::How::kChanged;
      listener->OnUploadClosed(event);
    }
    account->Release(name, /*write=*/true);
    if (!s.ok()) return s;
  }
  if (r.attrs.flags & kAttrAcModTime) {
    return jail->SetTimes(Folder::kOut, name, r.attrs.atime, r.attrs.mtime);
  }
  return Status::Ok();  // permissions and owner: accepted, ignored
}

Status I::Remove(Request& r) {
  if (r.vp.folder == Folder::kOut && account->IsBeingTaken(r.vp.name)) {
    return Status::NotFound("no such file");
  }
  Status s = jail->Remove(r.vp.folder, r.vp.name);
  if (!s.ok() || r.vp.folder != Folder::kIn) return s;
  SessionEvent event{SessionEvent::Kind::kRemoved,
                     options.account,
                     options.address,
                     "",
                     Folder::kIn,
                     r.vp.name,
                     ""};
  listener->OnSessionEvent(event);
  return Status::Ok();
}

Status I::Rename(Request& r) { return DoRename(r, /*overwrite=*/false); }
Status I::PosixRename(Request& r) { return DoRename(r, /*overwrite=*/true); }

// Within /OUT only (the policy saw to it). A file open in any session is not renamed, nor is
// one renamed over one open for writing, so that what the account knows of a name's handles
// follows the file (AccountState::Rename).
Status I::DoRename(Request& r, bool overwrite) {
  const std::string& from = r.vp.name;
  const std::string& to = r.vp2.name;
  struct stat st;
  if (from == to) {
    if (account->IsBeingTaken(from)) return Status::NotFound("no such file");
    return jail->Stat(Folder::kOut, from, &st);
  }
  Status s = account->Rename(from, to, overwrite);
  if (!s.ok()) return s;
  UploadClosed event;
  event.account = options.account;
  event.name = to;
  event.how = UploadClosed::How::kRenamed;
  if (jail->Stat(Folder::kOut, to, &st).ok()) {
    event.size = static_cast<uint64_t>(st.st_size);
    event.inode = static_cast<uint64_t>(st.st_ino);
  }
  listener->OnUploadClosed(event);
  return Status::Ok();
}

// The normalised path, whether or not the file exists (clients realpath before uploading).
Status I::Realpath(Request& r) {
  scratch = r.vp.ToString();
  ReplyWriter w(out, kFxpName);
  w.U32(r.id).U32(1).String(scratch).String(scratch).Attrs(FileAttrs());
  w.Finish();
  return Status::Ok();
}

Status I::Opendir(Request& r) {
  if (handles.full()) return HandleLimit();
  DIR* dir = nullptr;
  if (r.vp.folder != Folder::kRoot) {  // "/" is listed from the jail's two folders
    Result<DIR*> d = jail->OpenDir(r.vp.folder);
    if (!d.ok()) return d.status();
    dir = *d;
  }
  char id[HandleTable::kIdSize];
  Handle* h = handles.Allocate(Handle::Kind::kDir, id);
  h->dir = dir;
  h->folder = r.vp.folder;
  ReplyHandle(r.id, id);
  return Status::Ok();
}

bool I::AppendDirEntry(ReplyWriter* w, const std::string& name, const struct stat& st) {
  FormatLongName(st, options.account, name, time(nullptr), &scratch);
  w->String(name).String(scratch).Attrs(AttrsFromStat(st));
  return true;
}

// Lists regular files only, in batches, then SSH_FX_EOF. Dot-files, symlinks, FIFOs and
// anything else are skipped, and so are files delivery is taking from /OUT.
Status I::Readdir(Request& r) {
  Handle* h = handles.Find(r.handle);
  if (h == nullptr || h->kind != Handle::Kind::kDir) return Status::Unavailable("invalid handle");
  size_t start = out->size();
  ReplyWriter w(out, kFxpName);
  w.U32(r.id);
  size_t count_at = w.Mark();
  w.U32(0);
  uint32_t count = 0;
  struct stat st;
  if (h->folder == Folder::kRoot) {
    for (Folder f : {Folder::kIn, Folder::kOut}) {
      if (h->root_listed || fstat(jail->folder_fd(f), &st) != 0) continue;
      AppendDirEntry(&w, std::string(FolderPath(f).substr(1)), st);
      ++count;
    }
    h->root_listed = true;
  }
  while (h->dir != nullptr && count < kReaddirBatch) {
    struct dirent* e = readdir(h->dir);
    if (e == nullptr) break;
    if (!IsReachableName(e->d_name) || (e->d_type != DT_REG && e->d_type != DT_UNKNOWN)) continue;
    if (fstatat(dirfd(h->dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    std::string name(e->d_name);
    if (h->folder == Folder::kOut && account->IsBeingTaken(name)) continue;
    AppendDirEntry(&w, name, st);
    ++count;
  }
  if (count == 0) {
    out->Shrink(out->size() - start);
    ReplyStatus(r.id, kFxEof, "end of folder");
    return Status::Ok();
  }
  w.PatchU32(count_at, count);
  w.Finish();
  return Status::Ok();
}

Status I::StatVfs(Request& r) {
  struct statvfs sv;
  Status s = jail->StatVfs(r.vp.folder, &sv);
  if (!s.ok()) return s;
  uint64_t flag = ((sv.f_flag & ST_RDONLY) ? 1 : 0) | ((sv.f_flag & ST_NOSUID) ? 2 : 0);
  ReplyWriter w(out, kFxpExtendedReply);
  w.U32(r.id).U64(sv.f_bsize).U64(sv.f_frsize).U64(sv.f_blocks).U64(sv.f_bfree);
  w.U64(sv.f_bavail).U64(sv.f_files).U64(sv.f_ffree).U64(sv.f_favail).U64(sv.f_fsid);
  w.U64(flag).U64(sv.f_namemax);
  w.Finish();
  return Status::Ok();
}

Status I::Limits(Request& r) {
  ReplyWriter w(out, kFxpExtendedReply);
  w.U32(r.id).U64(kMaxPacketSize).U64(kMaxReadWrite).U64(kMaxReadWrite);
  w.U64(handles.max());
  w.Finish();
  return Status::Ok();
}

// MKDIR, RMDIR, SYMLINK, READLINK: the policy refuses them before this could run.
Status I::Refuse(Request&) { return Status::PermissionDenied("not part of the protocol"); }

}  // namespace fordeler
