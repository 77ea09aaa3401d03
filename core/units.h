// Parsing of the human-friendly durations ("60s", "30d", "1h30m") and sizes ("10GiB", "512 KiB",
// "1000000") used in the configuration (contract §9). Pure functions, thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "core/status.h"

namespace fordeler {

// Accepts one or more <number><unit> groups, units ms, s, m, h, d, w; e.g. "90s", "1h30m".
// A bare number is refused: a duration always names its unit.
Result<std::chrono::milliseconds> ParseDuration(std::string_view text);

// Accepts <number>[unit] with units B, KB/MB/GB/TB (powers of 1000) and KiB/MiB/GiB/TiB (powers
// of 1024); a bare number is bytes. Overflow is an error.
Result<uint64_t> ParseSize(std::string_view text);

// "1h30m", "512MiB": the inverse of the parsers, for messages and docs.
std::string FormatDuration(std::chrono::milliseconds d);
std::string FormatSize(uint64_t bytes);

}  // namespace fordeler
