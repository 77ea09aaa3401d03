#include "daemon/peer_credentials.h"

#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace fordeler {

std::string PeerCredentials::ToString() const {
  return "uid=" + std::to_string(uid) + " gid=" + std::to_string(gid) +
         " pid=" + std::to_string(pid);
}

Result<PeerCredentials> GetPeerCredentials(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return Status::FromErrno(errno, "SO_PEERCRED");
  }
  PeerCredentials peer{cred.uid, cred.gid, cred.pid, {}};
  // The first call with room for a typical list; ERANGE tells the size needed.
  peer.groups.resize(64);
  for (int attempt = 0; attempt < 2; ++attempt) {
    len = static_cast<socklen_t>(peer.groups.size() * sizeof(gid_t));
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, peer.groups.data(), &len) == 0) {
      peer.groups.resize(len / sizeof(gid_t));
      return peer;
    }
    if (errno != ERANGE) break;
    peer.groups.resize(len / sizeof(gid_t));
  }
  return Status::Unavailable("the kernel does not report the peer's groups (SO_PEERGROUPS)");
}

bool MayControl(const PeerCredentials& peer, uid_t daemon_uid, gid_t daemon_gid) {
  return peer.uid == 0 || peer.uid == daemon_uid || peer.gid == daemon_gid ||
         std::find(peer.groups.begin(), peer.groups.end(), daemon_gid) != peer.groups.end();
}

}  // namespace fordeler
