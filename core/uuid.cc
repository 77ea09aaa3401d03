#include "core/uuid.h"

#include <openssl/rand.h>

#include <array>
#include <atomic>
#include <cctype>
#include <chrono>
#include <stdexcept>

#include "core/sha256.h"

namespace fordeler {
namespace {

// The time part of the last UUID made: 48 bits of milliseconds and 12 of sub-millisecond
// fraction, as one 60-bit number. A clock that stands still or steps back (NTP) makes the next
// UUID take the last one's time plus one step, so ids stay ordered and unique in time part.
std::atomic<uint64_t> last_time_part{0};

uint64_t TimePart(int64_t unix_nanos) {
  if (unix_nanos < 0) unix_nanos = 0;
  auto nanos = static_cast<uint64_t>(unix_nanos);
  uint64_t millis = nanos / 1'000'000;
  uint64_t fraction = (nanos % 1'000'000) * 4096 / 1'000'000;  // 12 bits
  return ((millis & 0xffff'ffff'ffffULL) << 12) | fraction;
}

uint64_t NextTimePart(uint64_t now) {
  uint64_t last = last_time_part.load(std::memory_order_relaxed);
  uint64_t next = 0;
  do {
    next = now > last ? now : last + 1;
  } while (!last_time_part.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

std::string Format(uint64_t time_part, const uint8_t (&random)[8]) {
  std::array<uint8_t, 16> b{};
  uint64_t millis = time_part >> 12;
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(millis >> (8 * (5 - i)));
  b[6] = static_cast<uint8_t>(0x70 | ((time_part >> 8) & 0x0f));  // version 7
  b[7] = static_cast<uint8_t>(time_part & 0xff);
  for (int i = 0; i < 8; ++i) b[8 + i] = random[i];
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 9562 variant
  std::string hex = ToHex(b.data(), b.size());
  return hex.substr(0, 8) + "-" + hex.substr(8, 4) + "-" + hex.substr(12, 4) + "-" +
         hex.substr(16, 4) + "-" + hex.substr(20);
}

}  // namespace

std::string NewUuid() {
  uint8_t random[8];
  if (RAND_bytes(random, sizeof random) != 1) {
    throw std::runtime_error("no randomness for a UUID");
  }
  auto now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  return Format(NextTimePart(TimePart(now)), random);
}

std::string MakeUuidV7(int64_t unix_nanos, const uint8_t (&random)[8]) {
  return Format(TimePart(unix_nanos), random);
}

std::optional<std::chrono::system_clock::time_point> TimeOfUuid(std::string_view uuid) {
  if (!IsUuid(uuid) || uuid[14] != '7') return std::nullopt;
  std::string hex = std::string(uuid.substr(0, 8)) + std::string(uuid.substr(9, 4));
  auto millis = static_cast<int64_t>(std::stoull(hex, nullptr, 16));
  return std::chrono::system_clock::time_point(std::chrono::milliseconds(millis));
}

bool IsUuid(std::string_view t) {
  if (t.size() != 36) return false;
  for (size_t i = 0; i < t.size(); ++i) {
    bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? t[i] != '-' : !std::isxdigit(static_cast<unsigned char>(t[i]))) return false;
  }
  return true;
}

}  // namespace fordeler
