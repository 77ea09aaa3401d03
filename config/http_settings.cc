#include "config/http_settings.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "config/settings_parser.h"

namespace fordeler {
namespace {

void ReadHttpListen(TableReader& r, HttpConfig* out, std::vector<int>* lines) {
  std::vector<std::string> listen;
  if (!r.StringArray("listen", &listen, lines)) return;
  bool ok = true;
  for (size_t i = 0; i < listen.size(); ++i) {
    Status s = ValidateListenAddress(listen[i]);
    if (!s.ok()) r.ErrorAt((*lines)[i], "listen: " + s.message());
    if (s.ok() && std::find(listen.begin(), listen.begin() + i, listen[i]) != listen.begin() + i) {
      r.ErrorAt((*lines)[i], "listen: \"" + listen[i] + "\" is named twice");
      s = Status::InvalidArgument("duplicate");
    }
    ok = ok && s.ok();
  }
  if (ok) out->listen = std::move(listen);
}

// A crypt(3) hash as `openssl passwd -6` or mkpasswd write it: "$id$...".
bool LooksLikeCryptHash(const std::string& hash) {
  return hash.size() >= 4 && hash[0] == '$' && hash.find('$', 1) != std::string::npos &&
         hash.find_first_of(" \t\r\n:") == std::string::npos;
}

void ReadAuth(TableReader& r, HttpConfig* out) {
  r.String("user", &out->user);
  r.String("password_hash", &out->password_hash);
  if (r.Has("user") && out->user.empty()) r.Error("user", "must not be empty");
  if (r.Has("user") && out->user.find(':') != std::string::npos) {
    r.Error("user", "must not contain ':'");
  }
  if (r.Has("password_hash") && !LooksLikeCryptHash(out->password_hash)) {
    r.Error("password_hash",
            "must be a crypt(3) hash such as `openssl passwd -6` or `mkpasswd` print "
            "(\"$6$...\" or \"$y$...\"), never the password itself");
  }
  if (r.Has("user") != r.Has("password_hash")) {
    r.Error(r.Has("user") ? "user" : "password_hash",
            "user and password_hash must be given together");
  }
}

void ReadTlsFile(TableReader& r, std::string_view key, std::string* out) {
  if (!r.Path(key, out)) return;
  if (access(out->c_str(), R_OK) != 0) {
    r.Error(key, "cannot read " + *out + ": " + std::strerror(errno));
  }
}

}  // namespace

bool IsLoopbackListenAddress(std::string_view text) {
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return false;
  std::string host(text.substr(0, colon));
  unsigned char buf[16];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) != 1) return false;
    static const unsigned char kLoopback[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const unsigned char kMapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(buf, kLoopback, 16) == 0) return true;
    return std::memcmp(buf, kMapped, 12) == 0 && buf[12] == 127;
  }
  return inet_pton(AF_INET, host.c_str(), buf) == 1 && buf[0] == 127;
}

void ReadHttp(TableReader& r, HttpConfig* out) {
  r.CheckKeys({"listen", "user", "password_hash", "tls_certificate", "tls_key"});
  std::vector<int> lines;
  ReadHttpListen(r, out, &lines);
  ReadAuth(r, out);
  ReadTlsFile(r, "tls_certificate", &out->tls_certificate);
  ReadTlsFile(r, "tls_key", &out->tls_key);
  if (r.Has("tls_certificate") != r.Has("tls_key")) {
    r.Error(r.Has("tls_certificate") ? "tls_certificate" : "tls_key",
            "tls_certificate and tls_key must be given together");
  }
  bool protected_ =
      r.Has("user") && r.Has("password_hash") && r.Has("tls_certificate") && r.Has("tls_key");
  for (size_t i = 0; i < out->listen.size() && i < lines.size(); ++i) {
    if (!protected_ && !IsLoopbackListenAddress(out->listen[i])) {
      r.ErrorAt(lines[i], "listen: \"" + out->listen[i] +
                              "\" is not a loopback address; listening on it needs basic auth "
                              "(user, password_hash) and TLS (tls_certificate, tls_key)");
    }
  }
}

}  // namespace fordeler
