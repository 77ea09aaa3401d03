#include "core/units.h"

#include <array>
#include <cctype>
#include <limits>
#include <string>
#include <utility>

namespace fordeler {
namespace {

enum class Digits { kNone, kOk, kTooLarge };

Digits ParseDigits(std::string_view& text, uint64_t* out) {
  size_t i = 0;
  uint64_t value = 0;
  bool overflow = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    uint64_t digit = static_cast<uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<uint64_t>::max() - digit) / 10) overflow = true;
    value = value * 10 + digit;
    ++i;
  }
  if (i == 0) return Digits::kNone;
  *out = value;
  text.remove_prefix(i);
  return overflow ? Digits::kTooLarge : Digits::kOk;
}

// Why `text` (what follows a number) is not a unit: a fraction is the usual mistake.
const char* NotAUnit(std::string_view text) {
  return !text.empty() && (text[0] == '.' || text[0] == ',')
             ? "a fraction is not allowed (use a smaller unit)"
             : "expected a unit after the number";
}

std::string_view TakeUnit(std::string_view& text) {
  size_t i = 0;
  while (i < text.size() && std::isalpha(static_cast<unsigned char>(text[i]))) ++i;
  std::string_view unit = text.substr(0, i);
  text.remove_prefix(i);
  return unit;
}

bool MultiplyChecked(uint64_t a, uint64_t b, uint64_t* out) {
  if (b != 0 && a > std::numeric_limits<uint64_t>::max() / b) return false;
  *out = a * b;
  return true;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<std::chrono::milliseconds> ParseDuration(std::string_view original) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 6> kUnits{{
      {"ms", 1},
      {"s", 1000},
      {"m", 60'000},
      {"h", 3'600'000},
      {"d", 86'400'000},
      {"w", 604'800'000},
  }};
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad duration \"" + std::string(original) + "\": " + why +
                                   " (examples: \"60s\", \"10m\", \"1h30m\", \"30d\")");
  };
  std::string_view text = Trim(original);
  if (text.empty()) return bad("empty");
  uint64_t total = 0;
  uint64_t last_factor = std::numeric_limits<uint64_t>::max();
  while (!text.empty()) {  // groups of <number><unit>, spaces allowed around the unit
    uint64_t number = 0;
    Digits digits = ParseDigits(text, &number);
    if (digits == Digits::kNone) return bad("expected a number");
    if (digits == Digits::kTooLarge) return bad("too long");
    text = Trim(text);
    std::string_view unit = TakeUnit(text);
    if (unit.empty()) return bad(text.empty() ? "missing unit" : NotAUnit(text));
    uint64_t factor = 0;
    for (const auto& [name, ms] : kUnits) {
      if (name == unit) factor = ms;
    }
    if (factor == 0)
      return bad("unknown unit \"" + std::string(unit) + "\" (units: ms, s, m, h, d, w)");
    // "1h1h" or "30m1h" is more likely a slip than meant: each unit once, largest first.
    if (factor >= last_factor) return bad("each unit once, from the largest to the smallest");
    last_factor = factor;
    uint64_t part = 0;
    if (!MultiplyChecked(number, factor, &part) ||
        total > std::numeric_limits<int64_t>::max() - part) {
      return bad("too long");
    }
    total += part;
    text = Trim(text);
  }
  return std::chrono::milliseconds(static_cast<int64_t>(total));
}

Result<uint64_t> ParseSize(std::string_view original) {
  static constexpr std::array<std::pair<std::string_view, uint64_t>, 10> kUnits{{
      {"B", 1},
      {"KB", 1000ULL},
      {"MB", 1000ULL * 1000},
      {"GB", 1000ULL * 1000 * 1000},
      {"TB", 1000ULL * 1000 * 1000 * 1000},
      {"KiB", 1ULL << 10},
      {"MiB", 1ULL << 20},
      {"GiB", 1ULL << 30},
      {"TiB", 1ULL << 40},
      {"", 1},
  }};
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("bad size \"" + std::string(original) + "\": " + why +
                                   " (examples: \"4096\", \"512MiB\", \"10GiB\")");
  };
  std::string_view text = Trim(original);
  uint64_t number = 0;
  Digits digits = ParseDigits(text, &number);
  if (digits == Digits::kNone) return bad("expected a number");
  if (digits == Digits::kTooLarge) return bad("too large");
  text = Trim(text);
  std::string_view unit = TakeUnit(text);
  if (unit.empty() && !text.empty()) return bad(NotAUnit(text));
  if (!text.empty()) return bad("unexpected characters after the unit");
  for (const auto& [name, factor] : kUnits) {
    if (name != unit) continue;
    uint64_t bytes = 0;
    if (!MultiplyChecked(number, factor, &bytes)) return bad("too large");
    return bytes;
  }
  return bad("unknown unit \"" + std::string(unit) +
             "\" (units: B, KB, MB, GB, TB, KiB, MiB, GiB, TiB; case matters)");
}

std::string FormatDuration(std::chrono::milliseconds d) {
  int64_t ms = d.count();
  if (ms == 0) return "0s";
  std::string out;
  static constexpr std::array<std::pair<const char*, int64_t>, 5> kUnits{
      {{"d", 86'400'000}, {"h", 3'600'000}, {"m", 60'000}, {"s", 1000}, {"ms", 1}}};
  for (const auto& [name, factor] : kUnits) {
    if (ms >= factor) {
      out += std::to_string(ms / factor) + name;
      ms %= factor;
    }
  }
  return out;
}

std::string FormatSize(uint64_t bytes) {
  static constexpr std::array<std::pair<const char*, uint64_t>, 4> kUnits{
      {{"TiB", 1ULL << 40}, {"GiB", 1ULL << 30}, {"MiB", 1ULL << 20}, {"KiB", 1ULL << 10}}};
  for (const auto& [name, factor] : kUnits) {
    if (bytes >= factor && bytes % factor == 0) return std::to_string(bytes / factor) + name;
  }
  return std::to_string(bytes);
}

}  // namespace fordeler
