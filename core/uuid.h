// Random (version 4) UUIDs in the lowercase text form the contract uses for FileTransferUUID.
#pragma once

#include <string>
#include <string_view>

namespace fordeler {

// A new random UUID, e.g. "5f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c71". Thread-safe.
std::string NewUuid();

// True for the canonical 36-character form (either case).
bool IsUuid(std::string_view text);

}  // namespace fordeler
