#include "config/toml_reader.h"

#include <algorithm>
#include <filesystem>

#include "core/units.h"

namespace fordeler {
namespace {

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

}  // namespace

int LineOf(const toml::node& node) { return static_cast<int>(node.source().begin.line); }
int LineOf(const toml::key& key) { return static_cast<int>(key.source().begin.line); }

std::string TypeName(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a floating-point number";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::date:
      return "a date";
    case toml::node_type::time:
      return "a time";
    case toml::node_type::date_time:
      return "a date-time";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::table:
      return "a table";
    default:
      return "nothing";
  }
}

std::string ResolvePath(const std::string& base_file, const std::string& relative) {
  std::filesystem::path p(relative);
  if (p.is_relative()) p = std::filesystem::path(base_file).parent_path() / p;
  return p.lexically_normal().string();
}

std::string ClosestKey(std::string_view key, const std::vector<std::string_view>& known) {
  std::string best;
  size_t best_distance = 3;
  for (std::string_view candidate : known) {
    size_t d = EditDistance(key, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = std::string(candidate);
    }
  }
  return best;
}

TableReader::TableReader(const toml::table& table, std::string file, std::string label,
                         ErrorList* errors)
    : table_(table), file_(std::move(file)), label_(std::move(label)), errors_(errors) {}

void TableReader::CheckKeys(std::initializer_list<std::string_view> known) {
  for (const auto& [key, value] : table_) {
    if (std::find(known.begin(), known.end(), key.str()) != known.end()) continue;
    std::string message = Prefix() + "unknown key " + Quote(key.str());
    std::string suggestion = ClosestKey(key.str(), known);
    if (!suggestion.empty()) message += " (did you mean " + Quote(suggestion) + "?)";
    int line = LineOf(key);
    errors_->Add(file_, line > 0 ? line : LineOf(value), message);
  }
}

int TableReader::Line(std::string_view key) const {
  const toml::node* node = table_.get(key);
  return node != nullptr ? LineOf(*node) : line();
}

void TableReader::Error(std::string_view key, const std::string& message) {
  errors_->Add(file_, Line(key), Prefix() + std::string(key) + ": " + message);
}

void TableReader::ErrorAt(int line, const std::string& message) {
  errors_->Add(file_, line, Prefix() + message);
}

const toml::node* TableReader::Get(std::string_view key, Need need) {
  const toml::node* node = table_.get(key);
  if (node == nullptr && need == kRequired) {
    ErrorAt(line(), "missing required key " + Quote(key));
  }
  return node;
}

void TableReader::WrongType(std::string_view key, const toml::node& node, const char* wanted) {
  errors_->Add(file_, LineOf(node),
               Prefix() + std::string(key) + " must be " + wanted + ", not " + TypeName(node));
}

bool TableReader::String(std::string_view key, std::string* out, Need need) {
  const toml::node* node = Get(key, need);
  if (node == nullptr) return false;
  if (!node->is_string()) {
    WrongType(key, *node, "a string");
    return false;
  }
  *out = node->as_string()->get();
  return true;
}

bool TableReader::Int(std::string_view key, int64_t min, int64_t max, int64_t* out, Need need) {
  const toml::node* node = Get(key, need);
  if (node == nullptr) return false;
  if (!node->is_integer()) {
    WrongType(key, *node, "an integer");
    return false;
  }
  int64_t value = node->as_integer()->get();
  if (value < min || value > max) {
    Error(key, std::to_string(value) + " is out of range " + std::to_string(min) + ".." +
                   std::to_string(max));
    return false;
  }
  *out = value;
  return true;
}

bool TableReader::StringArray(std::string_view key, std::vector<std::string>* out,
                              std::vector<int>* lines, Need need) {
  const toml::node* node = Get(key, need);
  if (node == nullptr) return false;
  if (!node->is_array()) {
    WrongType(key, *node, "an array of strings");
    return false;
  }
  std::vector<std::string> values;
  std::vector<int> value_lines;
  bool ok = true;
  for (const toml::node& element : *node->as_array()) {
    if (!element.is_string()) {
      WrongType(key, element, "an array of strings: an element");
      ok = false;
      continue;
    }
    values.push_back(element.as_string()->get());
    value_lines.push_back(LineOf(element));
  }
  if (!ok) return false;
  *out = std::move(values);
  if (lines != nullptr) *lines = std::move(value_lines);
  return true;
}

bool TableReader::Duration(std::string_view key, std::chrono::milliseconds* out) {
  const toml::node* node = Get(key, kOptional);
  if (node == nullptr) return false;
  if (!node->is_string()) {
    WrongType(key, *node, "a duration string such as \"60s\" or \"30d\"");
    return false;
  }
  auto parsed = ParseDuration(node->as_string()->get());
  if (!parsed.ok()) {
    Error(key, parsed.status().message());
    return false;
  }
  if (parsed->count() <= 0) {
    Error(key, "must be longer than zero");
    return false;
  }
  *out = *parsed;
  return true;
}

bool TableReader::Size(std::string_view key, uint64_t min, uint64_t* out) {
  const toml::node* node = Get(key, kOptional);
  if (node == nullptr) return false;
  Result<uint64_t> parsed = Status::InvalidArgument("bad size: negative");
  if (node->is_integer()) {  // a bare number of bytes
    if (node->as_integer()->get() >= 0) parsed = static_cast<uint64_t>(node->as_integer()->get());
  } else if (node->is_string()) {
    parsed = ParseSize(node->as_string()->get());
  } else {
    WrongType(key, *node, "a size string such as \"10GiB\"");
    return false;
  }
  if (!parsed.ok()) {
    Error(key, parsed.status().message());
    return false;
  }
  if (*parsed < min) {
    Error(key, "must be at least " + FormatSize(min));
    return false;
  }
  *out = *parsed;
  return true;
}

bool TableReader::Path(std::string_view key, std::string* out) {
  std::string text;
  if (!String(key, &text)) return false;
  if (text.empty() || text.find('\0') != std::string::npos) {
    Error(key, "must be a path, not an empty string");
    return false;
  }
  *out = ResolvePath(file_, text);
  return true;
}

}  // namespace fordeler
