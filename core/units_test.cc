#include "core/units.h"

#include <gtest/gtest.h>

#include "core/sha256.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;

TEST(ParseDuration, AcceptsUnitsAndCompounds) {
  EXPECT_EQ(*ParseDuration("60s"), milliseconds(60'000));
  EXPECT_EQ(*ParseDuration("30d"), milliseconds(30LL * 86'400'000));
  EXPECT_EQ(*ParseDuration("1h30m"), milliseconds(5'400'000));
  EXPECT_EQ(*ParseDuration("250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration(" 2w "), milliseconds(2LL * 604'800'000));
  // Spaces between the groups and before a unit, as sizes allow ("512 MiB").
  EXPECT_EQ(*ParseDuration("1h 30m"), milliseconds(5'400'000));
  EXPECT_EQ(*ParseDuration("10 m"), milliseconds(600'000));
}

// Each refusal says what is wrong, not only that something is.
TEST(ParseDuration, SaysWhyItRefuses) {
  auto why = [](const char* text) { return ParseDuration(text).status().message(); };
  EXPECT_NE(why("10 minutes").find("unknown unit \"minutes\" (units: ms, s, m, h, d, w)"),
            std::string::npos);
  EXPECT_NE(why("1.5h").find("a fraction is not allowed"), std::string::npos);
  EXPECT_NE(why("60").find("missing unit"), std::string::npos);
  EXPECT_NE(why("99999999999999999999d").find("too long"), std::string::npos);
  EXPECT_NE(why("h").find("expected a number"), std::string::npos);
  for (const char* slip : {"1h1h", "30m1h", "1m 1m", "5s100ms1s"}) {
    EXPECT_NE(why(slip).find("each unit once, from the largest to the smallest"), std::string::npos)
        << slip;
  }
  EXPECT_EQ(*ParseDuration("1d2h3m4s5ms"), milliseconds(93'784'005));
}

TEST(ParseDuration, RefusesWhatIsNotADuration) {
  for (const char* bad : {"", "60", "s", "10 parsecs", "1x", "-5s", "99999999999999999999d"}) {
    auto r = ParseDuration(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("bad duration"), std::string::npos);
    }
  }
}

TEST(ParseSize, AcceptsBinaryAndDecimalUnits) {
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("10GiB"), 10ULL << 30);
  EXPECT_EQ(*ParseSize("512 KiB"), 512ULL << 10);
  EXPECT_EQ(*ParseSize("2MB"), 2'000'000u);
  EXPECT_EQ(*ParseSize("7B"), 7u);
}

TEST(ParseSize, RefusesGarbageAndOverflow) {
  for (const char* bad : {"", "GiB", "10 GiBs", "1.5GiB", "99999999999TiB", "-1"}) {
    EXPECT_FALSE(ParseSize(bad).ok()) << bad;
  }
  auto why = [](const char* text) { return ParseSize(text).status().message(); };
  EXPECT_NE(why("1.5GiB").find("a fraction is not allowed"), std::string::npos);
  EXPECT_NE(why("99999999999999999999").find("too large"), std::string::npos);
  EXPECT_NE(why("10 GiBs").find("unknown unit \"GiBs\""), std::string::npos);
}

TEST(Format, RoundTrips) {
  EXPECT_EQ(FormatDuration(milliseconds(5'400'000)), "1h30m");
  EXPECT_EQ(FormatSize(10ULL << 30), "10GiB");
  EXPECT_EQ(FormatSize(1000), "1000");
}

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(ToHex(Sha256::Of("")),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256 h;
  h.Update("ab", 2);
  h.Update("c", 1);
  EXPECT_EQ(ToHex(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  // Finish leaves it ready for the next digest (EventHash keeps one per thread).
  h.Update("abc", 3);
  EXPECT_EQ(ToHex(h.Finish()), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(h.Finish()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(ToHex(nullptr, 0), "");
}

}  // namespace
}  // namespace fordeler
