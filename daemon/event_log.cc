#include "daemon/event_log.h"

#include <spdlog/spdlog.h>

#include "core/names.h"

namespace fordeler {
namespace {

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
  // A download is logged by the delivery pipeline, which learns its transfer (RecordDownload).
  if (e.kind == SessionEvent::Kind::kRemoved) {
    spdlog::info("event=removed account={} folder={} name=\"{}\"", e.account, FolderName(e.folder),
                 PrintableName(e.name));
  }
  if (next_ != nullptr) next_->OnSessionEvent(e);
}

}  // namespace fordeler
