#include "daemon/restart_only.h"

namespace fordeler {

// Keep the two functions in step: a setting kept as started but not named would change nothing
// without a word (as [http] did), one named but not kept would take effect after all.
std::string RestartOnlyChanges(const Config& fresh, const Config& started) {
  std::string pending;
  auto restart_only = [&](bool changed, const char* name) {
    if (changed) pending += (pending.empty() ? "" : ",") + std::string(name);
  };
  restart_only(fresh.server.listen != started.server.listen, "server.listen");
  restart_only(fresh.server.host_keys != started.server.host_keys, "server.host_keys");
  restart_only(fresh.server.threads != started.server.threads, "server.threads");
  restart_only(fresh.delivery.workers != started.delivery.workers, "delivery.workers");
  restart_only(fresh.storage.root != started.storage.root, "storage.root");
  restart_only(fresh.database.path != started.database.path, "database.path");
  const HttpConfig& now = fresh.http;
  const HttpConfig& then = started.http;
  restart_only(now.listen != then.listen, "http.listen");
  restart_only(now.user != then.user, "http.user");
  restart_only(now.password_hash != then.password_hash, "http.password_hash");
  restart_only(now.tls_certificate != then.tls_certificate, "http.tls_certificate");
  restart_only(now.tls_key != then.tls_key, "http.tls_key");
  return pending;
}

// With a new storage root, say, the SFTP server would make jails and take uploads where the
// pipeline never looks. [http] is kept whole: its parts are checked together at load (an address
// that is not loopback needs basic auth and TLS), so a new user or password beside the started
// addresses could make a combination nobody checked.
std::shared_ptr<const Config> KeepRestartOnly(const Config& fresh, const Config& started) {
  auto applied = std::make_shared<Config>(fresh);
  applied->server.listen = started.server.listen;
  applied->server.host_keys = started.server.host_keys;
  applied->server.threads = started.server.threads;
  applied->delivery.workers = started.delivery.workers;
  applied->storage.root = started.storage.root;
  applied->database.path = started.database.path;
  applied->http = started.http;
  return applied;
}

}  // namespace fordeler
