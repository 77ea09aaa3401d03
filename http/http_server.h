// HttpServer: the read-only status page, JSON API and /metrics over HTTP/1.1 (Boost.Beast), on
// the [http] listen addresses (docs/operations.md). It runs on its own io_context and thread, so
// a slow audit-log read never delays an SFTP session; requests are served one at a time per
// connection and the Router does the rest.
//
// Limits: GET and HEAD only (the Router answers 405); request headers at most kHeaderLimit
// bytes (431 otherwise), bodies at most kBodyLimit (413); kMaxConnections connections at once
// (more are closed at accept); every read, write and TLS handshake must finish within kTimeout,
// and an idle keep-alive connection is closed after it. Basic auth when [http] user is set
// (401 with WWW-Authenticate), TLS when tls_certificate is set. Every reply carries a strict
// Content-Security-Policy (no scripts at all), X-Content-Type-Options: nosniff and
// Cache-Control: no-store. Credentials are never logged.
//
// Thread safety: Start, ReloadTls, ListeningAddresses and Stop from one thread; Stop is
// idempotent.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/status.h"
#include "http/router.h"

namespace fordeler {

class HttpServer {
 public:
  static constexpr size_t kHeaderLimit = 16 * 1024;
  static constexpr size_t kBodyLimit = 16 * 1024;
  static constexpr int kMaxConnections = 64;
  static constexpr std::chrono::seconds kTimeout{15};

  // REQUIRES: `router` outlives the server.
  explicit HttpServer(const Router* router);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds every address of `config.listen` (none: nothing to do), loads the TLS certificate and
  // key, and starts serving on the server's thread. Fails, binding nothing, when an address
  // cannot be bound or the certificate or key cannot be loaded.
  Status Start(const HttpConfig& config);
  // Loads the TLS certificate and key again from the paths Start was given (a certificate
  // renewed in place, at a reload): new connections use them, open ones keep what they have.
  // On failure nothing changes and the error is returned. OK, doing nothing, without TLS.
  Status ReloadTls();
  // "127.0.0.1:9122", "[::1]:9122": the bound addresses (actual ports when 0 was asked for).
  std::vector<std::string> ListeningAddresses() const;
  // Stops accepting, ends every connection and joins the thread.
  void Stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fordeler
