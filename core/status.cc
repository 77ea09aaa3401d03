#include "core/status.h"

#include <cerrno>
#include <cstring>

namespace fordeler {

Status Status::FromErrno(int err, std::string context) {
  Code code = Code::kIoError;
  switch (err) {
    case ENOENT:
    case ENOTDIR:
      code = Code::kNotFound;
      break;
    case EEXIST:
    case ENOTEMPTY:
      code = Code::kAlreadyExists;
      break;
    case EACCES:
    case EPERM:
    case EROFS:
      code = Code::kPermissionDenied;
      break;
    case ENOSPC:
    case EDQUOT:
      code = Code::kNoSpace;
      break;
    case EAGAIN:
    case EBUSY:
      code = Code::kUnavailable;
      break;
    default:
      break;
  }
  return Status(code, context + ": " + std::strerror(err), err);
}

std::string Status::ToString() const {
  if (ok()) return "OK";
  return message_;
}

}  // namespace fordeler
