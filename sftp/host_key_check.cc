#include "sftp/host_key_check.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>

namespace fordeler {

namespace {

std::string Octal(mode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
  return text;
}

// What is wrong with a host key's mode whoever the daemon runs as; null when nothing.
const char* ModeProblem(mode_t mode) {
  if ((mode & S_IRWXO) != 0) return "gives others access";
  if ((mode & (S_IWGRP | S_IXGRP)) != 0) return "lets its group write it";
  return nullptr;
}

constexpr const char* kFix = "chmod 0600 it (or 0640 with the daemon's group)";

Status Unprotected(const std::string& path, mode_t mode, const std::string& why) {
  return Status::InvalidArgument("unprotected host key " + path + ": mode " + Octal(mode) + " " +
                                 why + "; " + kFix);
}

Status CheckOne(const std::string& path, HostKeyIdentity self) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "host key " + path);
  if (!S_ISREG(st.st_mode)) {
    return Status::InvalidArgument("host key " + path + " is not a regular file");
  }
  if (st.st_uid != self.uid && st.st_uid != 0) {
    return Status::InvalidArgument("host key " + path + " is owned by uid " +
                                   std::to_string(st.st_uid) + ", neither the daemon's uid " +
                                   std::to_string(self.uid) + " nor root");
  }
  if (const char* why = ModeProblem(st.st_mode)) return Unprotected(path, st.st_mode, why);
  if ((st.st_mode & S_IRGRP) != 0 && st.st_gid != self.gid) {
    return Unprotected(path, st.st_mode,
                       "lets group " + std::to_string(st.st_gid) +
                           " read it, which is not the daemon's group " + std::to_string(self.gid));
  }
  return Status::Ok();
}

}  // namespace

Status CheckHostKeyPermissions(const std::vector<std::string>& paths, HostKeyIdentity self) {
  for (const auto& path : paths) {
    Status s = CheckOne(path, self);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

std::string HostKeyModeProblem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  if (!S_ISREG(st.st_mode)) return "is not a regular file";
  if (const char* why = ModeProblem(st.st_mode)) {
    return "has mode " + Octal(st.st_mode) + ", which " + why +
           ": fordelerd will not start with it; " + kFix;
  }
  return "";
}

}  // namespace fordeler
