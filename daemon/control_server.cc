#include "daemon/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "audit/audit_store.h"
#include "core/env.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "core/uuid.h"
#include "daemon/peer_credentials.h"
#include "delivery/pipeline.h"

namespace fordeler {

using Json = nlohmann::json;

namespace {

constexpr size_t kMaxRequest = 64 * 1024;
constexpr int kRequestTimeoutMs = 10'000;
constexpr int kRefusedTimeoutMs = 1'000;

// A sockaddr for `path`; `dir` keeps the folder open when /proc/self/fd is needed.
sockaddr_un AddressOf(const std::string& path, UniqueFd* dir) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string target = path;
  if (target.size() >= sizeof addr.sun_path) {
    size_t slash = path.find_last_of('/');
    dir->Reset(open(path.substr(0, slash).c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    target = "/proc/self/fd/" + std::to_string(dir->get()) + path.substr(slash);
  }
  std::memcpy(addr.sun_path, target.c_str(), std::min(target.size(), sizeof addr.sun_path - 1));
  return addr;
}

// Root, our uid, or a member of our group (see daemon/peer_credentials.h).
// *who for the log line, *by for the audit events of what the caller does ("operator uid=…").
bool PeerAllowed(int fd, std::string* who, std::string* by) {
  auto peer = GetPeerCredentials(fd);
  if (!peer.ok()) {
    *who = peer.status().ToString();
    return false;
  }
  *who = peer->ToString();
  *by = std::string(DeliveryPipeline::kOperator) + " uid=" + std::to_string(peer->uid);
  return MayControl(*peer, geteuid(), getegid());
}

bool ReadRequest(int fd, std::string* line, int timeout_ms) {
  char buf[4096];
  while (line->find('\n') == std::string::npos && line->size() <= kMaxRequest) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, timeout_ms) <= 0) return false;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return false;
    line->append(buf, static_cast<size_t>(n));
  }
  if (line->size() > kMaxRequest) return false;
  line->resize(line->find('\n'));
  return true;
}

