// The error codes of contract §7. Stable: a code never changes meaning. 1xxx: the sender's files;
// 2xxx: routing; 3xxx: limits; 5xxx: fordeler itself (retried, never final while retrying can
// succeed).
#pragma once

#include <string>
#include <string_view>

namespace fordeler {

enum class ErrorCode : int {
  kNone = 0,
  kTriggerMalformed = 1001,
  kTriggerInvalid = 1002,
  kFilenameMismatch = 1003,
  kDataFileMissing = 1004,
  kSizeMismatch = 1005,
  kChecksumMismatch = 1006,
  kSenderMismatch = 1007,
  kUnknownRecipient = 2001,
  kNoRoute = 2002,
  kUnknownDataArea = 2003,
  kAmbiguousDataArea = 2004,
  kFileTooLarge = 3001,
  kQuotaExceeded = 3002,
  kInternalError = 5001,
};

// "TRIGGER_MALFORMED", ...; "NONE" for kNone.
std::string_view ErrorName(ErrorCode code);

// The code for a number, or kNone when the number is no code of contract §7.
ErrorCode ErrorCodeFromInt(int value);

// Why a transfer was refused: exactly one code, and a description for people (never empty),
// written into the receipt's ErrorDescription.
struct Rejection {
  ErrorCode code = ErrorCode::kNone;
  std::string description;
};

}  // namespace fordeler
