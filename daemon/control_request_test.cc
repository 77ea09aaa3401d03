#include "daemon/control_request.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

TEST(ControlRequestTest, TakesTheStringFieldsAndIgnoresOthers) {
  auto r = ParseControlRequest(
      R"({"command": "recall", "uuid": "u", "recipient": "flis", "by": 7, "x": [1]})");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->command, "recall");
  EXPECT_EQ(r->uuid, "u");
  EXPECT_EQ(r->recipient, "flis");
  auto bare = ParseControlRequest("{}");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->command, "");
  EXPECT_EQ(bare->recipient, "");
}

// nlohmann's value() throws on a member of another type; the server's thread must never see that.
TEST(ControlRequestTest, RefusesWhatIsNotAnObjectOfStrings) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"command": 5, "uuid": "u"})", "\"command\" is not a string"},
      {R"({"command": "retry", "uuid": ["u"]})", "\"uuid\" is not a string"},
      {R"({"command": "redeliver", "uuid": "u", "recipient": {}})",
       "\"recipient\" is not a string"},
      {R"({"command": null})", "\"command\" is not a string"},
      {R"(["retry"])", "not a JSON object"},
      {R"("retry")", "not a JSON object"},
      {"retry", "not a JSON object"},
      {"", "not a JSON object"},
      {R"({"command": "retry")", "not a JSON object"},
      {"{\"command\": \"\xff\"}", "not a JSON object"},  // not UTF-8
  };
  for (const auto& [line, why] : cases) {
    auto r = ParseControlRequest(line);
    ASSERT_FALSE(r.ok()) << line;
    EXPECT_EQ(r.status().code(), Status::Code::kInvalidArgument) << line;
    EXPECT_EQ(r.status().message(), why) << line;
  }
}

}  // namespace
}  // namespace fordeler
