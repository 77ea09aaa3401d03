#include "routing/trigger_checks.h"

#include <string>

#include "core/names.h"
#include "core/units.h"

namespace fordeler {

std::optional<Rejection> CheckFileName(const Trigger& trigger, std::string_view own_name) {
  const std::string named = "FileName \"" + PrintableName(trigger.file_name) + "\"";
  if (trigger.file_name != own_name) {
    return Rejection{ErrorCode::kFilenameMismatch,
                     named + " is not the trigger's own name \"" + PrintableName(own_name) + "\""};
  }
  if (const char* problem = NameProblem(own_name)) {
    return Rejection{ErrorCode::kFilenameMismatch,
                     named + " is not a valid name: " + std::string(problem)};
  }
  return std::nullopt;
}

std::optional<Rejection> CheckAnnouncedSize(const Trigger& trigger, uint64_t max_file_size) {
  if (trigger.size_in_bytes <= max_file_size) return std::nullopt;
  return Rejection{ErrorCode::kFileTooLarge, "SizeInBytes is " +
                                                 std::to_string(trigger.size_in_bytes) +
                                                 "; max_file_size is " + FormatSize(max_file_size)};
}

}  // namespace fordeler
