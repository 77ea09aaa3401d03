// The jail policy of contract §1, decided once per request, before its handler runs, on
// (access, folder, name) of the normalised path(s). Part of SftpSession::Impl.
#include <cerrno>
#include <string>

#include "sftp/session_impl.h"

namespace fordeler {

// ---- The policy (contract §1), decided once per request before its handler runs.

namespace {

Status DenyWrite(const VirtualPath& vp) {
  if (vp.folder == Folder::kIn) return Status::PermissionDenied("/IN is read-only");
  if (vp.is_folder())
    return Status::PermissionDenied(std::string(FolderPath(vp.folder)) + " is a folder");
  return Status::PermissionDenied("files can only be written in /OUT");
}

Status InvalidName(const VirtualPath& vp) {
  return Status::PermissionDenied(
      vp.ToString() +
      ": not a valid file name (1-243 bytes of UTF-8, no control characters, "
      "not starting with '.', no space at its start or end, optionally followed by .trigger)");
}

Status Decide(Access access, const VirtualPath& vp) {
  bool reachable = vp.is_folder() || IsReachableName(vp.name);
  switch (access) {
    case Access::kStat:
      return reachable ? Status::Ok() : Status::NotFound("no such file");
    case Access::kList:
      return vp.is_folder() ? Status::Ok() : Status::NotFound("not a folder");
    case Access::kRead:
    case Access::kRemove:
      if (vp.is_folder()) {
        return Status::PermissionDenied(std::string(FolderPath(vp.folder)) + " is a folder");
      }
      return reachable ? Status::Ok() : Status::NotFound("no such file");
    case Access::kWrite:
      if (vp.folder != Folder::kOut || vp.is_folder()) return DenyWrite(vp);
      if (!reachable) return Status::NotFound("no such file");
      return IsValidOutName(vp.name) ? Status::Ok() : InvalidName(vp);
    case Access::kCreate:
      if (vp.folder != Folder::kOut || vp.is_folder()) return DenyWrite(vp);
      return IsValidOutName(vp.name) ? Status::Ok() : InvalidName(vp);
    default:
      return Status::Ok();
  }
}

}  // namespace

Status SftpSession::Impl::CheckPolicy(Request* q) {
  switch (q->access) {
    case Access::kNone:
    case Access::kAnyPath:
      return Status::Ok();
    case Access::kRefuseFolder:
      return Status::PermissionDenied("sub-folders are not part of the protocol");
    case Access::kUnsupported:
      return Status::FromErrno(ENOSYS, "links are not part of the protocol");
    case Access::kOpen:
      if (q->pflags & kFxfCreat) {
        q->access = Access::kCreate;
      } else if (q->pflags & (kFxfWrite | kFxfAppend | kFxfTrunc)) {
        q->access = Access::kWrite;
      } else {
        q->access = Access::kRead;
      }
      return Decide(q->access, q->vp);
    case Access::kRename:
      if (q->vp.folder != Folder::kOut || q->vp.is_folder()) {
        return Status::PermissionDenied("only files in /OUT can be renamed");
      }
      if (!IsReachableName(q->vp.name)) return Status::NotFound("no such file");
      if (q->vp2.folder != Folder::kOut || q->vp2.is_folder()) {
        return Status::PermissionDenied("files can only be renamed within /OUT");
      }
      return IsValidOutName(q->vp2.name) ? Status::Ok() : InvalidName(q->vp2);
    default:
      return Decide(q->access, q->vp);
  }
}

}  // namespace fordeler