void SendReply(int fd, const Json& reply) {
  // Replies carry file names; bytes of one that are not UTF-8 become U+FFFD (dump would throw).
  std::string text = reply.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  for (size_t done = 0; done < text.size();) {
    ssize_t n = send(fd, text.data() + done, text.size() - done, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    done += static_cast<size_t>(n);
  }
}

Json Error(const char* error, const std::string& message) {
  return {{"ok", false}, {"error", error}, {"message", message}};
}

Json ErrorFrom(const Status& s) {
  switch (s.code()) {
    case Status::Code::kNotFound:
      return Error("not_found", s.message());
    case Status::Code::kInvalidArgument:
      return Error("refused", s.message());
    default:
      return Error("failed", "fordelerd failed: " + s.message());
  }
}

Json Done(const std::string& message) { return {{"ok", true}, {"message", message}}; }

std::string List(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

ControlServer::ControlServer(DeliveryPipeline* pipeline, AuditStore* audit)
    : pipeline_(pipeline), audit_(audit) {}

ControlServer::~ControlServer() { Stop(); }

Status ControlServer::Start(const std::string& path) {
  path_ = path;
  UniqueFd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!sock.valid()) return Status::FromErrno(errno, "control socket");
  UniqueFd dir;
  sockaddr_un addr = AddressOf(path, &dir);
  struct stat st;
  if (lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path.c_str());  // stale
  if (bind(sock.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Status::FromErrno(errno, "bind control socket " + path);
  }
  if (chmod(path.c_str(), 0660) != 0 || listen(sock.get(), 16) != 0) {
    return Status::FromErrno(errno, "control socket " + path);
  }
  wake_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake_ < 0) return Status::FromErrno(errno, "eventfd");
  listen_ = sock.Release();
  thread_ = std::thread([this] {
    NameThisThread("control");
    Loop();
  });
  spdlog::info("event=control_socket path={}", LogValue(path));
  return Status::Ok();
}

void ControlServer::Stop() {
  if (thread_.joinable()) {
    uint64_t one = 1;
    ssize_t ignored = write(wake_, &one, sizeof one);
    (void)ignored;
    thread_.join();
  }
  if (listen_ >= 0) {
    close(listen_);
    listen_ = -1;
    unlink(path_.c_str());
  }
  if (wake_ >= 0) {
    close(wake_);
    wake_ = -1;
  }
}

void ControlServer::Loop() {
  for (;;) {
    pollfd fds[2] = {{listen_, POLLIN, 0}, {wake_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd client(accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC));
    if (client.valid()) Serve(client.get());
  }
}

void ControlServer::Serve(int client) {
  std::string who, by, line;
  bool allowed = PeerAllowed(client, &who, &by);
  // The request is read even from a caller that is refused: closing with it unread would reset
  // the connection, and the caller would see "Broken pipe" instead of the refusal.
  // A caller who is refused gets a second to send it: the socket serves one caller at a time.
  bool complete = ReadRequest(client, &line, allowed ? kRequestTimeoutMs : kRefusedTimeoutMs);
  if (!allowed) {
    spdlog::warn("event=control_refused peer={}", LogValue(who));
    SendReply(client, Error("refused", "permission denied: only root and fordelerd's group"));
    return;
  }
  if (!complete) return;
  auto request = ParseControlRequest(line);
  Json reply =
      request.ok() ? Handle(*request, by) : Error("bad_request", request.status().message());
  spdlog::info("event=control peer={} command={} uuid={} ok={}", LogValue(who),
               LogValue(request.ok() ? request->command : ""),
               LogValue(request.ok() ? request->uuid : ""), reply["ok"].get<bool>());
  SendReply(client, reply);
}

Json ControlServer::Handle(const ControlRequest& request, const std::string& by) {
  const std::string& command = request.command;
  const std::string& uuid = request.uuid;
  const std::string& recipient = request.recipient;
  if (!IsUuid(uuid)) return Error("bad_request", "\"" + uuid + "\" is not a FileTransferUUID");
  if (command == "retry") {
    auto t = audit_->GetTransfer(uuid);
    if (!t.ok()) return ErrorFrom(t.status());
    if (!t->has_value()) return Error("not_found", "no such transfer " + uuid);
    if ((*t)->step == TransferStep::kDone) {
      return Error("refused", "transfer " + uuid + " is finished (" +
                                  std::string(ToString((*t)->state)) + "): nothing to retry");
    }
    auto retried = pipeline_->Retry(uuid, by);
    if (!retried.ok()) return Error("refused", retried.status().message());
    std::string step(ToString((*t)->step));
    switch (*retried) {
      case DeliveryPipeline::Retried::kRunning:
        return Done("transfer " + uuid + " is at step " + step +
                    " at this moment: not retried, it goes on by itself");
      case DeliveryPipeline::Retried::kWaitingForData:
        return Done("transfer " + uuid + " has not failed: it waits for its data file OUT/" +
                    PrintableName((*t)->name) +
                    " (rejected with 1004 once trigger_grace has passed); looked at again now, "
                    "nothing to retry");
      case DeliveryPipeline::Retried::kWoken:
        break;
    }
    return Done("retrying transfer " + uuid + " from step " + step);
  }
  if (command == "recall") {
    auto recalled = pipeline_->Recall(uuid, recipient, by);
    if (!recalled.ok()) return ErrorFrom(recalled.status());
    if (recalled->empty()) return Error("refused", "picked up before it could be recalled");
    Json reply = Done("");
    reply["recalled"] = Json::array();
    std::string message = "recalled " + uuid + ":";
    for (const auto& r : *recalled) {
      reply["recalled"].push_back({{"recipient", r.recipient}, {"name", r.name}});
      message += " " + r.recipient + " (IN/" + r.name + ")";
    }
    reply["message"] = message;
    return reply;
  }
  if (command == "redeliver") {
    if (recipient.empty()) return Error("bad_request", "redeliver needs a recipient");
    auto placed = pipeline_->Redeliver(uuid, recipient, by);
    if (!placed.ok()) return ErrorFrom(placed.status());
    Json reply = Done("placed " + uuid + " again in " + recipient + "'s IN as " + *placed);
    reply["name"] = *placed;
    return reply;
  }
  if (command == "release" || command == "purge") {
    bool release = command == "release";
    auto files =
        release ? pipeline_->ReleaseQuarantined(uuid, by) : pipeline_->PurgeQuarantined(uuid, by);
    if (!files.ok()) return ErrorFrom(files.status());
    Json reply = Done(release ? "released " + uuid + " into the sender's OUT (" + List(*files) +
                                    "): it is routed again as a new transfer"
                              : "purged quarantine/" + uuid + " (" + List(*files) + ")");
    reply["files"] = *files;
    return reply;
  }
  return Error("bad_request", "unknown command \"" + command + "\"");
}

}  // namespace fordeler
