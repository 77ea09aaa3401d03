// libFuzzer target: authorized_keys lines (config/authorized_keys.h), which an operator copies
// from a vendor, and the from= patterns they carry. Each line either parses into a key of an
// accepted type and size, whose re-inspected blob agrees with it, or is refused with a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "config/authorized_keys.h"
#include "config/ssh_public_key.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fordeler;
  std::string_view text(reinterpret_cast<const char*>(data), size);
  while (!text.empty()) {
    size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    auto key = ParseAuthorizedKeyLine(line, SourceLocation{"authorized_keys", 1});
    if (!key.ok()) {
      if (key.status().message().empty()) std::abort();  // every refusal says why
      continue;
    }
    auto inspected = InspectPublicKeyBlob(key->blob);
    if (!inspected.ok() || inspected->type != key->type || inspected->bits != key->bits) {
      std::abort();
    }
    if (key->type == "ssh-rsa" && key->bits < 2048) std::abort();  // contract §1
    if (!key->fingerprint.starts_with("SHA256:")) std::abort();
    // from= matching must answer for any address, whatever the patterns.
    key->AllowsAddress("192.0.2.1");
    key->AllowsAddress("2001:db8::1");
  }
  return 0;
}
