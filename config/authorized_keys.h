// OpenSSH authorized_keys lines (sshd(8), "AUTHORIZED_KEYS FILE FORMAT"), as fordeler accepts
// them: `[options] keytype base64-blob [comment]`.
//
// Key types: ssh-ed25519, ecdsa-sha2-nistp256/384/521 and ssh-rsa of at least 2048 bits
// (contract §1); the type named on the line must be the type inside the blob. rsa-sha2-256/512
// are signature algorithms, not key types, and are refused with a message that says so.
//
// Options (comma-separated; names case-insensitive; values in double quotes, `\"` escapes a
// quote), exactly these, each at most once:
//   from="pattern,..."   client addresses allowed to use the key (config/address_pattern.h)
//   restrict             recorded; an SFTP-only server grants no pty or forwarding anyway
//   expiry-time="YYYYMMDD[HHMM[SS]][Z]"
//                        the key is refused from that instant on. As in sshd, the time is the
//                        system's local time (the TZ of the process: fordelerd's environment,
//                        not the [server] time_zone setting) unless it ends in Z, which means
//                        UTC. A local time that does not exist or is ambiguous (DST change) is
//                        resolved the way mktime(3) resolves it.
// Any other option (no-pty, command=, permitopen=, cert-authority, ...) is refused: fordeler
// never ignores an option silently. Pure functions apart from reading the file; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "core/status.h"

namespace fordeler {

// Parses one non-blank, non-comment line. `where` is stored in the key. The error message
// carries no location: the caller adds it.
Result<AuthorizedKey> ParseAuthorizedKeyLine(std::string_view line, const SourceLocation& where);

// "YYYYMMDD", "YYYYMMDDHHMM" or "YYYYMMDDHHMMSS", optionally followed by Z (UTC); local time
// otherwise.
Result<std::chrono::system_clock::time_point> ParseExpiryTime(std::string_view text);

// Reads an authorized_keys file: every key line is appended to `keys`; every bad line is
// reported as `path:line: message` in `errors`. Blank lines and `#` comments are skipped. When the
// file cannot be read, one error at `named_at` (where the configuration names the file) says why.
// A world-writable file is refused (anyone could add a key).
void ReadAuthorizedKeysFile(const std::string& path, const SourceLocation& named_at,
                            std::vector<AuthorizedKey>* keys, std::vector<ConfigError>* errors);

}  // namespace fordeler
