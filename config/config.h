// The validated, immutable configuration of fordeler (contract §9), and its loader.
//
// LoadConfig() is the one loader that fordelerd, `fordeler check-config` and the tests use. It
// reads the main TOML file and every file its `include` globs name, resolves relative paths
// against the file that names them, reads authorized_keys files, and validates everything.
// Every problem found is reported with the file and line it stands on; a Config is returned only
// when there are none. A Config is never modified after loading: share it as
// shared_ptr<const Config>; it is safe to read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "config/schedule_spec.h"
#include "core/status.h"

namespace fordeler {

// Where a configuration item was defined, for messages ("conf.d/routes.toml:12").
struct SourceLocation {
  std::string file;
  int line = 0;
  std::string ToString() const { return file + ":" + std::to_string(line); }
};

// One public key an account may log in with: a line of an authorized_keys file or an inline
// `keys` entry. Only options of contract §1 exist here; any other is refused at load.
struct AuthorizedKey {
  std::string type;  // key type of the blob: ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256, ...
  std::string blob;  // the decoded public key blob (wire format)
  std::string comment;
  std::string fingerprint;        // "SHA256:<base64 without padding>", as ssh-keygen -l prints it
  int bits = 0;                   // modulus bits for RSA; 256 for Ed25519; curve size for ECDSA
  std::vector<std::string> from;  // from= patterns (OpenSSH syntax); empty: any address
  bool restrict = false;
  std::optional<std::chrono::system_clock::time_point> expiry;  // expiry-time=
  SourceLocation where;

