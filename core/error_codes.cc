#include "core/error_codes.h"

#include <array>
#include <utility>

namespace fordeler {
namespace {

constexpr std::array<std::pair<ErrorCode, std::string_view>, 14> kNames{{
    {ErrorCode::kTriggerMalformed, "TRIGGER_MALFORMED"},
    {ErrorCode::kTriggerInvalid, "TRIGGER_INVALID"},
    {ErrorCode::kFilenameMismatch, "FILENAME_MISMATCH"},
    {ErrorCode::kDataFileMissing, "DATA_FILE_MISSING"},
    {ErrorCode::kSizeMismatch, "SIZE_MISMATCH"},
    {ErrorCode::kChecksumMismatch, "CHECKSUM_MISMATCH"},
    {ErrorCode::kSenderMismatch, "SENDER_MISMATCH"},
    {ErrorCode::kUnknownRecipient, "UNKNOWN_RECIPIENT"},
    {ErrorCode::kNoRoute, "NO_ROUTE"},
    {ErrorCode::kUnknownDataArea, "UNKNOWN_DATA_AREA"},
    {ErrorCode::kAmbiguousDataArea, "AMBIGUOUS_DATA_AREA"},
    {ErrorCode::kFileTooLarge, "FILE_TOO_LARGE"},
    {ErrorCode::kQuotaExceeded, "QUOTA_EXCEEDED"},
    {ErrorCode::kInternalError, "INTERNAL_ERROR"},
}};

}  // namespace

std::string_view ErrorName(ErrorCode code) {
  for (const auto& [c, name] : kNames) {
    if (c == code) return name;
  }
  return "NONE";
}

ErrorCode ErrorCodeFromInt(int value) {
  for (const auto& [c, name] : kNames) {
    if (static_cast<int>(c) == value) return c;
  }
  return ErrorCode::kNone;
}

}  // namespace fordeler
