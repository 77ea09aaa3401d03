// The checks of a trigger that need neither its data file nor the storage (contract §7), shared
// by fordelerd's pipeline and `fordeler explain`, so that both give the same code and words.
// Pure; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "core/error_codes.h"
#include "metadata/trigger.h"

namespace fordeler {

// FileName must be the trigger's own <name> (`own_name`: its file name without ".trigger") and
// a valid one; else FILENAME_MISMATCH (1003), saying which of the two it is.
std::optional<Rejection> CheckFileName(const Trigger& trigger, std::string_view own_name);

// The announced SizeInBytes within `max_file_size`, whatever is in /OUT by now; else
// FILE_TOO_LARGE (3001). Checked once the route is known, so that the rejection records it.
std::optional<Rejection> CheckAnnouncedSize(const Trigger& trigger, uint64_t max_file_size);

}  // namespace fordeler