  // True when `address` (an IPv4/IPv6 literal, no port) satisfies the from= patterns.
  bool AllowsAddress(const std::string& address) const;
  // True when the key has not expired at `now`.
  bool ValidAt(std::chrono::system_clock::time_point now) const { return !expiry || now < *expiry; }
};

struct Account {
  std::string id;         // SFTP user name; also the jail's folder name
  std::string authority;  // default authority of its triggers (CVR URN); may be empty
  std::string it_system;  // may be empty
  std::vector<AuthorizedKey> keys;
  std::optional<uint64_t> quota;        // bytes its /IN may hold
  std::optional<uint64_t> quota_files;  // data files its /IN may hold
  std::optional<uint64_t> out_quota;    // bytes it may hold in /OUT
  SourceLocation where;
};

struct DataArea {
  std::string id;
  std::string name;
  std::string deliver_service;  // InfRef of triggers
  std::string fetch_service;    // InfRef written into metadata
  SourceLocation where;
};

struct Route {
  std::string id;
  std::string data_area;
  std::string sender;
  std::vector<std::string> authorities;  // CVR URNs, or "*"
  std::vector<std::string> recipients;   // account ids
  // When deliveries are expected (monitor/, docs/operations.md); empty: no schedule. Each
  // authority listed is expected on its own; with "*" a delivery for any authority fulfils.
  std::vector<ScheduleSpec> expect;
  std::chrono::milliseconds grace{2 * 3'600'000};  // LATE after grace, MISSING after 2 x grace
  SourceLocation where;
};

struct ServerConfig {
  std::vector<std::string> listen{"0.0.0.0:2222"};  // "host:port", "[v6]:port"; port 0 = any
  std::vector<std::string> host_keys;               // absolute paths
  int max_sessions_per_account = 16;
  int max_sessions = 2048;
  std::chrono::milliseconds login_grace{30'000};
  std::chrono::milliseconds idle_timeout{600'000};
  std::string time_zone = "Europe/Copenhagen";
  int threads = 0;  // io_context threads; 0 = one per core
  // Connections not yet authenticated, overall and per source address (IPv6: per /64).
  int max_unauthenticated = 256;
  int max_unauthenticated_per_address = 32;
  int max_handles_per_session = 1024;  // open files and folders of one SFTP session
  // Ban (address, account) after ban_after failed logins within ban_window; 0 = never ban.
  int ban_after = 10;
  std::chrono::milliseconds ban_window{600'000};
  std::chrono::milliseconds ban_duration{900'000};
  std::vector<std::string> ban_allow;  // address patterns never banned (address_pattern.h)
};

struct StorageConfig {
  std::string root = "/var/lib/fordeler";  // absolute
  SourceLocation where;                    // [storage] root; the main file (line 0) for the default
};

struct DatabaseConfig {
  std::string path = "/var/lib/fordeler/audit.db";  // absolute
  // What set `path`: [database] path, or [storage] root when it is derived from that; the main
  // file (line 0) for the default.
  SourceLocation where;
};

// The status page, JSON API and /metrics (docs/operations.md). A listen address that is not
// loopback is refused at load unless both basic auth (user + password_hash) and TLS are set.
struct HttpConfig {
  std::vector<std::string> listen{"127.0.0.1:9122"};  // empty: no HTTP server
  // Basic auth: the user ("" = none) and a crypt(3) hash ("$6$...", "$y$..."), set together.
  std::string user;
  std::string password_hash;
  // PEM files, absolute; "" = plain HTTP. Set together.
  std::string tls_certificate;
  std::string tls_key;
};

// Alerts (monitor/alerter.h): late and missing deliveries, rejections, deliveries not picked up.
struct AlertsConfig {
  std::vector<std::string> on_alert;          // argv; absolute program path; empty = none
  std::chrono::milliseconds timeout{30'000};  // the command is killed after this
  std::optional<std::chrono::milliseconds> not_picked_up_after;  // unset: no such alert
  std::chrono::milliseconds check_interval{30'000};  // how often route health is evaluated
};

enum class MetadataFormat { kTrigger, kFileMetadata };

struct DeliveryConfig {
  std::chrono::milliseconds trigger_grace{60'000};
  std::chrono::milliseconds retention{30LL * 86'400'000};
  std::chrono::milliseconds retention_warning{3LL * 86'400'000};
  uint64_t max_file_size = 10ULL << 30;
  MetadataFormat metadata_format = MetadataFormat::kTrigger;
  int workers = 64;  // delivery worker threads (they mostly wait for fsync)
};

struct Config {
  std::string path;  // the main file, absolute
  ServerConfig server;
  StorageConfig storage;
  DatabaseConfig database;
  DeliveryConfig delivery;
  HttpConfig http;
  AlertsConfig alerts;
  std::vector<Account> accounts;
  std::vector<DataArea> data_areas;
  std::vector<Route> routes;

  const Account* FindAccount(const std::string& id) const;
  const DataArea* FindDataArea(const std::string& id) const;
};

struct ConfigError {
  SourceLocation where;  // line 0 when the problem is the file as a whole
  std::string message;
  std::string ToString() const;  // "file:line: message"
};

struct LoadResult {
  std::shared_ptr<const Config> config;  // null when errors is not empty
  std::vector<ConfigError> errors;
  // Probably mistakes, but not errors (an include pattern that matches no file): the
  // configuration is still used; check-config prints them and fordelerd logs them.
  std::vector<ConfigError> warnings;
};

struct LoadOptions {
  // What is wrong with the host private key at an absolute path, "" when nothing. fordelerd and
  // `fordeler check-config` pass sftp/host_keys.h's HostKeyProblem, so that a key the server
  // could not use is an error at its line; with it, [server] host_keys must name at least one
  // key. Without it (the read-only commands) a host key need only be readable.
  std::function<std::string(const std::string& path)> host_key_problem;
};

// Errors come sorted by file (main file first, then as read) and line. Includes: the main file's
// `include` globs (relative to it); included files hold only [[account]], [[data_area]] and
// [[route]] and include nothing further. Paths are stored absolute and normalised. See
// config/loader.cc, config/authorized_keys.h (key lines, options, expiry-time) and
// config/address_pattern.h (from= matching; no DNS).
LoadResult LoadConfig(const std::string& path, const LoadOptions& options = {});

}  // namespace fordeler
