#include "http/basic_auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <memory>

namespace fordeler {

bool DecodeBase64(std::string_view text, std::string* out) {
  if (text.size() % 4 != 0 || text.size() > 4096) return false;
  std::string buf(text.size() / 4 * 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(buf.data()),
                          reinterpret_cast<const unsigned char*>(text.data()),
                          static_cast<int>(text.size()));
  if (n < 0) return false;
  size_t pad = 0;
  if (!text.empty() && text.back() == '=') ++pad;
  if (text.size() > 1 && text[text.size() - 2] == '=') ++pad;
  buf.resize(static_cast<size_t>(n) - pad);
  *out = std::move(buf);
  return true;
}

bool BasicAuth::Allows(std::string_view authorization) const {
  if (!enabled()) return true;
  constexpr std::string_view kScheme = "Basic ";
  if (authorization.size() <= kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i) {  // the scheme is case-insensitive
    if (std::tolower(static_cast<unsigned char>(authorization[i])) !=
        std::tolower(static_cast<unsigned char>(kScheme[i]))) {
      return false;
    }
  }
  std::string decoded;
  if (!DecodeBase64(authorization.substr(kScheme.size()), &decoded)) return false;
  size_t colon = decoded.find(':');
  // crypt_r stops at a NUL: "password\0anything" must not pass as "password".
  bool ok = colon != std::string::npos && decoded.substr(0, colon) == user_ &&
            decoded.find('\0', colon) == std::string::npos;
  if (ok) {
    std::string password = decoded.substr(colon + 1);
    auto data = std::make_unique<crypt_data>();  // ~32 KiB: not on the stack
    const char* hashed = crypt_r(password.c_str(), hash_.c_str(), data.get());
    ok = hashed != nullptr && hashed[0] != '*' && hash_ == hashed;
    OPENSSL_cleanse(password.data(), password.size());
    OPENSSL_cleanse(data.get(), sizeof(crypt_data));
  }
  OPENSSL_cleanse(decoded.data(), decoded.size());
  return ok;
}

}  // namespace fordeler
