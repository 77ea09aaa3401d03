// HTTP basic authentication (RFC 7617) against one user and a crypt(3) password hash from
// [http] (config.h). The password is checked with libxcrypt's crypt_r, so any scheme it knows
// ($6$ SHA-512 as `openssl passwd -6` writes, $y$ yescrypt as `mkpasswd` writes, ...) works.
// Credentials are never logged or kept. Thread-safe (no shared state).
#pragma once

#include <string>
#include <string_view>

namespace fordeler {

class BasicAuth {
 public:
  // An empty `user` means no authentication: Allows() is always true.
  BasicAuth(std::string user, std::string password_hash)
      : user_(std::move(user)), hash_(std::move(password_hash)) {}

  bool enabled() const { return !user_.empty(); }
  // True when auth is off, or `authorization` (the header's value, "Basic <base64>") names the
  // user with the right password.
  bool Allows(std::string_view authorization) const;

 private:
  std::string user_;
  std::string hash_;
};

// Decodes standard base64 (with padding); false on anything else.
bool DecodeBase64(std::string_view text, std::string* out);

}  // namespace fordeler
