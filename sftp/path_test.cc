#include "sftp/path.h"

#include <gtest/gtest.h>

#include <string>

namespace fordeler {
namespace {

std::string Norm(std::string_view p) {
  Result<VirtualPath> r = NormalizePath(p);
  if (!r.ok())
    return "error:" +
           std::string(r.status().code() == Status::Code::kNotFound ? "notfound" : "invalid");
  return r->ToString();
}

TEST(PrintableName, EscapesWhatIsNotPrintableUtf8) {
  EXPECT_EQ(PrintableName("økonomi_æøå.csv"), "økonomi_æøå.csv");
  EXPECT_EQ(PrintableName("bad\xff\xfe.csv"), "bad\\xff\\xfe.csv");
  EXPECT_EQ(PrintableName("a\nb\x1b[31m"), "a\\x0ab\\x1b[31m");
  EXPECT_EQ(PrintableName("\xc0\xaf"), "\\xc0\\xaf");  // overlong '/'
  EXPECT_EQ(PrintableName("back\\slash"), "back\\x5cslash");
  EXPECT_TRUE(IsValidUtf8(PrintableName("\xed\xa0\x80\xf4\x90\x80\x80")));
}

TEST(NormalizePath, SpellingsOfTheSameFile) {
  for (const char* p : {"OUT/x", "/OUT/x", "/OUT/./x", "//OUT//x", "./OUT/x", "OUT/x/",
                        "/IN/../OUT/x", "/OUT/y/../x", "OUT/././x"}) {
    EXPECT_EQ(Norm(p), "/OUT/x") << p;
  }
}

TEST(NormalizePath, FoldersAndRoot) {
  for (const char* p : {"", ".", "/", "//", "/.", "..", "/..", "../..", "/IN/..", "OUT/.."}) {
    EXPECT_EQ(Norm(p), "/") << p;
  }
  EXPECT_EQ(Norm("IN"), "/IN");
  EXPECT_EQ(Norm("/OUT/"), "/OUT");
  EXPECT_EQ(Norm("OUT/x/.."), "/OUT");
}

TEST(NormalizePath, DotDotIsClampedAtRoot) {
  EXPECT_EQ(Norm("../../../OUT/x"), "/OUT/x");
  EXPECT_EQ(Norm("/../other/OUT/x"), "error:notfound");
  EXPECT_EQ(Norm("../other/OUT/x"), "error:notfound");
  EXPECT_EQ(Norm("/OUT/../../../../etc/passwd"), "error:notfound");
  EXPECT_EQ(Norm("/OUT/../../../../IN/x"), "/IN/x");
}

TEST(NormalizePath, NothingElseExists) {
  for (const char* p : {"/etc", "/etc/passwd", "/OUT/a/b", "/IN/a/b/c", "/out/x", "/accounts",
                        "OUT/x/y", "/OUTx/y"}) {
    EXPECT_EQ(Norm(p), "error:notfound") << p;
  }
}

TEST(NormalizePath, DeepPathsThatComeBack) {
  EXPECT_EQ(Norm("/OUT/a/b/c/d/e/../../../../../x"), "/OUT/x");
  EXPECT_EQ(Norm("/OUT/a/b/c/d/e/../../../../x"), "error:notfound");
  EXPECT_EQ(Norm("/a/b/c/d/../../../../IN"), "/IN");
  EXPECT_EQ(Norm("/OUT/a/b/c/d/../../.."), "/OUT/a");
  std::string deep;
  for (int i = 0; i < 10000; ++i) deep += "/d";
  EXPECT_EQ(Norm(deep), "error:notfound");
  for (int i = 0; i < 10000; ++i) deep += "/..";
  EXPECT_EQ(Norm(deep + "/OUT/z"), "/OUT/z");
}

TEST(NormalizePath, NulIsInvalid) {
  EXPECT_EQ(Norm(std::string_view("/OUT/x\0y", 8)), "error:invalid");
  EXPECT_EQ(Norm(std::string_view("\0", 1)), "error:invalid");
}

TEST(NormalizePath, ControlCharactersAreLeftToTheNameRules) {
  EXPECT_EQ(Norm("/OUT/a\nb"), "/OUT/a\nb");
  EXPECT_FALSE(IsValidOutName("a\nb"));
}

TEST(IsValidUtf8, AcceptsAndRejects) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xc3\xa6\xc3\xb8\xc3\xa5"));  // æøå
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac"));              // €
  EXPECT_TRUE(IsValidUtf8("\xf0\x9f\x98\x80"));          // U+1F600
  EXPECT_TRUE(IsValidUtf8("\xf4\x8f\xbf\xbf"));          // U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));                 // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xc1\xbf"));                 // overlong
  EXPECT_FALSE(IsValidUtf8("\xe0\x80\xaf"));             // overlong 3-byte
  EXPECT_FALSE(IsValidUtf8("\xf0\x80\x80\xaf"));         // overlong 4-byte
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));             // surrogate U+D800
  EXPECT_FALSE(IsValidUtf8("\xed\xbf\xbf"));             // surrogate U+DFFF
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));         // above U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xf5\x80\x80\x80"));
  EXPECT_FALSE(IsValidUtf8("\x80"));      // lone continuation
  EXPECT_FALSE(IsValidUtf8("\xc3"));      // truncated
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));  // truncated
  EXPECT_FALSE(IsValidUtf8("\xc3\x28"));  // bad continuation
  EXPECT_FALSE(IsValidUtf8("\xff"));
}

