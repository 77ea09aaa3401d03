#include "metadata/xml_guard.h"

#include <cstdio>
#include <string>
#include <utility>

#include "metadata/trigger.h"
#include "metadata/xml_text.h"

namespace fordeler {
namespace {

constexpr std::string_view kBom = "\xEF\xBB\xBF";
constexpr size_t kMaxReferenceLength = 40;  // "&#x0000000010FFFF;" and then some

bool Malformed(Rejection* why, std::string description) {
  why->code = ErrorCode::kTriggerMalformed;
  why->description = std::move(description);
  return false;
}

bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

bool EqualsIgnoreAsciiCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string_view TrimLeft(std::string_view s) {
  while (!s.empty() && IsXmlSpace(s.front())) s.remove_prefix(1);
  return s;
}

bool CheckCharacters(std::string_view s, size_t base, Rejection* why) {
  for (size_t pos = 0; pos < s.size();) {
    const size_t start = pos;
    const int c = DecodeUtf8(s, &pos);
    if (c < 0) {
      return Malformed(why, "not valid UTF-8 at byte offset " + std::to_string(base + start));
    }
    if (!IsXmlChar(c)) {
      char text[16];
      std::snprintf(text, sizeof text, "U+%04X", static_cast<unsigned>(c));
      return Malformed(why, std::string("character ") + text + " at byte offset " +
                                std::to_string(base + start) + " is not allowed in XML");
    }
  }
  return true;
}

// The pseudo-attributes of an XML declaration at the start of `s`, if there is one: its
// encoding, when named, must be UTF-8.
bool CheckDeclaration(std::string_view s, Rejection* why) {
  if (s.size() < 6 || s.substr(0, 5) != "<?xml" || !(IsXmlSpace(s[5]) || s[5] == '?')) {
    return true;
  }
  const size_t end = s.find("?>");
  if (end == std::string_view::npos) return Malformed(why, "unterminated XML declaration");
  std::string_view rest = s.substr(5, end - 5);
  while (!(rest = TrimLeft(rest)).empty()) {
    const size_t eq = rest.find('=');
    if (eq == std::string_view::npos) return Malformed(why, "malformed XML declaration");
    const std::string_view name = TrimXmlSpace(rest.substr(0, eq));
    rest = TrimLeft(rest.substr(eq + 1));
    if (rest.empty() || (rest[0] != '"' && rest[0] != '\'')) {
      return Malformed(why, "malformed XML declaration");
    }
    const size_t close = rest.find(rest[0], 1);
    if (close == std::string_view::npos) return Malformed(why, "malformed XML declaration");
    const std::string_view value = rest.substr(1, close - 1);
    if (name == "encoding" && !EqualsIgnoreAsciiCase(value, "UTF-8")) {
      return Malformed(why, "the XML declaration names encoding \"" + Abbreviate(value) +
                                "\": a trigger must be UTF-8");
    }
    rest = rest.substr(close + 1);
  }
  return true;
}

// Walks the markup of a document whose characters CheckCharacters accepted.
class Scanner {
 public:
  Scanner(std::string_view s, size_t base, Rejection* why) : s_(s), base_(base), why_(why) {}

  bool Run() {
    size_t i = 0;
    while (i < s_.size()) {
      const char c = s_[i];
      if (c == '<') {
        if (!Markup(&i)) return false;
      } else if (c == '&' && depth_ > 0) {
        if (!Reference(&i)) return false;
      } else if (depth_ == 0 && !IsXmlSpace(c)) {
        return Fail(i, "text outside the root element");
      } else if (c == ']' && s_.substr(i).starts_with("]]>")) {
        return Fail(i, "\"]]>\" in text (allowed only to end a CDATA section)");
      } else {
        ++i;
      }
    }
    if (!seen_root_) return Malformed(why_, "no root element");
    return true;  // an element left open is reported by the parser
  }

 private:
  bool Fail(size_t at, const std::string& what) {
    return Malformed(why_, what + " (byte offset " + std::to_string(base_ + at) + ")");
  }

  bool Markup(size_t* i) {
    const std::string_view rest = s_.substr(*i);
    if (rest.starts_with("<!--")) {
      const size_t dashes = s_.find("--", *i + 4);  // allowed only to end the comment
      if (dashes != std::string_view::npos && dashes + 2 < s_.size() && s_[dashes + 2] != '>') {
        return Fail(dashes, "\"--\" inside a comment");
      }
      return SkipTo(i, 4, "-->", "comment");
    }
    if (rest.starts_with("<![CDATA[")) {
      if (depth_ == 0) return Fail(*i, "CDATA section outside the root element");
      *i += 9;
      const size_t end = s_.find("]]>", *i);
      if (end == std::string_view::npos) return Fail(*i - 9, "unterminated CDATA section");
      *i = end + 3;
      return true;
    }
    if (rest.starts_with("<!")) return RefuseDeclaration(*i);
    if (rest.starts_with("<?")) return ProcessingInstruction(i);
    return Tag(i);
  }

  bool RefuseDeclaration(size_t at) {
    const std::string_view rest = s_.substr(at + 2);
    if (rest.starts_with("DOCTYPE")) {
      return Fail(at, "a DOCTYPE is not allowed: fordeler reads no DTD");
    }
    if (rest.starts_with("ENTITY")) return Fail(at, "an entity declaration is not allowed");
    size_t n = 0;
    while (n < rest.size() && n < 16 && IsAsciiLetter(rest[n])) ++n;
    return Fail(at,
                "markup declaration \"<!" + std::string(rest.substr(0, n)) + "\" is not allowed");
  }

