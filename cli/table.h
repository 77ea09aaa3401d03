// Table: the plain-text tables of the `fordeler` commands. Columns are sized to their contents
// and then, while the table is wider than the width given (80 for the operator's terminal), the
// widest flexible column gives up a character; a cell too long for its column is cut and ends in
// "…". Widths count UTF-8 code points. A row may carry notes: indented lines under it (e.g. a
// route's sender and recipients, why it is late), wrapped at the width, never cut. With colour, the
// header is bold and the cells marked `alert` red (callers colour only when stdout is a terminal).
// Cells and notes are shown as ShowableText (core/names.h): a file name cannot move the cursor,
// colour the screen or break a row.
// Not thread-safe.
#pragma once

#include <cstddef>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace fordeler::cli {

struct Column {
  std::string header;
  bool right = false;     // right-aligned (numbers)
  bool flexible = false;  // may be narrowed to fit
  // What tells the row apart (a route id): when narrowed, the whole value is given in a line of
  // its own under the row, "<HEADER> <value>", so that similar ids can still be told apart.
  bool names_the_row = false;
};

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // REQUIRES: cells.size() == the number of columns.
  void AddRow(std::vector<std::string> cells, std::vector<bool> alert = {});
  void AddNote(std::string line);  // under the last row added
  bool empty() const { return rows_.empty(); }

  void Render(std::ostream& out, size_t width, bool color) const;

 private:
  struct Row {
    std::vector<std::string> cells;
    std::vector<bool> alert;
    std::vector<std::string> notes;
  };
  std::vector<size_t> Widths(size_t width) const;

  std::vector<Column> columns_;
  std::vector<Row> rows_;
};

// Number of UTF-8 code points in `s` (what a terminal shows as its width, near enough).
size_t DisplayWidth(std::string_view s);
// `s` cut to `width` code points, the last one "…" when cut.
std::string Fit(std::string_view s, size_t width);
// `s` broken at spaces into lines of at most `first` code points for the first line and `rest`
// for the others (0 counts as 1); a word longer than a line is broken where the line ends.
std::vector<std::string> Wrap(std::string_view s, size_t first, size_t rest);

}  // namespace fordeler::cli
