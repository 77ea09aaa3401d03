// Every way a trigger is refused (contract §3, §7): one code, and a description naming what.
#include <gtest/gtest.h>

#include <cctype>
#include <string>
#include <vector>

#include "metadata/trigger_parser.h"
#include "metadata/trigger_testing.h"

namespace fordeler {
namespace {

using trigger_testing::Doc;
using trigger_testing::kDescriptor;
using trigger_testing::kNs;
using trigger_testing::Valid;
using trigger_testing::WithFileName;
using trigger_testing::WithSize;

constexpr ErrorCode k1001 = ErrorCode::kTriggerMalformed;
constexpr ErrorCode k1002 = ErrorCode::kTriggerInvalid;

struct Case {
  const char* name;
  std::string xml;
  ErrorCode code;
  const char* says;  // part of the description
};

const std::string kBillionLaughs = R"(<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
)" + WithFileName("&lol9;");

const std::string kXxe =
    "<?xml version=\"1.0\"?>\n<!DOCTYPE foo [ <!ENTITY xxe SYSTEM \"file:///etc/passwd\"> ]>\n" +
    WithFileName("&xxe;");

std::string Root(const std::string& open, const std::string& close) {
  return open + "<FileDescriptor>" + kDescriptor + "</FileDescriptor>" + close;
}

std::string Padded(size_t size) {
  std::string xml = Valid();
  return xml + std::string(size - xml.size(), ' ');
}

std::vector<Case> Cases() {
  const std::string fn = "<FileName>x.csv</FileName>", sz = "<SizeInBytes>5</SizeInBytes>",
                    se = "<Sender>kmd</Sender>", re = "<Recipients>flis</Recipients>";
  return {
      // TRIGGER_MALFORMED: size, encoding, DTDs and entities, well-formedness.
      {"OverSizeLimit", Padded(kMaxTriggerBytes + 1), k1001, "65537 bytes"},
      {"InvalidUtf8", WithFileName("x\xFF.csv"), k1001, "not valid UTF-8 at byte offset"},
      {"OverlongSlash", WithFileName("..\xC0\xAF"), k1001, "not valid UTF-8"},
      {"OverlongThreeBytes", WithFileName("\xE0\x80\xAF"), k1001, "not valid UTF-8"},
      {"Surrogate", WithFileName("\xED\xA0\x80"), k1001, "not valid UTF-8"},
      {"BeyondUnicode", WithFileName("\xF4\x90\x80\x80"), k1001, "not valid UTF-8"},
      {"TruncatedSequence", Valid() + "\xC3", k1001, "not valid UTF-8"},
      {"Latin1Bytes",
       "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + WithFileName("\xE6\xF8\xE5.csv"), k1001,
       "UTF-8"},
      {"Latin1Declaration", "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>" + Valid(), k1001,
       "encoding \"ISO-8859-1\""},
      {"Utf16Declaration", "<?xml version='1.0' encoding='UTF-16'?>" + Valid(), k1001, "UTF-16"},
      {"ControlCharacter", WithFileName("a\x01"), k1001, "U+0001"},
      {"NulCharacter", WithFileName(std::string("a\0b", 3)), k1001, "U+0000"},
      {"NonCharacterFFFE", WithFileName("\xEF\xBF\xBE"), k1001, "U+FFFE"},
      {"BillionLaughs", kBillionLaughs, k1001, "DOCTYPE"},
      {"XxeFilePasswd", kXxe, k1001, "DOCTYPE"},
      {"ExternalDtd",
       "<!DOCTYPE ns2:Trigger SYSTEM \"http://example.invalid/trigger.dtd\">\n" + Valid(), k1001,
       "DOCTYPE"},
      {"ParameterEntity",
       "<!DOCTYPE x [<!ENTITY % p SYSTEM \"http://example.invalid/p\"> %p;]>" + Valid(), k1001,
       "DOCTYPE"},
      {"DoctypeInComment", "<!-- <!DOCTYPE x> -->" + Valid(), k1001, "DOCTYPE"},
      {"EntityDeclarationInRoot", Doc(kDescriptor + "<!ENTITY e \"x\">"), k1001,
       "entity declaration"},
      {"ElementDeclaration", Doc(kDescriptor + "<!ELEMENT e ANY>"), k1001, "<!ELEMENT"},
      {"EntityReferenceWithoutDoctype", WithFileName("&foo;"), k1001, "&foo;"},
      {"EntityReferenceInAttribute",
       "<ns2:Trigger a=\"&foo;\" xmlns:ns2=\"" + kNs + "\"><FileDescriptor>" + kDescriptor +
           "</FileDescriptor></ns2:Trigger>",
       k1001, "&foo;"},
      {"BareAmpersand", WithFileName("a & b"), k1001, "write &amp;"},
      {"ControlCharacterReference", WithFileName("&#1;"), k1001, "&#1;"},
      {"NulCharacterReference", WithFileName("&#x0;"), k1001, "&#x0;"},
      {"SurrogateReference", WithFileName("&#xD800;"), k1001, "not an allowed XML character"},
      {"ReferenceBeyondUnicode", WithFileName("&#x110000;"), k1001, "not an allowed"},
      {"MalformedReference", WithFileName("&#xZZ;"), k1001, "malformed character reference"},
      {"Empty", "", k1001, "no root element"},
      {"OnlyWhitespace", " \n ", k1001, "no root element"},
      {"Unclosed", "<ns2:Trigger xmlns:ns2=\"" + kNs + "\"><FileDescriptor>" + kDescriptor, k1001,
       "not well-formed"},
      {"MismatchedEndTag", Doc(kDescriptor + "<a><b></a></b>"), k1001, "not well-formed"},
      {"UnterminatedTag", Valid().substr(0, 20), k1001, "unterminated tag"},
      {"TwoRoots", Valid() + "<x/>", k1001, "a second root element"},
      {"TextAfterRoot", Valid() + "junk", k1001, "text outside the root element"},
      {"TextBeforeRoot", "junk" + Valid(), k1001, "text outside the root element"},
      {"CdataEndInText", Doc(kDescriptor + "<Note>a]]>b</Note>"), k1001, "\"]]>\" in text"},
      {"DashesInComment", "<!-- a -- b -->" + Valid(), k1001, "\"--\" inside a comment"},
      {"CommentEndingInThreeDashes", Doc(kDescriptor + "<!-- a --->"), k1001,
       "\"--\" inside a comment"},
      {"CdataOutsideRoot", Valid() + "<![CDATA[x]]>", k1001, "CDATA section outside"},
      {"LessThanInAttribute",
       Root("<ns2:Trigger a=\"<\" xmlns:ns2=\"" + kNs + "\">", "</ns2:Trigger>"), k1001,
       "'<' in an attribute value"},
      {"DuplicateAttribute",
       Root("<ns2:Trigger xmlns:ns2=\"" + kNs + "\" xmlns:ns2=\"urn:x\">", "</ns2:Trigger>"), k1001,
       "appears twice"},
      {"DeclarationNotAtStart", " <?xml version=\"1.0\"?>" + Valid(), k1001,
       "only at the very start"},
      {"UnterminatedComment", Valid() + "<!-- x", k1001, "unterminated comment"},
      // TRIGGER_INVALID: root and namespace.
      {"WrongRoot", Root("<ns2:Delivery xmlns:ns2=\"" + kNs + "\">", "</ns2:Delivery>"), k1002,
       "ns2:Delivery, not Trigger"},
      {"WrongNamespace",
       Root("<ns2:Trigger xmlns:ns2=\"http://example.com/other\">", "</ns2:Trigger>"), k1002,
       "namespace \"http://example.com/other\""},
      {"NoNamespace", Root("<Trigger>", "</Trigger>"), k1002, "no namespace"},
      {"EmptyDefaultNamespace", Root("<Trigger xmlns=\"\">", "</Trigger>"), k1002, "no namespace"},
      {"UndeclaredPrefix", Root("<ns2:Trigger>", "</ns2:Trigger>"), k1002, "not declared"},
      {"WrongDefaultNamespace", Root("<Trigger xmlns=\"urn:x\">", "</Trigger>"), k1002,
       "namespace \"urn:x\""},
      // TRIGGER_INVALID: required elements.
      {"MissingFileDescriptor", "<ns2:Trigger xmlns:ns2=\"" + kNs + "\"/>", k1002,
       "FileDescriptor is missing"},
      {"MissingFileName", Doc(sz + se + re), k1002, "FileName is missing"},
      {"MissingSizeInBytes", Doc(fn + se + re), k1002, "SizeInBytes is missing"},
      {"MissingSender", Doc(fn + sz + re), k1002, "Sender is missing"},
      {"MissingRecipients", Doc(fn + sz + se), k1002, "Recipients is missing"},
      {"EmptyFileName", WithFileName(" \n "), k1002, "FileName is empty"},
      {"EmptySender", Doc(fn + sz + "<Sender/>" + re), k1002, "Sender is empty"},
      {"EmptyRecipients", Doc(fn + sz + se + "<Recipients></Recipients>"), k1002,
       "Recipients number 1 is empty"},
      {"SecondRecipientsEmpty", Doc(kDescriptor + "<Recipients> </Recipients>"), k1002,
       "Recipients number 2 is empty"},
      {"ForeignFileNameOnly",
       Doc("<x:FileName xmlns:x=\"urn:x\">x.csv</x:FileName>" + sz + se + re), k1002,
       "FileName is missing"},
      {"DuplicateFileName", Doc(fn + kDescriptor), k1002, "FileName appears more than once"},
      {"DuplicateInfRef",
       Doc(kDescriptor,
           "<FileContentDescriptor><SFTPDynamicRoutingInfo><InfRef>a</InfRef>"
           "<InfRef>b</InfRef></SFTPDynamicRoutingInfo></FileContentDescriptor>"),
       k1002, "InfRef appears more than once"},
      {"ElementInValue", WithFileName("<b>x</b>"), k1002, "FileName must hold text"},
      // TRIGGER_INVALID: values.
      {"SizeEmpty", WithSize(""), k1002, "SizeInBytes is empty"},
      {"SizeNegative", WithSize("-1"), k1002, "SizeInBytes \"-1\" is not a whole number"},
      {"SizeFraction", WithSize("1.5"), k1002, "SizeInBytes \"1.5\" is not a whole number"},
      {"SizeLetters", WithSize("12a"), k1002, "SizeInBytes \"12a\" is not a whole number"},
      {"SizePlus", WithSize("+5"), k1002, "is not a whole number"},
      {"SizeHex", WithSize("0x10"), k1002, "is not a whole number"},
      {"SizeInnerSpace", WithSize("1 000"), k1002, "is not a whole number"},
      {"SizeArabicIndicDigit", WithSize("\xD9\xA1"), k1002, "is not a whole number"},
      {"SizeTooLarge", WithSize("99999999999999999999999"), k1002, "too large"},
      {"SizeUint64Max+1", WithSize("18446744073709551616"), k1002, "too large"},
      {"SendersFileIdTooLong",
       Doc(kDescriptor + "<SendersFileId>" + std::string(256, 'a') + "</SendersFileId>"), k1002,
       "SendersFileId is 256 characters"},
      {"Sha256TooShort", Doc(kDescriptor + "<Sha256>" + std::string(63, 'a') + "</Sha256>"), k1002,
       "Sha256"},
      {"Sha256TooLong", Doc(kDescriptor + "<Sha256>" + std::string(65, 'a') + "</Sha256>"), k1002,
       "not 64 hexadecimal digits"},
      {"Sha256NotHex", Doc(kDescriptor + "<Sha256>" + std::string(63, 'a') + "g</Sha256>"), k1002,
       "not 64 hexadecimal digits"},
      {"Sha256Empty", Doc(kDescriptor + "<Sha256/>"), k1002, "Sha256 \"\" is not 64"},
  };
}

class TriggerRejection : public ::testing::TestWithParam<Case> {};

TEST_P(TriggerRejection, HasItsCodeAndSaysWhy) {
  const Case& c = GetParam();
  Trigger trigger;
  Rejection why;
  ASSERT_FALSE(ParseTrigger(c.xml, &trigger, &why)) << c.xml;
  EXPECT_EQ(static_cast<int>(why.code), static_cast<int>(c.code)) << why.description;
  EXPECT_NE(why.description.find(c.says), std::string::npos) << why.description;
}

std::string CaseName(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.name;
  for (char& ch : name) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return name;
}

INSTANTIATE_TEST_SUITE_P(Triggers, TriggerRejection, ::testing::ValuesIn(Cases()), CaseName);

}  // namespace
}  // namespace fordeler
