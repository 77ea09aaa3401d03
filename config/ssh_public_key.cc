#include "config/ssh_public_key.h"

#include <array>
#include <cstdint>

#include "core/sha256.h"

namespace fordeler {
namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Base64Value(char c) {
  size_t pos = kAlphabet.find(c);
  return pos == std::string_view::npos ? -1 : static_cast<int>(pos);
}

// Reads SSH wire-format fields (RFC 4251 §5) from a blob.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}
  bool ReadString(std::string_view* out) {
    if (data_.size() < 4) return false;
    uint32_t len = 0;
    for (int i = 0; i < 4; ++i) len = (len << 8) | static_cast<uint8_t>(data_[i]);
    data_.remove_prefix(4);
    if (len > data_.size()) return false;
    *out = data_.substr(0, len);
    data_.remove_prefix(len);
    return true;
  }
  bool AtEnd() const { return data_.empty(); }

 private:
  std::string_view data_;
};

int BitLength(std::string_view mpint) {
  while (!mpint.empty() && mpint.front() == '\0') mpint.remove_prefix(1);
  if (mpint.empty()) return 0;
  int bits = static_cast<int>(mpint.size() - 1) * 8;
  for (auto top = static_cast<uint8_t>(mpint.front()); top != 0; top >>= 1) ++bits;
  return bits;
}

Status Malformed(std::string_view type, const char* what) {
  return Status::InvalidArgument("malformed " + std::string(type) + " key: " + what);
}

Result<int> InspectRsa(WireReader& r) {
  std::string_view e, n;
  if (!r.ReadString(&e) || !r.ReadString(&n)) return Malformed("ssh-rsa", "truncated");
  if (!n.empty() && (static_cast<uint8_t>(n.front()) & 0x80) != 0) {
    return Malformed("ssh-rsa", "negative modulus");
  }
  int bits = BitLength(n);
  if (BitLength(e) == 0 || bits == 0) return Malformed("ssh-rsa", "zero exponent or modulus");
  if (bits > 16384) {
    return Status::InvalidArgument("RSA key of " + std::to_string(bits) +
                                   " bits: over 16384 bits, which OpenSSH refuses too");
  }
  return bits;
}

Result<int> InspectEcdsa(std::string_view type, WireReader& r) {
  struct Curve {
    std::string_view name;
    int bits;
    size_t point_size;  // uncompressed: 0x04 || X || Y
  };
  static constexpr std::array<Curve, 3> kCurves{{
      {"nistp256", 256, 65},
      {"nistp384", 384, 97},
      {"nistp521", 521, 133},
  }};
  std::string_view curve, point;
  if (!r.ReadString(&curve) || !r.ReadString(&point)) return Malformed(type, "truncated");
  for (const Curve& c : kCurves) {
    if (type.substr(type.rfind('-') + 1) != c.name) continue;
    if (curve != c.name) return Malformed(type, "curve name does not match the key type");
    if (point.size() != c.point_size || point.front() != '\x04') {
      return Malformed(type, "not an uncompressed curve point");
    }
    return c.bits;
  }
  return Malformed(type, "unknown curve");
}

}  // namespace

std::optional<std::string> Base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  size_t padding = 0;
  while (padding < 2 && padding < text.size() && text[text.size() - 1 - padding] == '=') {
    ++padding;
  }
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    bool pad = i >= text.size() - padding;
    int v = pad ? 0 : Base64Value(text[i]);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    if (i % 4 == 3) {
      out.push_back(static_cast<char>(acc >> 16));
      out.push_back(static_cast<char>((acc >> 8) & 0xff));
      out.push_back(static_cast<char>(acc & 0xff));
      acc = 0;
    }
  }
  out.resize(out.size() - padding);
  return out;
}

std::string Base64Encode(std::string_view data, bool pad) {
  std::string out;
  for (size_t i = 0; i < data.size(); i += 3) {
    uint32_t chunk = static_cast<uint8_t>(data[i]) << 16;
    size_t n = std::min<size_t>(3, data.size() - i);
    if (n > 1) chunk |= static_cast<uint8_t>(data[i + 1]) << 8;
    if (n > 2) chunk |= static_cast<uint8_t>(data[i + 2]);
    for (size_t k = 0; k < 4; ++k) {
      if (k <= n) {
        out.push_back(kAlphabet[(chunk >> (18 - 6 * k)) & 0x3f]);
      } else if (pad) {
        out.push_back('=');
      }
    }
  }
  return out;
}

Result<PublicKeyInfo> InspectPublicKeyBlob(std::string_view blob) {
  WireReader r(blob);
  std::string_view type;
  if (!r.ReadString(&type)) return Status::InvalidArgument("malformed key: no type in the blob");
  Result<int> bits = Status::InvalidArgument("unsupported key type " + std::string(type));
  if (type == "ssh-ed25519") {
    std::string_view point;
    bits = r.ReadString(&point) && point.size() == 32
               ? Result<int>(256)
               : Result<int>(Malformed(type, "not a 32-byte public key"));
  } else if (type == "ssh-rsa") {
    bits = InspectRsa(r);
  } else if (type.starts_with("ecdsa-sha2-")) {
    bits = InspectEcdsa(type, r);
  }
  if (!bits.ok()) return bits.status();
  if (!r.AtEnd()) return Malformed(type, "trailing bytes after the key");
  return PublicKeyInfo{std::string(type), *bits};
}

std::string Sha256Fingerprint(std::string_view blob) {
  Digest d = Sha256::Of(blob);
  return "SHA256:" +
         Base64Encode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()), false);
}

}  // namespace fordeler
