// Parses a trigger file (contract §3). Pure: bytes in, Trigger or Rejection out; no I/O, no
// entity expansion, no external fetch. Thread-safe.
//
// Checks, in this order, each with exactly one code of contract §7:
//   TRIGGER_MALFORMED (1001): over kMaxTriggerBytes; not valid UTF-8 (or an encoding declaration
//     other than UTF-8); a DOCTYPE, an entity declaration or an entity reference other than the
//     five predefined and numeric ones — refused before any XML parsing; not well-formed XML.
//   TRIGGER_INVALID (1002): root is not Trigger in the SFTP namespace (any prefix); FileName,
//     SizeInBytes, Sender or Recipients missing or empty; SizeInBytes not a non-negative decimal
//     integer that fits 64 bits; SendersFileId over 255 characters; Sha256 not 64 hex digits.
// Children are unqualified or in the trigger namespace; unknown elements are ignored.
//
// Liberal where that is safe: children in any order; an unprefixed child counts whatever
// default namespace applies; values are trimmed of XML white space; an empty optional element
// counts as absent (but an empty Sha256 is invalid); RouteParameter values are kept as given,
// empty ones included, since their position may matter. Strict where two readers could
// disagree: a single-valued element given twice, or holding elements instead of text, is
// TRIGGER_INVALID; an attribute repeated on one element is TRIGGER_MALFORMED. The byte-level
// checks are listed in xml_guard.h. Every description names the element or byte offset at fault.
#pragma once

#include <string_view>

#include "core/error_codes.h"
#include "metadata/trigger.h"

namespace fordeler {

// Returns true and fills *out, or returns false and fills *why. A trigger that is well-formed
// but invalid (1002) leaves in out->senders_file_id its SendersFileId when one can be read, for
// the receipt to echo (contract §5), and nothing else in *out.
bool ParseTrigger(std::string_view bytes, Trigger* out, Rejection* why);

}  // namespace fordeler
