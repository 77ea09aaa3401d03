#include "cli/table.h"

#include <algorithm>

#include "core/names.h"

namespace fordeler::cli {
namespace {

constexpr std::string_view kBold = "\033[1m";
constexpr std::string_view kRed = "\033[31m";
constexpr std::string_view kReset = "\033[0m";
constexpr size_t kGap = 2;  // spaces between columns
constexpr size_t kMinFlexible = 6;

bool IsContinuation(char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; }

void Pad(std::ostream& out, size_t n) {
  for (size_t i = 0; i < n; ++i) out << ' ';
}

// The length in bytes of the first `points` code points of `s`.
size_t PrefixBytes(std::string_view s, size_t points) {
  size_t i = 0, seen = 0;
  for (; i < s.size(); ++i) {
    if (!IsContinuation(s[i]) && seen++ == points) break;
  }
  return i;
}

}  // namespace

size_t DisplayWidth(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return !IsContinuation(c); }));
}

std::string Fit(std::string_view s, size_t width) {
  if (DisplayWidth(s) <= width) return std::string(s);
  if (width == 0) return "";
  return std::string(s.substr(0, PrefixBytes(s, width - 1))) + "…";
}

std::vector<std::string> Wrap(std::string_view s, size_t first, size_t rest) {
  std::vector<std::string> lines(1);
  auto room = [&] { return std::max<size_t>(lines.size() == 1 ? first : rest, 1); };
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = std::min(s.find(' ', start), s.size());
    std::string_view word = s.substr(start, end - start);
    start = end + 1;
    if (word.empty()) continue;
    std::string& line = lines.back();
    size_t used = DisplayWidth(line);
    if (used > 0 && used + 1 + DisplayWidth(word) <= room()) {
      line += ' ';
      line += word;
      continue;
    }
    if (used > 0) lines.emplace_back();
    // A word longer than a line (a file name, a key) is broken, not cut: nothing is lost.
    while (DisplayWidth(word) > room()) {
      size_t bytes = PrefixBytes(word, room());
      lines.back() = std::string(word.substr(0, bytes));
      word.remove_prefix(bytes);
      lines.emplace_back();
    }
    lines.back() = std::string(word);
  }
  return lines;
}

void Table::AddRow(std::vector<std::string> cells, std::vector<bool> alert) {
  cells.resize(columns_.size());
  for (std::string& cell : cells) cell = ShowableText(cell);
  alert.resize(columns_.size(), false);
  rows_.push_back(Row{std::move(cells), std::move(alert), {}});
}

void Table::AddNote(std::string line) {
  if (!rows_.empty()) rows_.back().notes.push_back(ShowableText(line));
}

std::vector<size_t> Table::Widths(size_t width) const {
  std::vector<size_t> w;
  for (const Column& c : columns_) w.push_back(DisplayWidth(c.header));
  for (const Row& r : rows_) {
    for (size_t i = 0; i < w.size(); ++i) w[i] = std::max(w[i], DisplayWidth(r.cells[i]));
  }
  auto total = [&] {
    size_t sum = w.empty() ? 0 : kGap * (w.size() - 1);
    for (size_t x : w) sum += x;
    return sum;
  };
  while (total() > width) {
    size_t widest = w.size();
    for (size_t i = 0; i < w.size(); ++i) {
      if (columns_[i].flexible && w[i] > kMinFlexible && (widest == w.size() || w[i] > w[widest])) {
        widest = i;
      }
    }
    if (widest == w.size()) break;  // nothing left to narrow
    --w[widest];
  }
  return w;
}

void Table::Render(std::ostream& out, size_t width, bool color) const {
  std::vector<size_t> w = Widths(width);
  auto line = [&](const std::vector<std::string>& cells, const std::vector<bool>* alert,
                  bool header) {
    for (size_t i = 0; i < w.size(); ++i) {
      std::string cell = Fit(cells[i], w[i]);
      size_t pad = w[i] - DisplayWidth(cell);
      bool last = i + 1 == w.size();
      if (columns_[i].right) Pad(out, pad);
      bool red = color && alert != nullptr && (*alert)[i];
      if (header && color) out << kBold;
      if (red) out << kRed;
      out << cell;
      if ((header && color) || red) out << kReset;
      if (!columns_[i].right && !last) Pad(out, pad);
      if (!last) Pad(out, kGap);
    }
    out << "\n";
  };
  std::vector<std::string> headers;
  for (const Column& c : columns_) headers.push_back(c.header);
  line(headers, nullptr, true);
  for (const Row& r : rows_) {
    line(r.cells, &r.alert, false);
    std::vector<std::string> notes;
    for (size_t i = 0; i < w.size(); ++i) {
      if (columns_[i].names_the_row && DisplayWidth(r.cells[i]) > w[i]) {
        notes.push_back(columns_[i].header + " " + r.cells[i]);
      }
    }
    notes.insert(notes.end(), r.notes.begin(), r.notes.end());
    for (const std::string& note : notes) {
      std::vector<std::string> lines = Wrap(note, width - 2, width - 4);
      for (size_t i = 0; i < lines.size(); ++i) out << (i == 0 ? "  " : "    ") << lines[i] << "\n";
    }
  }
}

}  // namespace fordeler::cli
