#include "cli/control_client.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/env.h"

namespace fordeler::cli {
namespace {

constexpr size_t kMaxReply = 1 << 20;

// connect() to `path`; a path too long for sun_path goes through /proc/self/fd of its folder.
int ConnectTo(const std::string& path, int* err) {
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) {
    *err = errno;
    return -1;
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string target = path;
  UniqueFd dir;
  if (target.size() >= sizeof addr.sun_path) {
    size_t slash = path.find_last_of('/');
    dir.Reset(open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    target = "/proc/self/fd/" + std::to_string(dir.get()) + path.substr(slash);
  }
  std::memcpy(addr.sun_path, target.c_str(), std::min(target.size(), sizeof addr.sun_path - 1));
  if (connect(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    *err = errno;
    return -1;
  }
  return sock.Release();
}

Status SendAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "control socket: send");
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

Result<std::string> ReadLine(int fd, int timeout_ms) {
  std::string line;
  char buf[4096];
  while (line.find('\n') == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    int ready = poll(&p, 1, timeout_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return Status::Unavailable("fordelerd did not answer in time");
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "control socket: read");
    if (n == 0) return Status::Unavailable("fordelerd closed the control socket without an answer");
    line.append(buf, static_cast<size_t>(n));
    if (line.size() > kMaxReply) return Status::Internal("control socket: reply too long");
  }
  return line.substr(0, line.find('\n'));
}

}  // namespace

std::string ControlSocketPath(const Config& config) {
  return config.storage.root + "/" + kControlSocketName;
}

Result<Json> CallDaemon(const std::string& socket_path, const Json& request, int timeout_ms) {
  int err = 0;
  UniqueFd sock(ConnectTo(socket_path, &err));
  if (!sock.valid()) {
    if (err == ENOENT || err == ECONNREFUSED) {
      return Status::Unavailable("fordelerd is not running (nobody listens on " + socket_path +
                                 "); this command needs the running daemon");
    }
    if (err == EACCES || err == EPERM) {
      return Status::PermissionDenied("may not use " + socket_path +
                                      ": run as root or as a member of fordelerd's group");
    }
    return Status::FromErrno(err, "connect to " + socket_path);
  }
  // An argument that is not UTF-8 (a recipient typed in another encoding) is sent with U+FFFD
  // in its place, and refused by the daemon as an unknown account, rather than ending here.
  Status sent =
      SendAll(sock.get(), request.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n");
  // fordelerd may have answered (a refusal) and closed before reading: its answer says more than
  // the failed send.
  if (!sent.ok() && sent.os_errno() != EPIPE && sent.os_errno() != ECONNRESET) return sent;
  auto line = ReadLine(sock.get(), timeout_ms);
  if (!line.ok()) return sent.ok() ? line.status() : sent;
  Json reply = Json::parse(*line, nullptr, false);
  if (reply.is_discarded() || !reply.is_object() || !reply.contains("ok")) {
    return Status::Internal("fordelerd sent an unreadable reply");
  }
  return reply;
}

}  // namespace fordeler::cli
