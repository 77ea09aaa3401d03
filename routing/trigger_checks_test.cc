#include "routing/trigger_checks.h"

#include <gtest/gtest.h>

#include <string>

namespace fordeler {
namespace {

Trigger Named(const std::string& file_name, uint64_t size = 5) {
  Trigger t;
  t.file_name = file_name;
  t.size_in_bytes = size;
  return t;
}

TEST(CheckFileName, TheTriggersOwnValidNamePasses) {
  EXPECT_FALSE(CheckFileName(Named("a.csv"), "a.csv"));
  EXPECT_FALSE(CheckFileName(Named("økonomi 2026.csv"), "økonomi 2026.csv"));
}

TEST(CheckFileName, AnotherNameIsAMismatch) {
  auto why = CheckFileName(Named("other.csv"), "a.csv");
  ASSERT_TRUE(why);
  EXPECT_EQ(why->code, ErrorCode::kFilenameMismatch);
  EXPECT_EQ(why->description, "FileName \"other.csv\" is not the trigger's own name \"a.csv\"");
}

// The same name twice in "is not the trigger's own name" told a sender nothing: an invalid name
// says what is wrong with it.
TEST(CheckFileName, AnInvalidOwnNameSaysWhy) {
  const std::string longest(243, 'a');
  EXPECT_FALSE(CheckFileName(Named(longest), longest));
  struct Case {
    std::string name;
    std::string problem;
  };
  for (const Case& c :
       {Case{longest + "a", "it is over 243 bytes long"},
        Case{"OUT/a.csv", "it holds '/' (a name, not a path)"},
        Case{".hidden", "it begins with '.'"}, Case{"a\tb.csv", "it holds a control character"},
        Case{"a.csv ", "it begins or ends with white space"}}) {
    auto why = CheckFileName(Named(c.name), c.name);
    ASSERT_TRUE(why) << c.name;
    EXPECT_EQ(why->code, ErrorCode::kFilenameMismatch);
    EXPECT_NE(why->description.find("is not a valid name: " + c.problem), std::string::npos)
        << why->description;
    EXPECT_EQ(why->description.find("own name"), std::string::npos) << why->description;
  }
}

TEST(CheckAnnouncedSize, UpToTheLimitPassesAndBeyondIsTooLarge) {
  EXPECT_FALSE(CheckAnnouncedSize(Named("a.csv", 1024), 1024));
  auto why = CheckAnnouncedSize(Named("a.csv", 1025), 1024);
  ASSERT_TRUE(why);
  EXPECT_EQ(why->code, ErrorCode::kFileTooLarge);
  EXPECT_EQ(why->description, "SizeInBytes is 1025; max_file_size is 1KiB");
}

}  // namespace
}  // namespace fordeler
