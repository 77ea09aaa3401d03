// The checks a trigger's raw bytes pass before any XML parser sees them (contract §3, §7):
// pugixml 1.13 neither validates UTF-8 nor refuses DTDs, and is lenient where XML is strict, so
// everything TRIGGER_MALFORMED stands for that pugixml would let through is decided here.
// Pure; thread-safe.
//
// Refused, each as TRIGGER_MALFORMED (1001) with a description naming the place:
//   - more than kMaxTriggerBytes bytes;
//   - bytes that are not UTF-8 (strict: no overlong forms, surrogates or values over U+10FFFF),
//     or characters XML does not allow (control characters other than TAB, LF, CR; U+FFFE,
//     U+FFFF). A leading UTF-8 byte order mark is allowed;
//   - an XML declaration naming an encoding other than UTF-8, or one not at the very start;
//   - `<!` followed by a letter (DOCTYPE, ENTITY, ELEMENT, ATTLIST, NOTATION) anywhere outside
//     a CDATA section — comments and processing instructions included: harmless there, but
//     no trigger needs one, and refusing every occurrence leaves nothing to get wrong;
//   - in text and attribute values, an `&` that does not start one of the five predefined
//     entity references or a numeric character reference to an allowed character;
//   - what pugixml would accept although XML does not: `<` in an attribute value, text or
//     CDATA outside the root element, a second root element, no root element, `]]>` in text,
//     `--` inside a comment.
#pragma once

#include <string_view>

#include "core/error_codes.h"

namespace fordeler {

// Returns true when `bytes` pass every check above; otherwise false with *why filled.
bool CheckTriggerBytes(std::string_view bytes, Rejection* why);

// `bytes` without a leading UTF-8 byte order mark.
std::string_view StripUtf8Bom(std::string_view bytes);

}  // namespace fordeler
