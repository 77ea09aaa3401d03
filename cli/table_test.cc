#include "cli/table.h"

#include <gtest/gtest.h>

#include <sstream>

namespace fordeler::cli {
namespace {

TEST(Table, AlignsColumnsAndNotes) {
  Table t({{"ROUTE", false, true}, {"TODAY", true, false}});
  t.AddRow({"oekonomi-kmd-flis", "12"});
  t.AddNote("kmd → flis");
  t.AddRow({"skole", "3"});
  std::ostringstream out;
  t.Render(out, 80, false);
  EXPECT_EQ(out.str(),
            "ROUTE              TODAY\n"
            "oekonomi-kmd-flis     12\n"
            "  kmd → flis\n"
            "skole                  3\n");
}

TEST(Table, CellsAndNotesCannotCarryControlCharacters) {
  Table t({{"NAME", false, true}, {"N", true, false}});
  t.AddRow({"a\x1b[2J\nb\xc2\x9b\xff", "1"});
  t.AddNote("note\x1b]0;title\x07");
  std::ostringstream out;
  t.Render(out, 80, false);
  EXPECT_EQ(out.str(),
            "NAME                       N\n"
            "a\\x1b[2J\\x0ab\\xc2\\x9b\\xff  1\n"
            "  note\\x1b]0;title\\x07\n");
}

TEST(Table, NarrowsFlexibleColumnsToFitTheWidth) {
  Table t({{"A", false, true}, {"B", false, false}});
  t.AddRow({std::string(50, 'a'), std::string(30, 'b')});
  t.AddNote(std::string(100, 'n'));
  std::ostringstream out;
  t.Render(out, 40, false);
  std::istringstream lines(out.str());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_LE(DisplayWidth(line), 40u) << line;
  }
  EXPECT_NE(out.str().find(std::string(7, 'a') + "…  " + std::string(30, 'b')), std::string::npos)
      << out.str();
}

// A route id cut to fit is given whole under its row: "oekonomi-kmd-f…" could be either of two.
TEST(Table, ACutCellThatNamesTheRowIsGivenWhole) {
  Table t({{"ROUTE", false, true, true}, {"B", false, false}});
  const std::string id = "oekonomi-kmd-flis-and-lis-abcd";  // 30: cut in the row, whole below
  t.AddRow({id, std::string(30, 'b')});
  t.AddNote("the route's note");
  t.AddRow({"short", std::string(30, 'b')});
  std::ostringstream out;
  t.Render(out, 40, false);
  EXPECT_NE(out.str().find("…  " + std::string(30, 'b') + "\n  ROUTE " + id +
                           "\n  the route's note\nshort"),
            std::string::npos)
      << out.str();
  EXPECT_EQ(out.str().find("ROUTE short"), std::string::npos) << out.str();
}

TEST(Table, NotesWrapAndLoseNothing) {
  Table t({{"ROUTE", false, true}});
  t.AddRow({"r"});
  t.AddNote(
      "LATE: The delivery expected at 2026-11-23 06:00 CET has not arrived within the grace "
      "of 2h.");
  std::ostringstream out;
  t.Render(out, 40, false);
  EXPECT_EQ(out.str(),
            "ROUTE\n"
            "r\n"
            "  LATE: The delivery expected at\n"
            "    2026-11-23 06:00 CET has not arrived\n"
            "    within the grace of 2h.\n");
}

TEST(Table, WrapBreaksWordsLongerThanALine) {
  std::vector<std::string> lines = Wrap("IN/" + std::string(10, 'x') + " ØØØØØ", 6, 5);
  EXPECT_EQ(lines, (std::vector<std::string>{"IN/xxx", "xxxxx", "xx", "ØØØØØ"}));
  EXPECT_EQ(Wrap("abcdef", 5, 5), (std::vector<std::string>{"abcde", "f"}));
  EXPECT_EQ(Wrap("ØØØØØØ", 5, 5), (std::vector<std::string>{"ØØØØØ", "Ø"}));
  EXPECT_EQ(Wrap("", 5, 5), std::vector<std::string>{""});
  EXPECT_EQ(Wrap("a  b", 5, 5), std::vector<std::string>{"a b"});
}

TEST(Table, ColourOnlyWhenAsked) {
  Table t({{"N", true, false}});
  t.AddRow({"1"}, {true});
  std::ostringstream plain, color;
  t.Render(plain, 80, false);
  t.Render(color, 80, true);
  EXPECT_EQ(plain.str().find('\033'), std::string::npos);
  EXPECT_NE(color.str().find("\033[1mN\033[0m"), std::string::npos);
  EXPECT_NE(color.str().find("\033[31m1\033[0m"), std::string::npos);
}

TEST(Table, FitCutsAtCharacterBoundaries) {
  EXPECT_EQ(Fit("Økonomi", 10), "Økonomi");
  EXPECT_EQ(Fit("ØØØØØ", 3), "ØØ…");
  EXPECT_EQ(DisplayWidth("æøå"), 3u);
}

}  // namespace
}  // namespace fordeler::cli
