#include "config/entries_parser.h"

#include <algorithm>
#include <limits>

#include "config/authorized_keys.h"

namespace fordeler {
namespace {

constexpr const char* kIdRule =
    "must be 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit";

// Reads the required `id` and relabels the reader with it: `<kind> "<id>"`.
bool ReadId(TableReader& r, const char* kind, std::string* id) {
  if (!r.String("id", id, TableReader::kRequired)) return false;
  if (!IsValidId(*id)) {
    r.Error("id", "\"" + *id + "\" " + kIdRule);
    return false;
  }
  r.set_label(std::string(kind) + " \"" + *id + "\"");
  return true;
}

void ReadAuthority(TableReader& r, std::string* out) {
  if (!r.String("authority", out)) return;
  if (!IsValidAuthority(*out)) {
    r.Error("authority", "\"" + *out + "\" is not a URN such as \"urn:oio:cvr-nr:55133018\"");
  }
}

void ReadInlineKeys(TableReader& r, Account* out) {
  std::vector<std::string> lines;
  std::vector<int> where;
  if (!r.StringArray("keys", &lines, &where)) return;
  for (size_t i = 0; i < lines.size(); ++i) {
    auto key = ParseAuthorizedKeyLine(lines[i], SourceLocation{r.file(), where[i]});
    if (key.ok()) {
      out->keys.push_back(std::move(*key));
    } else {
      r.ErrorAt(where[i], "keys[" + std::to_string(i) + "]: " + key.status().message());
    }
  }
}

void ReadKeyFile(TableReader& r, Account* out) {
  std::string path;
  if (!r.Path("authorized_keys", &path)) return;
  std::vector<ConfigError> errors;
  ReadAuthorizedKeysFile(path, r.Where("authorized_keys"), &out->keys, &errors);
  for (ConfigError& e : errors) {
    if (e.where.file != path) e.message = r.label() + " authorized_keys: " + e.message;
    r.errors()->Add(std::move(e));
  }
}

void ReadQuotas(TableReader& r, Account* out) {
  uint64_t bytes = 0;
  if (r.Size("quota", 0, &bytes)) out->quota = bytes;
  int64_t files = 0;
  if (r.Int("quota_files", 0, std::numeric_limits<int64_t>::max(), &files)) {
    out->quota_files = static_cast<uint64_t>(files);
  }
  if (r.Size("out_quota", 0, &bytes)) out->out_quota = bytes;
}

// A required, non-empty array of strings.
bool ReadList(TableReader& r, std::string_view key, std::vector<std::string>* out,
              std::vector<int>* lines) {
  if (!r.StringArray(key, out, lines, TableReader::kRequired)) return false;
  if (out->empty()) {
    r.Error(key, "must name at least one");
    return false;
  }
  for (size_t i = 0; i < out->size(); ++i) {
    const std::string& item = (*out)[i];
    if (std::find(out->begin(), out->begin() + i, item) != out->begin() + i) {
      r.ErrorAt((*lines)[i], std::string(key) + ": \"" + item + "\" is named twice");
    }
  }
  return true;
}

// `expect` (schedules) and `grace`: when deliveries are expected.
void ReadExpect(TableReader& r, Route* out) {
  std::vector<std::string> specs;
  std::vector<int> lines;
  if (r.StringArray("expect", &specs, &lines)) {
    for (size_t i = 0; i < specs.size(); ++i) {
      auto spec = ParseScheduleSpec(specs[i]);
      if (spec.ok()) {
        out->expect.push_back(std::move(*spec));
      } else {
        r.ErrorAt(lines[i], "expect: " + spec.status().message());
      }
    }
  }
  r.Duration("grace", &out->grace);
  if (r.Has("grace") && !r.Has("expect")) r.Error("grace", "is set but expect is not");
}

}  // namespace

bool IsValidId(std::string_view id) {
  if (id.empty() || id.size() > 64) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(id.front())) return false;
  return std::all_of(id.begin(), id.end(),
                     [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

bool IsValidAuthority(std::string_view authority) {
  return authority.size() > 4 && authority.starts_with("urn:") &&
         authority.find_first_of(" \t\r\n") == std::string_view::npos;
}

bool ReadAccount(TableReader& r, Account* out) {
  out->where = SourceLocation{r.file(), r.line()};
  bool has_id = ReadId(r, "account", &out->id);
  r.CheckKeys({"id", "authority", "it_system", "authorized_keys", "keys", "quota", "quota_files",
               "out_quota"});
  if (!has_id) return false;
  ReadAuthority(r, &out->authority);
  r.String("it_system", &out->it_system);
  ReadKeyFile(r, out);
  ReadInlineKeys(r, out);
  ReadQuotas(r, out);
  return true;
}

bool ReadDataArea(TableReader& r, DataArea* out) {
  out->where = SourceLocation{r.file(), r.line()};
  bool has_id = ReadId(r, "data_area", &out->id);
  r.CheckKeys({"id", "name", "deliver_service", "fetch_service"});
  if (!has_id) return false;
  for (auto [key, field] :
       {std::pair{"name", &out->name}, std::pair{"deliver_service", &out->deliver_service},
        std::pair{"fetch_service", &out->fetch_service}}) {
    if (r.String(key, field, TableReader::kRequired) && field->empty()) {
      r.Error(key, "must not be empty");
    }
  }
  if (!out->deliver_service.empty() && out->deliver_service == out->fetch_service) {
    r.Error("fetch_service", "is the same as deliver_service");
  }
  return true;
}

bool ReadRoute(TableReader& r, Route* out, RouteLines* where) {
  out->where = SourceLocation{r.file(), r.line()};
  bool has_id = ReadId(r, "route", &out->id);
  r.CheckKeys({"id", "data_area", "sender", "authorities", "recipients", "expect", "grace"});
  if (!has_id) return false;
  r.String("data_area", &out->data_area, TableReader::kRequired);
  r.String("sender", &out->sender, TableReader::kRequired);
  where->data_area = r.Line("data_area");
  where->sender = r.Line("sender");
  ReadList(r, "recipients", &out->recipients, &where->recipients);
  std::vector<int> lines;
  if (ReadList(r, "authorities", &out->authorities, &lines)) {
    for (size_t i = 0; i < out->authorities.size(); ++i) {
      const std::string& a = out->authorities[i];
      if (a != "*" && !IsValidAuthority(a)) {
        r.ErrorAt(lines[i],
                  "authorities: \"" + a +
                      "\" is neither \"*\" nor a URN such as \"urn:oio:cvr-nr:55133018\"");
      }
    }
  }
  ReadExpect(r, out);
  return true;
}

}  // namespace fordeler
