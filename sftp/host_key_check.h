// Start-up check of the SSH host private keys' ownership and permissions, in the spirit of sshd's
// "UNPROTECTED PRIVATE KEY FILE": a host key that a local user other than the daemon (and root)
// could read or replace is refused, and the daemon does not start.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "core/status.h"

namespace fordeler {

// Who the daemon runs as: the file owner and group a host key may have.
struct HostKeyIdentity {
  uid_t uid;
  gid_t gid;
};

// Ok when every file in `paths` (symlinks followed) is a regular file owned by `self.uid` or by
// root, gives others no permission at all, gives its group no write or execute permission, and
// gives its group read permission only when that group is `self.gid` (the documented layout is
// root:fordeler 0640; 0600 or 0400 by the daemon's user are fine too). Otherwise InvalidArgument
// naming the first bad file, its mode or owner, and the fix; an errno status when a file cannot
// be stat()ed.
Status CheckHostKeyPermissions(const std::vector<std::string>& paths, HostKeyIdentity self);

// For `fordeler check-config`, which does not know whom fordelerd will run as: what the check above
// refuses whoever that is (not a regular file; others' permissions; the group's write or execute
// permission), as a phrase to follow the file's name, e.g. "has mode 0644, which gives others
// access: fordelerd will not start with it; chmod 0600 it (or 0640 with the daemon's group)".
// "" when nothing, or when the file cannot be stat()ed (reading it is checked elsewhere).
std::string HostKeyModeProblem(const std::string& path);

}  // namespace fordeler
