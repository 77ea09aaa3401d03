#include "config/authorized_keys.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "config/address_pattern.h"
#include "config/ssh_public_key.h"

namespace fordeler {
namespace {

constexpr int kMinRsaBits = 2048;

bool IsSpace(char c) { return c == ' ' || c == '\t'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (IsSpace(s.front()) || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (IsSpace(s.back()) || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Splits off the first whitespace-delimited token; double quotes protect spaces when `quoted`.
std::string_view TakeToken(std::string_view* rest, bool quoted) {
  bool in_quotes = false;
  size_t i = 0;
  for (; i < rest->size(); ++i) {
    char c = (*rest)[i];
    if (quoted && c == '\\' && in_quotes && i + 1 < rest->size()) {
      ++i;
    } else if (quoted && c == '"') {
      in_quotes = !in_quotes;
    } else if (!in_quotes && IsSpace(c)) {
      break;
    }
  }
  std::string_view token = rest->substr(0, i);
  *rest = Trim(rest->substr(i));
  return token;
}

bool IsKnownKeyType(std::string_view t) {
  static constexpr std::array<std::string_view, 8> kNames{
      "ssh-ed25519",         "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
      "ecdsa-sha2-nistp521", "ssh-dss", "rsa-sha2-256",        "rsa-sha2-512"};
  return std::find(kNames.begin(), kNames.end(), t) != kNames.end() || t.starts_with("sk-") ||
         t.ends_with("-cert-v01@openssh.com");
}

Status CheckKeyType(std::string_view type) {
  if (type == "rsa-sha2-256" || type == "rsa-sha2-512") {
    return Status::InvalidArgument(std::string(type) +
                                   " is a signature algorithm, not a key type: an RSA key's "
                                   "type is ssh-rsa");
  }
  if (type == "ssh-ed25519" || type == "ssh-rsa" || type.starts_with("ecdsa-sha2-nistp")) {
    return Status::Ok();
  }
  return Status::InvalidArgument("key type \"" + std::string(type) +
                                 "\" is not supported (use ssh-ed25519, ecdsa-sha2-nistp256/384/"
                                 "521, or ssh-rsa of at least 2048 bits)");
}

// Reads `name` or `name="value"` from the front of `*rest`, then its trailing comma.
Status TakeOption(std::string_view* rest, std::string* name, std::optional<std::string>* value) {
  size_t end = rest->find_first_of("=,");
  name->assign(rest->substr(0, end));
  std::transform(name->begin(), name->end(), name->begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  *rest = end == std::string_view::npos ? std::string_view() : rest->substr(end);
  value->reset();
  if (!rest->empty() && rest->front() == '=') {
    if (rest->size() < 2 || (*rest)[1] != '"') {
      return Status::InvalidArgument("option " + *name + "= needs a value in double quotes");
    }
    std::string v;
    size_t i = 2;
    for (; i < rest->size() && (*rest)[i] != '"'; ++i) {
      if ((*rest)[i] == '\\' && i + 1 < rest->size() && (*rest)[i + 1] == '"') ++i;
      v.push_back((*rest)[i]);
    }
    if (i >= rest->size())
      return Status::InvalidArgument("option " + *name + "= lacks its end quote");
    *value = std::move(v);
    *rest = rest->substr(i + 1);
  }
  if (!rest->empty() && rest->front() != ',') {
    return Status::InvalidArgument("option " + *name + ": expected a comma after it");
  }
  if (!rest->empty()) rest->remove_prefix(1);
  return Status::Ok();
}

Status ParseFrom(const std::string& value, AuthorizedKey* key) {
  std::string_view rest = value;
  while (true) {
    size_t comma = rest.find(',');
    std::string pattern(Trim(rest.substr(0, comma)));
    if (Status s = ValidateAddressPattern(pattern); !s.ok()) return s;
    key->from.push_back(std::move(pattern));
    if (comma == std::string_view::npos) return Status::Ok();
    rest = rest.substr(comma + 1);
  }
}

Status ApplyOption(const std::string& name, const std::optional<std::string>& value,
                   AuthorizedKey* key) {
  bool needs_value = name == "from" || name == "expiry-time";
  if (name != "restrict" && !needs_value) {
    return Status::InvalidArgument("option \"" + name +
                                   "\" is not supported: fordeler honours only from=, restrict "
                                   "and expiry-time=, and refuses a key with any other option");
  }
  if (needs_value != value.has_value()) {
    return Status::InvalidArgument("option " + name +
                                   (needs_value ? " needs a value" : " takes no value"));
  }
  if (name == "restrict") {
    key->restrict = true;
    return Status::Ok();
  }
  if (name == "from") return ParseFrom(*value, key);
  auto expiry = ParseExpiryTime(*value);
  if (!expiry.ok()) return expiry.status();
  key->expiry = *expiry;
  return Status::Ok();
}

Status ParseOptions(std::string_view field, AuthorizedKey* key) {
  std::vector<std::string> seen;
  while (!field.empty()) {
    std::string name;
    std::optional<std::string> value;
    if (Status s = TakeOption(&field, &name, &value); !s.ok()) return s;
    if (name.empty()) return Status::InvalidArgument("empty option");
    if (std::find(seen.begin(), seen.end(), name) != seen.end()) {
      return Status::InvalidArgument("option " + name + " given twice");
    }
    seen.push_back(name);
    if (Status s = ApplyOption(name, value, key); !s.ok()) return s;
  }
  return Status::Ok();
}

Status ParseKey(std::string_view type, std::string_view base64, AuthorizedKey* key) {
  if (Status s = CheckKeyType(type); !s.ok()) return s;
  if (base64.empty()) return Status::InvalidArgument("no key after the key type");
  auto blob = Base64Decode(base64);
  if (!blob) return Status::InvalidArgument("the key is not valid base64");
  auto info = InspectPublicKeyBlob(*blob);
  if (!info.ok()) return info.status();
  if (info->type != type) {
    return Status::InvalidArgument("the line says " + std::string(type) + " but the key is " +
                                   info->type);
  }
  if (info->type == "ssh-rsa" && info->bits < kMinRsaBits) {
    return Status::InvalidArgument("RSA key of " + std::to_string(info->bits) +
                                   " bits: RSA keys need at least 2048 bits");
  }
  key->type = info->type;
  key->bits = info->bits;
  key->fingerprint = Sha256Fingerprint(*blob);
  key->blob = std::move(*blob);
  return Status::Ok();
}

bool ParseDigits(std::string_view s, int* out) {
  *out = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
    *out = *out * 10 + (c - '0');
  }
  return true;
}

}  // namespace

Result<std::chrono::system_clock::time_point> ParseExpiryTime(std::string_view text) {
  auto bad = [&] {
    return Status::InvalidArgument("expiry-time \"" + std::string(text) +
                                   "\" is not YYYYMMDD[HHMM[SS]][Z]");
  };
  std::string_view digits = text;
  bool utc = !digits.empty() && (digits.back() == 'Z' || digits.back() == 'z');
  if (utc) digits.remove_suffix(1);
  if (digits.size() != 8 && digits.size() != 12 && digits.size() != 14) return bad();
  std::array<int, 6> f{};  // year, month, day, hour, minute, second
  for (size_t i = 0; i < 6; ++i) {
    size_t pos = i == 0 ? 0 : 2 + 2 * i, len = i == 0 ? 4 : 2;
    if (pos >= digits.size()) break;
    if (!ParseDigits(digits.substr(pos, len), &f[i])) return bad();
  }
  std::tm tm{};
  tm.tm_year = f[0] - 1900, tm.tm_mon = f[1] - 1, tm.tm_mday = f[2];
  tm.tm_hour = f[3], tm.tm_min = f[4], tm.tm_sec = f[5], tm.tm_isdst = -1;
  std::tm check = tm;
  std::time_t t = utc ? timegm(&check) : std::mktime(&check);
  // mktime/timegm normalise out-of-range fields (month 13, day 32): refuse those.
  if (t == static_cast<std::time_t>(-1) || check.tm_mday != f[2] || check.tm_mon != f[1] - 1 ||
      f[3] > 23 || f[4] > 59 || f[5] > 59) {
    return bad();
  }
  // system_clock counts nanoseconds from 1677 to 2262: a later expiry means "never", an earlier
  // one "long ago" (converting either would overflow).
  using Clock = std::chrono::system_clock;
  if (t >= Clock::to_time_t(Clock::time_point::max())) return Clock::time_point::max();
  if (t <= Clock::to_time_t(Clock::time_point::min())) return Clock::time_point::min();
  return Clock::from_time_t(t);
}

Result<AuthorizedKey> ParseAuthorizedKeyLine(std::string_view line, const SourceLocation& where) {
  AuthorizedKey key;
  key.where = where;
  std::string_view rest = Trim(line);
  std::string_view probe = rest;
  std::string_view first = TakeToken(&probe, false);
  bool has_options = !IsKnownKeyType(first) &&
                     (first.find('=') != std::string_view::npos || !probe.starts_with("AAAA"));
  if (has_options) {
    std::string_view options = TakeToken(&rest, true);
    if (Status s = ParseOptions(options, &key); !s.ok()) return s;
  }
  std::string_view type = TakeToken(&rest, false);
  std::string_view base64 = TakeToken(&rest, false);
  if (Status s = ParseKey(type, base64, &key); !s.ok()) return s;
  key.comment = std::string(rest);
  return key;
}

void ReadAuthorizedKeysFile(const std::string& path, const SourceLocation& named_at,
                            std::vector<AuthorizedKey>* keys, std::vector<ConfigError>* errors) {
  auto fail = [&](const std::string& why) {
    errors->push_back({named_at, "cannot read " + path + ": " + why});
  };
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(std::strerror(errno));
  struct stat st {};
  std::string content;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return fail("not a regular file");
  }
  if ((st.st_mode & S_IWOTH) != 0) {
    close(fd);
    errors->push_back({named_at, path + " is writable by anyone: refused (chmod o-w)"});
    return;
  }
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) content.append(buf, static_cast<size_t>(n));
  int read_errno = errno;
  close(fd);
  if (n < 0) return fail(std::strerror(read_errno));
  int number = 0;
  for (std::string_view rest = content; !rest.empty();) {
    size_t nl = rest.find('\n');
    std::string_view line = Trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    ++number;
    if (line.empty() || line.front() == '#') continue;
    SourceLocation where{path, number};
    auto key = ParseAuthorizedKeyLine(line, where);
    if (key.ok()) {
      keys->push_back(std::move(*key));
    } else {
      errors->push_back({where, key.status().message()});
    }
  }
}

}  // namespace fordeler
