#include "daemon/event_log.h"

#include <spdlog/spdlog.h>

#include "core/names.h"

namespace fordeler {
namespace {

const char* KindName(SessionEvent::Kind kind) {
  switch (kind) {
    case SessionEvent::Kind::kLogin:
      return "login";
    case SessionEvent::Kind::kLoginFailed:
      return "login_failed";
    case SessionEvent::Kind::kRemoved:
      return "removed";
    case SessionEvent::Kind::kDownloaded:
      return "downloaded";
    case SessionEvent::Kind::kLimit:
      return "limit";
  }
  return "unknown";
}

const char* FolderName(Folder folder) {
  switch (folder) {
    case Folder::kIn:
      return "IN";
    case Folder::kOut:
      return "OUT";
    case Folder::kRoot:
      break;
  }
  return "/";
}

}  // namespace

void EventLog::OnUploadClosed(const UploadClosed& e) {
  // File names are logged: they are the operator's key to a transfer. Contents never are.
  if (e.how == UploadClosed::How::kChanged) {  // not an upload: nothing to route
    spdlog::info("event=upload_changed account={} name=\"{}\" size={}", e.account,
                 PrintableName(e.name), e.size);
  } else {
    spdlog::info("event=upload_closed account={} name=\"{}\" size={} sha256={} how={}", e.account,
                 PrintableName(e.name), e.size, e.sha256 ? ToHex(*e.sha256) : "-",
                 e.how == UploadClosed::How::kClosed ? "close" : "rename");
  }
  if (next_ != nullptr) next_->OnUploadClosed(e);
}

void EventLog::OnSessionEvent(const SessionEvent& e) {
  if (e.kind == SessionEvent::Kind::kRemoved || e.kind == SessionEvent::Kind::kDownloaded) {
    spdlog::info("event={} account={} folder={} name=\"{}\"", KindName(e.kind), e.account,
                 FolderName(e.folder), PrintableName(e.name));
  }
  if (next_ != nullptr) next_->OnSessionEvent(e);
}

}  // namespace fordeler
