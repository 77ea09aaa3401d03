// Character-level helpers shared by the trigger checks and the document writers: strict UTF-8
// decoding, the XML 1.0 Char production, and escaping for element text. Pure; thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace fordeler {

// Decodes the UTF-8 sequence at s[*pos] and advances *pos past it. Strict: overlong forms,
// surrogates (U+D800..U+DFFF), values over U+10FFFF and truncated sequences return -1 and
// advance *pos by one byte. REQUIRES: *pos < s.size().
int DecodeUtf8(std::string_view s, size_t* pos);

// True for the characters XML 1.0 allows in a document: #x9 | #xA | #xD | [#x20-#xD7FF] |
// [#xE000-#xFFFD] | [#x10000-#x10FFFF].
bool IsXmlChar(int code_point);

// XML white space (#x20 | #x9 | #xD | #xA).
bool IsXmlSpace(char c);

// `s` without leading and trailing XML white space.
std::string_view TrimXmlSpace(std::string_view s);

// The number of characters (code points) in valid UTF-8 `s`; a byte that starts no valid
// sequence counts as one.
size_t CountCharacters(std::string_view s);

// `s` cut to at most `max_chars` characters, never inside a UTF-8 sequence, with "…" appended
// when it was cut. For quoting user-supplied values in descriptions.
std::string Abbreviate(std::string_view s, size_t max_chars = 64);

// Appends `s` to *out as XML element text that any conforming parser reads back as `s`:
// & < > are written as the predefined entities (quotes need none in element text, and writing
// them as 6-byte entities let a trigger's quotes grow its metadata sixfold), CR as &#13; (so a
// parser's end-of-line handling keeps it). Text that could not appear in XML at all is never
// written: a byte that starts no valid UTF-8 sequence becomes U+FFFD, and a character outside the
// XML Char production (control characters other than TAB, LF and CR; U+FFFE, U+FFFF) is dropped.
void AppendXmlEscaped(std::string_view s, std::string* out);

}  // namespace fordeler
