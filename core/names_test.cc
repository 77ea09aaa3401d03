#include "core/names.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

TEST(PrintableName, EscapesQuotesAndBidirectionalControls) {
  EXPECT_EQ(PrintableName("a\" size=1 x=\".csv"), "a\\x22 size=1 x=\\x22.csv");
  EXPECT_EQ(PrintableName("\xe2\x80\xaegpj.exe"), "\\xe2\\x80\\xaegpj.exe");  // U+202E
  EXPECT_EQ(PrintableName("\xe2\x81\xa6x"), "\\xe2\\x81\\xa6x");              // U+2066
  EXPECT_EQ(PrintableName("\xc2\x9b"
                          "2J"),
            "\\xc2\\x9b2J");                                           // C1 CSI
  EXPECT_EQ(PrintableName("\xe2\x80\x94 dash"), "\xe2\x80\x94 dash");  // U+2014 stays
}

TEST(ShowableText, EscapesControlsButKeepsQuotesAndBackslashes) {
  EXPECT_EQ(ShowableText("a \"b\" c\\d"), "a \"b\" c\\d");
  EXPECT_EQ(ShowableText("x\x1b[2Jy\n\xc2\x9b\xff"), "x\\x1b[2Jy\\x0a\\xc2\\x9b\\xff");
  EXPECT_EQ(ShowableText("<a>\n<b>\r\n", true), "<a>\n<b>\\x0d\n");
  EXPECT_EQ(ShowableText("æøå"), "æøå");
  EXPECT_TRUE(IsValidUtf8(ShowableText("\xed\xa0\x80\xf4\x90\x80\x80\xc0")));
}

TEST(ReplaceUnshowable, OneReplacementPerCharacterOrStrayByte) {
  EXPECT_EQ(ReplaceUnshowable("a\nb\xc2\x9b"
                              "c\xff\xfe\xe2\x80\xae"
                              "d\"\\ø",
                              "?"),
            "a?b?c???d\"\\ø");
}

TEST(LogValue, PlainWordsStayAndEverythingElseIsQuoted) {
  EXPECT_EQ(LogValue("vendor"), "vendor");
  EXPECT_EQ(LogValue("kommune-ø_1"), "kommune-ø_1");
  EXPECT_EQ(LogValue(""), "\"\"");
  EXPECT_EQ(LogValue("x account=flis"), "\"x account=flis\"");
  EXPECT_EQ(LogValue("x\nevent=login"), "\"x\\x0aevent=login\"");
  EXPECT_EQ(LogValue("a\"b"), "\"a\\x22b\"");
  EXPECT_EQ(LogValue("a\\b"), "\"a\\x5cb\"");
  EXPECT_EQ(LogValue("\xc2\x9b"), "\"\\xc2\\x9b\"");
  EXPECT_EQ(LogValue("\xff"), "\"\\xff\"");
}

}  // namespace
}  // namespace fordeler
