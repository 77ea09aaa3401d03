#include "daemon/log_format.h"

#include <gtest/gtest.h>

#include <string>

namespace fordeler {
namespace {

std::string Format(std::string_view message, bool with_time = false) {
  spdlog::details::log_msg msg("fordelerd", spdlog::level::info, message);
  spdlog::memory_buf_t out;
  MakeLogFormatter(with_time)->format(msg, out);
  return std::string(out.data(), out.size());
}

TEST(LogFormat, OneEventIsOneLineWhateverTheMessageHolds) {
  EXPECT_EQ(Format("event=x name=\"a\\x5cb\" ok"), "info event=x name=\"a\\x5cb\" ok\n");
  EXPECT_EQ(Format("event=x user=a\nerror event=login account=flis"),
            "info event=x user=a\\x0aerror event=login account=flis\n");
  EXPECT_EQ(Format("reason=\"\x1b[2J\xc2\x9b\xff\r\""),
            "info reason=\"\\x1b[2J\\xc2\\x9b\\xff\\x0d\"\n");
  EXPECT_EQ(Format("name=\"økonomi.csv\""), "info name=\"økonomi.csv\"\n");
  std::string timed = Format("event=ready", true);
  EXPECT_EQ(timed.size(), std::string("2026-12-07T00:00:00.000Z info event=ready\n").size())
      << timed;
  EXPECT_EQ(timed.substr(23), "Z info event=ready\n");
}

}  // namespace
}  // namespace fordeler
