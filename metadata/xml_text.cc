#include "metadata/xml_text.h"

#include <cstdint>

namespace fordeler {
namespace {

bool IsContinuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

int DecodeUtf8(std::string_view s, size_t* pos) {
  const size_t start = *pos;
  const auto lead = static_cast<unsigned char>(s[start]);
  *pos = start + 1;
  if (lead < 0x80) return lead;
  int length;
  int value;
  int min_value;
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2, value = lead & 0x1F, min_value = 0x80;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3, value = lead & 0x0F, min_value = 0x800;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4, value = lead & 0x07, min_value = 0x10000;
  } else {
    return -1;  // a continuation byte, C0/C1 (always overlong) or F5..FF
  }
  if (s.size() - start < static_cast<size_t>(length)) return -1;
  for (int i = 1; i < length; ++i) {
    const auto c = static_cast<unsigned char>(s[start + i]);
    if (!IsContinuation(c)) return -1;
    value = (value << 6) | (c & 0x3F);
  }
  if (value < min_value || value > 0x10FFFF) return -1;
  if (value >= 0xD800 && value <= 0xDFFF) return -1;
  *pos = start + length;
  return value;
}

bool IsXmlChar(int c) {
  return c == 0x9 || c == 0xA || c == 0xD || (c >= 0x20 && c <= 0xD7FF) ||
         (c >= 0xE000 && c <= 0xFFFD) || (c >= 0x10000 && c <= 0x10FFFF);
}

bool IsXmlSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view TrimXmlSpace(std::string_view s) {
  while (!s.empty() && IsXmlSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsXmlSpace(s.back())) s.remove_suffix(1);
  return s;
}

size_t CountCharacters(std::string_view s) {
  size_t count = 0;
  for (size_t pos = 0; pos < s.size(); ++count) DecodeUtf8(s, &pos);
  return count;
}

std::string Abbreviate(std::string_view s, size_t max_chars) {
  size_t pos = 0;
  for (size_t n = 0; n < max_chars && pos < s.size(); ++n) DecodeUtf8(s, &pos);
  if (pos >= s.size()) return std::string(s);
  return std::string(s.substr(0, pos)) + "…";
}

void AppendXmlEscaped(std::string_view s, std::string* out) {
  size_t pos = 0;
  while (pos < s.size()) {
    const size_t start = pos;
    const int c = DecodeUtf8(s, &pos);
    switch (c) {
      case '&':
        *out += "&amp;";
        break;
      case '<':
        *out += "&lt;";
        break;
      case '>':
        *out += "&gt;";
        break;
      case '\r':
        *out += "&#13;";
        break;
      case -1:
        *out += "\xEF\xBF\xBD";
        break;  // U+FFFD REPLACEMENT CHARACTER
      default:
        if (IsXmlChar(c)) out->append(s.substr(start, pos - start));
        break;
    }
  }
}

}  // namespace fordeler
