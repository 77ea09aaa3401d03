// TableReader: typed, validated access to one TOML table of a configuration file.
//
// Every getter reports what is wrong (wrong type, missing required key, bad duration or size) to
// the shared ErrorList, with the file and line of the offending value, and never throws. A getter
// returns false and leaves *out untouched when the key is absent or its value is refused, so the
// defaults of config.h survive. Messages start with the table's label, e.g. `[server]` or
// `account "kmd-oekonomi"`. Not thread-safe; one reader per table, used during one load.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "config/config.h"

namespace fordeler {

// Every problem found during one load, in the order found.
class ErrorList {
 public:
  void Add(const std::string& file, int line, std::string message) {
    errors_.push_back(ConfigError{SourceLocation{file, line}, std::move(message)});
  }
  void Add(ConfigError error) { errors_.push_back(std::move(error)); }
  bool empty() const { return errors_.empty(); }
  size_t size() const { return errors_.size(); }
  std::vector<ConfigError> Take() { return std::move(errors_); }

 private:
  std::vector<ConfigError> errors_;
};

// The line a TOML node or key starts on (1-based; 0 when toml++ does not know).
int LineOf(const toml::node& node);
int LineOf(const toml::key& key);

// "a string", "an integer", ... for messages.
std::string TypeName(const toml::node& node);

// `relative` resolved against the directory of `base_file` (absolute), lexically normalised.
std::string ResolvePath(const std::string& base_file, const std::string& relative);

// The known key within edit distance 2 of `key`, or "" when there is none.
std::string ClosestKey(std::string_view key, const std::vector<std::string_view>& known);
inline std::string ClosestKey(std::string_view key, std::initializer_list<std::string_view> known) {
  return ClosestKey(key, std::vector<std::string_view>(known));
}

class TableReader {
 public:
  enum Need { kOptional, kRequired };

  // REQUIRES: `table` and `errors` outlive the reader. `file` is the absolute path of the file
  // the table stands in; `label` starts every message ("[server]", "account \"x\"").
  TableReader(const toml::table& table, std::string file, std::string label, ErrorList* errors);

  // Reports every key of the table not in `known`, suggesting the closest known key.
  void CheckKeys(std::initializer_list<std::string_view> known);

  void set_label(std::string label) { label_ = std::move(label); }
  const std::string& file() const { return file_; }
  const std::string& label() const { return label_; }
  ErrorList* errors() const { return errors_; }
  int line() const { return LineOf(table_); }
  bool Has(std::string_view key) const { return table_.contains(key); }
  // The line of the key's value; the table's own line when the key is absent.
  int Line(std::string_view key) const;
  SourceLocation Where(std::string_view key) const { return {file_, Line(key)}; }

  // "<label> <key>: <message>" at the key's line.
  void Error(std::string_view key, const std::string& message);
  // "<label> <message>" at `line`.
  void ErrorAt(int line, const std::string& message);

  bool String(std::string_view key, std::string* out, Need need = kOptional);
  // An integer in [min, max].
  bool Int(std::string_view key, int64_t min, int64_t max, int64_t* out, Need need = kOptional);
  // An array of strings; `lines`, when given, receives the line of each element.
  bool StringArray(std::string_view key, std::vector<std::string>* out,
                   std::vector<int>* lines = nullptr, Need need = kOptional);
  // A duration string (core/units.h) greater than zero.
  bool Duration(std::string_view key, std::chrono::milliseconds* out);
  // A size string (core/units.h); `min` is the smallest acceptable value.
  bool Size(std::string_view key, uint64_t min, uint64_t* out);
  // A non-empty path string, resolved against the directory of this file.
  bool Path(std::string_view key, std::string* out);

 private:
  std::string Prefix() const { return label_.empty() ? "" : label_ + " "; }
  const toml::node* Get(std::string_view key, Need need);
  void WrongType(std::string_view key, const toml::node& node, const char* wanted);

  const toml::table& table_;
  std::string file_;
  std::string label_;
  ErrorList* errors_;
};

}  // namespace fordeler
