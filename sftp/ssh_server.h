// SshServer: fordeler's SSH/SFTP server. Boost.Asio accepts connections on every configured
// listen address and drives the sessions on one io_context per thread (one thread per core by
// default, never one per session); libssh does SSH on the accepted sockets (SshSession).
//
// The algorithm lists of contract §1 are set explicitly on the libssh bind, since its defaults
// are weaker (RSA 1024, SHA-1 signatures, NIST curves, group14). The server reports what happens
// through FileEventListener and never routes anything itself.
//
// Thread safety: Start, then Run from one thread; Stop and Reconfigure from any thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/status.h"

namespace fordeler {

class AccountRegistry;
class Env;
class FileEventListener;

// The algorithms of contract §1, in order of preference.
struct SshAlgorithms {
  static constexpr const char* kKeyExchange =
      "curve25519-sha256,curve25519-sha256@libssh.org,diffie-hellman-group16-sha512,"
      "diffie-hellman-group18-sha512";
  static constexpr const char* kHostKeys = "ssh-ed25519,rsa-sha2-512,rsa-sha2-256";
  static constexpr const char* kCiphers =
      "chacha20-poly1305@openssh.com,aes128-gcm@openssh.com,aes256-gcm@openssh.com,aes128-ctr,"
      "aes256-ctr";
  static constexpr const char* kMacs =
      "hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha2-256,hmac-sha2-512";
  // Signature algorithms accepted for client keys; also announced as server-sig-algs.
  static constexpr const char* kPublicKeys =
      "ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,rsa-sha2-512,"
      "rsa-sha2-256";
  static constexpr int kRsaMinBits = 2048;
  // The software version in our identification string: "SSH-2.0-fordeler", nothing more.
  static constexpr const char* kBanner = "fordeler";
};

class SshServer {
 public:
  // REQUIRES: env, registry and listener outlive the server.
  SshServer(Env* env, AccountRegistry* registry, FileEventListener* listener);
  ~SshServer();
  SshServer(const SshServer&) = delete;
  SshServer& operator=(const SshServer&) = delete;

  // Loads the host keys and binds every listen address of `config` (SO_REUSEADDR, so a restart
  // right after a crash binds the same port). Nothing is served until Run().
  Status Start(std::shared_ptr<const Config> config);

  // The addresses actually bound, "127.0.0.1:41234" / "[::1]:41234" (port 0 resolved).
  std::vector<std::string> ListeningAddresses() const;

  // Serves on the configured number of threads; returns once Stop() has ended every session.
  void Run();

  // Stops accepting, ends every session (clients are told why) and makes Run() return.
  void Stop();

  // New logins use `config`; sessions whose account or key is no longer there are ended. Host
  // keys and listen addresses stay as they were at Start (a restart changes them).
  void Reconfigure(std::shared_ptr<const Config> config);

  size_t session_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fordeler
