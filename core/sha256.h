// Incremental SHA-256 (OpenSSL's EVP, which uses the CPU's SHA extensions where present).
// Not thread-safe; cheap to move.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace fordeler {

using Digest = std::array<uint8_t, 32>;

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;

  void Update(const void* data, size_t len);
  // Returns the digest; the object is reset and may be reused.
  Digest Finish();

  static Digest Of(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

std::string ToHex(const uint8_t* data, size_t len);
inline std::string ToHex(const Digest& d) { return ToHex(d.data(), d.size()); }

}  // namespace fordeler