  // Skips a comment or processing instruction starting at *i, refusing `<!` + letter inside.
  bool SkipTo(size_t* i, size_t open_length, std::string_view close, const char* what) {
    const size_t end = s_.find(close, *i + open_length);
    if (end == std::string_view::npos) return Fail(*i, std::string("unterminated ") + what);
    for (size_t k = *i + open_length; k + 2 < end; ++k) {
      if (s_[k] == '<' && s_[k + 1] == '!' && IsAsciiLetter(s_[k + 2])) {
        return RefuseDeclaration(k);
      }
    }
    *i = end + close.size();
    return true;
  }

  bool ProcessingInstruction(size_t* i) {
    size_t n = *i + 2;
    while (n < s_.size() && !IsXmlSpace(s_[n]) && s_[n] != '?') ++n;
    const std::string_view target = s_.substr(*i + 2, n - *i - 2);
    if (EqualsIgnoreAsciiCase(target, "xml") && !(*i == 0 && target == "xml")) {
      return Fail(*i, "an XML declaration is allowed only at the very start");
    }
    return SkipTo(i, 2, "?>", "processing instruction");
  }

  bool Tag(size_t* i) {
    const size_t start = *i;
    const bool end_tag = start + 1 < s_.size() && s_[start + 1] == '/';
    if (end_tag && depth_ == 0) return Fail(start, "an end tag without a start tag");
    if (!end_tag && depth_ == 0 && seen_root_) return Fail(start, "a second root element");
    char quote = 0;
    size_t k = start + 1;
    while (k < s_.size() && (quote != 0 || s_[k] != '>')) {
      const char c = s_[k];
      if (quote != 0 && c == '&') {
        if (!Reference(&k)) return false;
        continue;
      }
      if (c == '<') return Fail(k, quote ? "'<' in an attribute value" : "'<' inside a tag");
      if (c == quote) {
        quote = 0;
      } else if (quote == 0 && (c == '"' || c == '\'')) {
        quote = c;
      }
      ++k;
    }
    if (k >= s_.size()) return Fail(start, "unterminated tag");
    if (end_tag) {
      --depth_;
    } else {
      seen_root_ = true;
      if (s_[k - 1] != '/') ++depth_;
    }
    *i = k + 1;
    return true;
  }

  // A reference starting at s_[*i] == '&'; on success *i is past its ';'.
  bool Reference(size_t* i) {
    const size_t semi = s_.find(';', *i + 1);
    if (semi == std::string_view::npos || semi - *i > kMaxReferenceLength || semi == *i + 1) {
      return Fail(*i, "an '&' that starts no reference: write &amp;");
    }
    const std::string_view name = s_.substr(*i + 1, semi - *i - 1);
    const std::string shown = "&" + std::string(name) + ";";
    if (name[0] == '#') {
      const int value = CharacterReferenceValue(name.substr(1));
      if (value < 0) return Fail(*i, "malformed character reference " + shown);
      if (!IsXmlChar(value)) {
        return Fail(*i, "character reference " + shown + " is not an allowed XML character");
      }
    } else if (name != "lt" && name != "gt" && name != "amp" && name != "quot" && name != "apos") {
      if (name.find_first_of(" \t\r\n&<>\"'") != std::string_view::npos) {
        return Fail(*i, "an '&' that starts no reference: write &amp;");
      }
      return Fail(*i, "entity reference " + shown +
                          " is not allowed, only &lt; &gt; &amp; &quot; &apos; and numeric ones");
    }
    *i = semi + 1;
    return true;
  }

  // The value of "65" or "x41"; -1 when malformed; values past U+10FFFF saturate.
  static int CharacterReferenceValue(std::string_view digits) {
    int base = 10;
    if (!digits.empty() && digits[0] == 'x') base = 16, digits.remove_prefix(1);
    if (digits.empty()) return -1;
    int value = 0;
    for (const char c : digits) {
      int d;
      if (c >= '0' && c <= '9') {
        d = c - '0';
      } else if (base == 16 && c >= 'a' && c <= 'f') {
        d = c - 'a' + 10;
      } else if (base == 16 && c >= 'A' && c <= 'F') {
        d = c - 'A' + 10;
      } else {
        return -1;
      }
      value = value > 0x10FFFF ? value : value * base + d;
    }
    return value;
  }

  std::string_view s_;
  size_t base_;
  Rejection* why_;
  int depth_ = 0;
  bool seen_root_ = false;
};

}  // namespace

std::string_view StripUtf8Bom(std::string_view bytes) {
  if (bytes.starts_with(kBom)) bytes.remove_prefix(kBom.size());
  return bytes;
}

bool CheckTriggerBytes(std::string_view bytes, Rejection* why) {
  if (bytes.size() > kMaxTriggerBytes) {
    return Malformed(why, "the trigger is " + std::to_string(bytes.size()) + " bytes; at most " +
                              std::to_string(kMaxTriggerBytes) + " are allowed");
  }
  const std::string_view body = StripUtf8Bom(bytes);
  const size_t base = bytes.size() - body.size();
  return CheckCharacters(body, base, why) && CheckDeclaration(body, why) &&
         Scanner(body, base, why).Run();
}

}  // namespace fordeler
