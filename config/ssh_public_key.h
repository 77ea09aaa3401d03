// SSH public key blobs (RFC 4253 §6.6, RFC 5656, RFC 8709): base64 as written in authorized_keys,
// the wire-format blob inside, and the SHA-256 fingerprint exactly as `ssh-keygen -l` prints it.
// Pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fordeler {

// Standard base64 (RFC 4648 §4). Decoding is strict: only the alphabet, padding to a multiple of
// four with '=' at the end only; nullopt when the text is not that.
std::optional<std::string> Base64Decode(std::string_view text);
std::string Base64Encode(std::string_view data, bool pad = true);

struct PublicKeyInfo {
  std::string type;  // the type string inside the blob
  int bits = 0;      // RSA modulus bits; 256 for Ed25519; 256/384/521 for ECDSA
};

// Checks that `blob` is a well-formed public key of a type fordeler accepts (ssh-ed25519,
// ecdsa-sha2-nistp256/384/521, ssh-rsa) and measures it. Does not enforce a minimum size: the
// caller decides (contract §1: RSA >= 2048 bits). Refuses RSA keys over 16384 bits, as OpenSSH
// does.
Result<PublicKeyInfo> InspectPublicKeyBlob(std::string_view blob);

// "SHA256:" + unpadded base64 of SHA-256(blob): what `ssh-keygen -lf` and sshd's logs show.
std::string Sha256Fingerprint(std::string_view blob);

}  // namespace fordeler
