// Time-ordered (version 7, RFC 9562) UUIDs in the lowercase text form the contract uses for
// FileTransferUUID.
//
// Version 7 rather than 4: the audit log keys transfers, deliveries and events by this UUID, and
// keys that grow with time let the transfers of one group commit share index pages instead of
// each dirtying pages of its own (docs/performance.md). To anyone reading one, it is an opaque
// unique id, as before; the time it carries is also in the metadata's CreationTime.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace fordeler {

// A new UUID, e.g. "019af1b2-3c4d-7e5f-9a0b-1c2d3e4f5a6b": 48 bits of Unix time in milliseconds,
// the version, 12 bits more of the time (fractions of the millisecond), the variant and 62 random
// bits. UUIDs made later by this process sort after earlier ones, also within one millisecond.
// Thread-safe.
std::string NewUuid();

// The same for a given time (nanoseconds since the Unix epoch) and 8 random bytes, for tests.
std::string MakeUuidV7(int64_t unix_nanos, const uint8_t (&random)[8]);

// When a version 7 UUID was made (to the millisecond); nullopt for any other UUID.
std::optional<std::chrono::system_clock::time_point> TimeOfUuid(std::string_view uuid);

// True for the canonical 36-character form (either case).
bool IsUuid(std::string_view text);

}  // namespace fordeler
