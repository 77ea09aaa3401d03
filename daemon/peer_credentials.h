// Who is on the other end of a local (AF_UNIX) socket, and whether they may use the daemon's
// control socket.
//
// The kernel records the peer's uid, gid, pid and supplementary groups when it connects
// (SO_PEERCRED, SO_PEERGROUPS), translated into the daemon's user namespace. That is what works
// under the shipped unit: `PrivateUsers=yes` maps the service's own user and group into the
// namespace, and `ProtectProc=invisible` hides the peer's /proc entry, so /proc/PID/status cannot
// be read. Thread-safe (no state).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace fordeler {

struct PeerCredentials {
  uid_t uid = 0;
  gid_t gid = 0;
  pid_t pid = 0;
  std::vector<gid_t> groups;  // supplementary groups

  std::string ToString() const;  // "uid=… gid=… pid=…", for log lines
};

// The credentials of the process that connected `fd`. kUnavailable when the kernel will not say.
Result<PeerCredentials> GetPeerCredentials(int fd);

// Root, the daemon's own user, or a member (primary or supplementary) of its group.
bool MayControl(const PeerCredentials& peer, uid_t daemon_uid, gid_t daemon_gid);

}  // namespace fordeler
