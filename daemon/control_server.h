// ControlServer: fordelerd's local control socket, through which `fordeler` asks the running
// daemon — the only writer of the audit log — for the operator's changes: retry, recall,
// redeliver, quarantine release and purge (contract §10; the client is cli/control_client.h).
//
// The socket is <storage root>/control.sock, created at Start() (a stale one is replaced) with
// mode 0660, so root and the daemon's group may connect; each connection's peer credentials
// (SO_PEERCRED) are checked as well: uid 0, the daemon's own uid, or a member of the daemon's
// group (primary or supplementary), else the request is refused. A path longer than a unix
// socket address allows is reached through /proc/self/fd of its folder.
//
// Protocol: one JSON request line (at most 64 KiB), one JSON reply line, then the connection is
// closed. A line that is not a JSON object whose fields below are strings gets "bad_request"
// (control_request.h). Requests are served one at a time on the server's own thread; a client has
// 10 s to send its request.
//   request: {"command": "retry"|"recall"|"redeliver"|"release"|"purge", "uuid": UUID,
//             "recipient": ID}   (recipient: optional for recall, required for redeliver)
//   reply:   {"ok": true, "message": TEXT, ...} with "recalled": [{recipient, name}] (recall),
//            "name" (redeliver), "files" (release, purge); or
//            {"ok": false, "error": "not_found"|"refused"|"bad_request"|"failed", "message"}
//
// Thread safety: Start() and Stop() from one thread; Handle() from any.
#pragma once

#include <memory>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

#include "core/status.h"
#include "daemon/control_request.h"
#include "delivery/pipeline.h"

namespace fordeler {

class AuditStore;

inline constexpr const char* kControlSocketName = "control.sock";

class ControlServer {
 public:
  // REQUIRES: both outlive the server (Stop() it before they go).
  ControlServer(DeliveryPipeline* pipeline, AuditStore* audit);
  ~ControlServer();

  Status Start(const std::string& socket_path);
  // Ends the thread (a request being served is finished first) and removes the socket.
  void Stop();

  // The reply to one request (exposed for tests); `by` is who asked, for the audit events.
  nlohmann::json Handle(const ControlRequest& request,
                        const std::string& by = DeliveryPipeline::kOperator);

 private:
  void Loop();
  void Serve(int client);

  DeliveryPipeline* pipeline_;
  AuditStore* audit_;
  std::string path_;
  int listen_ = -1;
  int wake_ = -1;  // eventfd that ends Loop()
  std::thread thread_;
};

}  // namespace fordeler
