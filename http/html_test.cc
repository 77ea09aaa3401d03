#include "http/html.h"

#include <gtest/gtest.h>

namespace fordeler {
namespace {

TEST(HtmlTest, EscapesEverythingThatCouldOpenMarkup) {
  EXPECT_EQ(HtmlEscape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
}

TEST(HtmlTest, StateBadgeShowsTheWordBesideTheColour) {
  std::string badge = StateBadge("LATE");
  EXPECT_NE(badge.find("state-late"), std::string::npos);
  EXPECT_NE(badge.find(">LATE</span>"), std::string::npos);
}

TEST(HtmlTest, ChartBarsCarryDayAndCount) {
  std::string svg = DeliveriesChart({{"2026-11-22", 0}, {"2026-11-23", 3}});
  EXPECT_NE(svg.find("data-day=\"2026-11-22\" data-count=\"0\""), std::string::npos) << svg;
  EXPECT_NE(svg.find("data-day=\"2026-11-23\" data-count=\"3\""), std::string::npos) << svg;
  EXPECT_EQ(svg.find("<script"), std::string::npos);
}

TEST(HtmlTest, PageHasNoScriptsOrExternalResources) {
  std::string page = HtmlPage("t<", "<p>x</p>");
  EXPECT_NE(page.find("<title>t&lt;</title>"), std::string::npos);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
}

}  // namespace
}  // namespace fordeler