TEST(IsValidName, ContractRules) {
  EXPECT_TRUE(IsValidName("oekonomi_2026-11-22.csv"));
  EXPECT_TRUE(IsValidName("\xc3\x98konomi_\xc3\xa6\xc3\xb8\xc3\xa5.csv"));  // Økonomi_æøå.csv
  EXPECT_TRUE(IsValidName("with space"));
  EXPECT_TRUE(IsValidName("a.b.c"));
  EXPECT_FALSE(IsValidName(""));
  EXPECT_FALSE(IsValidName("."));
  EXPECT_FALSE(IsValidName(".."));
  EXPECT_FALSE(IsValidName(".hidden"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(std::string_view("a\0b", 3)));
  EXPECT_FALSE(IsValidName("tab\there"));
  EXPECT_FALSE(IsValidName("del\x7f"));
  EXPECT_FALSE(IsValidName("c1\xc2\x85"));   // NEL, a C1 control
  EXPECT_TRUE(IsValidName("nb\xc2\xa0sp"));  // U+00A0 is no control
  EXPECT_FALSE(IsValidName("bad\xc0\xaf"));
  EXPECT_FALSE(IsValidName("sur\xed\xa0\x80"));
}

// Every C0 control, DEL and every C1 control (U+0080..U+009F, encoded C2 80..C2 9F) is refused,
// the first and last of each range included; the characters just outside them are not.
TEST(IsValidName, EveryControlCharacterIsRefused) {
  for (int b = 0x01; b <= 0x1F; ++b) {
    EXPECT_FALSE(IsValidName("a" + std::string(1, static_cast<char>(b)) + "b")) << b;
  }
  EXPECT_FALSE(IsValidName("a\177b"));  // DEL
  EXPECT_TRUE(IsValidName("a b"));      // 0x20
  EXPECT_TRUE(IsValidName("a~b"));      // 0x7E
  for (int b = 0x80; b <= 0x9F; ++b) {
    EXPECT_FALSE(IsValidName("a\xc2" + std::string(1, static_cast<char>(b)) + "b")) << b;
  }
  EXPECT_TRUE(IsValidName("a\302\240b"));  // U+00A0
}

// A trigger names the file, and the metadata tells recipients its name, in XML text: white
// space at either end is trimmed by XML readers (xmltodict strips any that Python's str.strip()
// knows), and U+FFFE and U+FFFF are no XML characters. Such names could never be sent.
TEST(IsValidName, NamesThatXmlCannotCarryAreRefused) {
  for (const char* space : {" ", "\xc2\xa0", "\xe1\x9a\x80", "\xe2\x80\x80", "\xe2\x80\x8a",
                            "\xe2\x80\xa8", "\xe2\x80\xaf", "\xe3\x80\x80"}) {
    std::string s = space;
    EXPECT_FALSE(IsValidName(s + "lead.csv")) << s;
    EXPECT_FALSE(IsValidName("trail.csv" + s)) << s;
    EXPECT_FALSE(IsValidName(s)) << s;
    EXPECT_TRUE(IsValidName("in" + s + "side.csv")) << s;
    EXPECT_FALSE(IsValidOutName("trail" + s + ".trigger")) << s;
  }
  EXPECT_TRUE(IsValidName("zwsp\xe2\x80\x8b"));      // U+200B is no white space to str.strip()
  EXPECT_TRUE(IsValidName("\xef\xbf\xbd.csv"));      // U+FFFD
  EXPECT_FALSE(IsValidName("a\xef\xbf\xbe.csv"));    // U+FFFE
  EXPECT_FALSE(IsValidName("a\xef\xbf\xbf.csv"));    // U+FFFF
  EXPECT_TRUE(IsValidName("\xf0\x9f\x98\x80.csv"));  // U+1F600, four bytes
}

TEST(IsValidName, LengthLimitIsInBytes) {
  EXPECT_TRUE(IsValidName(std::string(243, 'a')));
  EXPECT_FALSE(IsValidName(std::string(244, 'a')));
  std::string danish;
  while (danish.size() + 2 <= 242) danish += "\xc3\xa6";  // 121 × æ = 242 bytes
  EXPECT_TRUE(IsValidName(danish + "x"));
  EXPECT_FALSE(IsValidName(danish + "\xc3\xa6"));  // 244 bytes
}

TEST(IsValidOutName, NameOrNameDotTrigger) {
  EXPECT_TRUE(IsValidOutName("data.csv"));
  EXPECT_TRUE(IsValidOutName("data.csv.trigger"));
  EXPECT_TRUE(IsValidOutName(std::string(243, 'a') + ".trigger"));
  EXPECT_FALSE(IsValidOutName(std::string(244, 'a') + ".trigger"));
  EXPECT_FALSE(IsValidOutName(".trigger"));
  EXPECT_FALSE(IsValidOutName(".x.trigger"));
  EXPECT_TRUE(IsTriggerName("x.trigger"));
  EXPECT_FALSE(IsTriggerName(".trigger"));
  EXPECT_FALSE(IsTriggerName("x.trigge"));
}

TEST(IsReachableName, WhatExistingFilesMayBeCalled) {
  EXPECT_TRUE(IsReachableName("x.csv.0f8e4c2a-1111-4222-8333-444455556666.metadata"));
  EXPECT_TRUE(IsReachableName(std::string(255, 'a')));
  EXPECT_FALSE(IsReachableName(std::string(256, 'a')));
  EXPECT_FALSE(IsReachableName(".tmp"));
  EXPECT_FALSE(IsReachableName(""));
}

}  // namespace
}  // namespace fordeler
