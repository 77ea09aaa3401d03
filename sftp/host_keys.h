// The SSH host private keys, read the way the server reads them (libssh), so that start-up,
// a reload and `fordeler check-config` refuse exactly the keys the server could not use.
#pragma once

#include <libssh/server.h>

#include <string>

#include "core/status.h"

namespace fordeler {

// Reads the host private key at `path` and hands it to `bind` (SSH_BIND_OPTIONS_IMPORT_KEY),
// which must already carry SSH_BIND_OPTIONS_RSA_MIN_SIZE. The key must be one the server offers
// (contract §1): Ed25519, or RSA of at least SshAlgorithms::kRsaMinBits bits for rsa-sha2-512
// and rsa-sha2-256. InvalidArgument naming the file and what is wrong with it otherwise.
Status ImportHostKey(ssh_bind bind, const std::string& path);

// The same checks against a scratch bind: "" when the server could use the key at `path`,
// otherwise what is wrong with it, e.g. "is a public key; host_keys names the private key".
std::string HostKeyProblem(const std::string& path);

}  // namespace fordeler
