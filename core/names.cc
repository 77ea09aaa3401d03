#include "core/names.h"

#include <algorithm>
#include <cstdint>

namespace fordeler {

namespace {

// The length of the valid UTF-8 sequence at p (1..4), or 0 when the bytes there are not one.
size_t Utf8SequenceLength(const uint8_t* p, const uint8_t* end) {
  uint8_t b = *p;
  if (b < 0x80) return 1;
  size_t more;
  uint8_t lo = 0x80, hi = 0xBF;  // range of the first continuation byte
  if (b >= 0xC2 && b <= 0xDF) {
    more = 1;
  } else if (b >= 0xE0 && b <= 0xEF) {
    more = 2;
    if (b == 0xE0) lo = 0xA0;  // overlong
    if (b == 0xED) hi = 0x9F;  // surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    more = 3;
    if (b == 0xF0) lo = 0x90;  // overlong
    if (b == 0xF4) hi = 0x8F;  // above U+10FFFF
  } else {
    return 0;  // continuation byte, C0/C1 overlong lead, or F5..FF
  }
  if (static_cast<size_t>(end - p) <= more) return 0;
  if (p[1] < lo || p[1] > hi) return 0;
  for (size_t k = 2; k <= more; ++k) {
    if ((p[k] & 0xC0) != 0x80) return 0;
  }
  return more + 1;
}

}  // namespace

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* end = p + s.size();
  while (p < end) {
    size_t n = Utf8SequenceLength(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

namespace {

// Characters that reorder the text shown around them (U+202A..U+202E, U+2066..U+2069): a name
// holding one can make a line read differently on a screen than it is.
bool IsBidiControl(const uint8_t* p, size_t n) {
  if (n != 3 || p[0] != 0xE2) return false;
  return (p[1] == 0x80 && p[2] >= 0xAA && p[2] <= 0xAE) ||
         (p[1] == 0x81 && p[2] >= 0xA6 && p[2] <= 0xA9);
}

// `s` with what is not shown as itself replaced: bytes that are not UTF-8, control characters
// (C0 but `keep`, DEL, C1), bidirectional controls and the ASCII characters in `also`. Each byte
// becomes "\\xNN", or each character (or stray byte) `replacement` when that is given.
std::string Escaped(std::string_view s, std::string_view also, std::string_view keep,
                    const char* replacement = nullptr) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(s.size());
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const uint8_t* end = p + s.size();
  auto escape = [&](const uint8_t* bytes, size_t n) {
    if (replacement != nullptr) {
      out += replacement;
      return;
    }
    for (size_t i = 0; i < n; ++i) {
      out += "\\x";
      out += kHex[bytes[i] >> 4];
      out += kHex[bytes[i] & 0xf];
    }
  };
  while (p < end) {
    size_t n = Utf8SequenceLength(p, end);
    bool control = n == 1 && (*p < 0x20 || *p == 0x7f) &&
                   keep.find(static_cast<char>(*p)) == std::string_view::npos;
    bool c1 = n == 2 && p[0] == 0xC2 && p[1] < 0xA0;
    bool listed = n == 1 && also.find(static_cast<char>(*p)) != std::string_view::npos;
    if (n == 0) n = 1;  // a stray byte
    if (Utf8SequenceLength(p, end) == 0 || control || c1 || listed || IsBidiControl(p, n)) {
      escape(p, n);
    } else {
      out.append(reinterpret_cast<const char*>(p), n);
    }
    p += n;
  }
  return out;
}

}  // namespace

std::string PrintableName(std::string_view s) { return Escaped(s, "\\\"", ""); }

std::string ShowableText(std::string_view s, bool keep_line_breaks) {
  return Escaped(s, "", keep_line_breaks ? "\n" : "");
}

std::string ReplaceUnshowable(std::string_view s, const char* replacement) {
  return Escaped(s, "", "", replacement);
}

std::string LogValue(std::string_view s) {
  bool plain = !s.empty() && IsValidUtf8(s) && std::none_of(s.begin(), s.end(), [](char c) {
    auto b = static_cast<uint8_t>(c);
    return b <= 0x20 || b == 0x7f || c == '"' || c == '\\' || c == '=';
  });
  if (plain) plain = PrintableName(s) == s;  // no C1 or bidirectional control
  return plain ? std::string(s) : "\"" + PrintableName(s) + "\"";
}

namespace {

bool HasControlCharacter(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    auto b = static_cast<uint8_t>(s[i]);
    if (b < 0x20 || b == 0x7F) return true;
    // C1 controls U+0080..U+009F are encoded C2 80..C2 9F.
    if (b == 0xC2 && i + 1 < s.size() && static_cast<uint8_t>(s[i + 1]) <= 0x9F) return true;
  }
  return false;
}

// The code point of the valid UTF-8 sequence of `n` bytes at p.
char32_t CodePoint(const uint8_t* p, size_t n) {
  static constexpr uint8_t kLeadBits[] = {0, 0x7F, 0x1F, 0x0F, 0x07};
  char32_t c = p[0] & kLeadBits[n];
  for (size_t k = 1; k < n; ++k) c = (c << 6) | (p[k] & 0x3F);
  return c;
}

// White space as Python's str.strip() removes it (xmltodict strips text that way).
bool IsWhiteSpace(char32_t c) {
  return c == 0x20 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 ||
         c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

// What a trigger and a metadata file, XML documents, can carry of `name`: no U+FFFE or U+FFFF
// (not XML characters), and no white space at either end (XML readers trim it: the contract's
// clients read FileName with xmltodict, which strips it).
bool FitsInXml(std::string_view name) {
  const auto* p = reinterpret_cast<const uint8_t*>(name.data());
  const uint8_t* end = p + name.size();
  char32_t c = 0;
  for (bool first = true; p < end; first = false) {
    size_t n = Utf8SequenceLength(p, end);
    c = CodePoint(p, n);
    if (c == 0xFFFE || c == 0xFFFF || (first && IsWhiteSpace(c))) return false;
    p += n;
  }
  return !IsWhiteSpace(c);
}

}  // namespace

const char* NameProblem(std::string_view name) {
  static_assert(kMaxNameBytes == 243, "the description below names the limit");
  if (name.empty()) return "it is empty";
  if (name.size() > kMaxNameBytes) return "it is over 243 bytes long";
  if (name[0] == '.') return "it begins with '.'";  // also "." and ".."
  if (name.find('/') != std::string_view::npos) return "it holds '/' (a name, not a path)";
  if (!IsValidUtf8(name)) return "it is not valid UTF-8";
  if (HasControlCharacter(name)) return "it holds a control character";
  if (!FitsInXml(name)) return "it begins or ends with white space, or holds U+FFFE or U+FFFF";
  return nullptr;
}

bool IsValidName(std::string_view name) { return NameProblem(name) == nullptr; }

bool IsTriggerName(std::string_view name) {
  return name.size() > kTriggerSuffix.size() &&
         name.substr(name.size() - kTriggerSuffix.size()) == kTriggerSuffix;
}

bool IsValidOutName(std::string_view name) {
  if (!IsTriggerName(name)) return IsValidName(name);
  return IsValidName(name.substr(0, name.size() - kTriggerSuffix.size()));
}

bool IsReachableName(std::string_view name) {
  if (name.empty() || name.size() > kMaxFileNameBytes || name[0] == '.') return false;
  return name.find('/') == std::string_view::npos && name.find('\0') == std::string_view::npos;
}

}  // namespace fordeler
