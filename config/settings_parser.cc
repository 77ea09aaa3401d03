#include "config/settings_parser.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>
#include <limits>

#include "config/address_pattern.h"
#include "core/units.h"

namespace fordeler {
namespace {

void ReadListen(TableReader& r, ServerConfig* out) {
  std::vector<std::string> listen;
  std::vector<int> lines;
  if (!r.StringArray("listen", &listen, &lines)) return;
  if (listen.empty()) {
    r.Error("listen", "must name at least one address");
    return;
  }
  bool ok = true;
  for (size_t i = 0; i < listen.size(); ++i) {
    Status s = ValidateListenAddress(listen[i]);
    if (!s.ok()) r.ErrorAt(lines[i], "listen: " + s.message());
    if (std::find(listen.begin(), listen.begin() + i, listen[i]) != listen.begin() + i) {
      r.ErrorAt(lines[i], "listen: \"" + listen[i] + "\" is named twice");
      s = Status::InvalidArgument("duplicate");
    }
    ok = ok && s.ok();
  }
  if (ok) out->listen = std::move(listen);
}

void ReadHostKeys(TableReader& r, ServerConfig* out,
                  const std::function<std::string(const std::string&)>& problem) {
  std::vector<std::string> keys;
  std::vector<int> lines;
  if (!r.StringArray("host_keys", &keys, &lines)) return;
  out->host_keys.clear();
  if (keys.empty() && problem) r.Error("host_keys", "fordelerd needs at least one host key");
  for (size_t i = 0; i < keys.size(); ++i) {
    if (keys[i].empty()) {
      r.ErrorAt(lines[i], "host_keys: an empty path");
      continue;
    }
    std::string path = ResolvePath(r.file(), keys[i]);
    if (access(path.c_str(), R_OK) != 0) {
      r.ErrorAt(lines[i], "host_keys: cannot read " + path + ": " + std::strerror(errno));
      continue;
    }
    if (std::string why = problem ? problem(path) : ""; !why.empty()) {
      r.ErrorAt(lines[i], "host_keys: " + path + " " + why);
      continue;
    }
    out->host_keys.push_back(path);
  }
}

bool ReadPositiveInt(TableReader& r, std::string_view key, int* out) {
  int64_t value = 0;
  if (!r.Int(key, 1, std::numeric_limits<int>::max(), &value)) return false;
  *out = static_cast<int>(value);
  return true;
}

// Unauthenticated connections, open handles and the authentication-failure ban.
void ReadLimits(TableReader& r, ServerConfig* out) {
  ReadPositiveInt(r, "max_unauthenticated", &out->max_unauthenticated);
  ReadPositiveInt(r, "max_unauthenticated_per_address", &out->max_unauthenticated_per_address);
  int64_t handles = 0;
  if (r.Int("max_handles_per_session", 1, 65535, &handles)) {
    out->max_handles_per_session = static_cast<int>(handles);
  }
  int64_t after = 0;
  if (r.Int("ban_after", 0, 1'000'000, &after)) out->ban_after = static_cast<int>(after);
  r.Duration("ban_window", &out->ban_window);
  r.Duration("ban_duration", &out->ban_duration);
  std::vector<std::string> allow;
  std::vector<int> lines;
  if (r.StringArray("ban_allow", &allow, &lines)) {
    bool ok = true;
    for (size_t i = 0; i < allow.size(); ++i) {
      Status s = ValidateAddressPattern(allow[i], "ban_allow pattern");
      if (!s.ok()) r.ErrorAt(lines[i], s.message());
      ok = ok && s.ok();
    }
    if (ok) out->ban_allow = std::move(allow);
  }
  if (r.Has("max_unauthenticated_per_address") &&
      out->max_unauthenticated_per_address > out->max_unauthenticated) {
    r.Error("max_unauthenticated_per_address",
            "is more than max_unauthenticated (" + std::to_string(out->max_unauthenticated) + ")");
  }
}

}  // namespace

Status ValidateListenAddress(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return Status::InvalidArgument("\"" + std::string(text) + "\": " + why +
                                   " (write \"0.0.0.0:2222\" or \"[::]:2222\")");
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("no port");
  std::string host(text.substr(0, colon));
  std::string_view port = text.substr(colon + 1);
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || value > 65535) {
    return bad("the port must be a number 0..65535");
  }
  unsigned char buf[16];
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    if (inet_pton(AF_INET6, host.substr(1, host.size() - 2).c_str(), buf) == 1) {
      return Status::Ok();
    }
    return bad("not an IPv6 address in brackets");
  }
  if (inet_pton(AF_INET, host.c_str(), buf) == 1) return Status::Ok();
  if (inet_pton(AF_INET6, host.c_str(), buf) == 1) return bad("an IPv6 address needs brackets");
  return bad("the host must be an IPv4 address or an IPv6 address in brackets");
}

Status ValidateTimeZone(std::string_view name) {
  auto bad = [&](const char* why) {
    return Status::InvalidArgument("time zone \"" + std::string(name) + "\" " + why);
  };
  if (name.empty() || name.front() == '/' || name.find("..") != std::string_view::npos ||
      name.find_first_not_of(
          "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") !=
          std::string_view::npos) {
    return bad("is not an IANA time-zone name such as \"Europe/Copenhagen\"");
  }
  std::error_code ec;
  const std::filesystem::path zoneinfo("/usr/share/zoneinfo");
  if (std::filesystem::is_directory(zoneinfo, ec) &&
      !std::filesystem::is_regular_file(zoneinfo / std::string(name), ec)) {
    return bad("is unknown (not in /usr/share/zoneinfo)");
  }
  return Status::Ok();
}

void ReadServer(TableReader& r, ServerConfig* out,
                const std::function<std::string(const std::string&)>& host_key_problem) {
  r.CheckKeys({"listen", "host_keys", "max_sessions_per_account", "max_sessions", "login_grace",
               "idle_timeout", "time_zone", "threads", "max_unauthenticated",
               "max_unauthenticated_per_address", "max_handles_per_session", "ban_after",
               "ban_window", "ban_duration", "ban_allow"});
  ReadListen(r, out);
  ReadHostKeys(r, out, host_key_problem);
  ReadPositiveInt(r, "max_sessions_per_account", &out->max_sessions_per_account);
  ReadPositiveInt(r, "max_sessions", &out->max_sessions);
  r.Duration("login_grace", &out->login_grace);
  r.Duration("idle_timeout", &out->idle_timeout);
  std::string zone;
  if (r.String("time_zone", &zone)) {
    Status s = ValidateTimeZone(zone);
    if (s.ok()) {
      out->time_zone = zone;
    } else {
      r.Error("time_zone", s.message());
    }
  }
  int64_t threads = 0;
  if (r.Int("threads", 0, 1024, &threads)) out->threads = static_cast<int>(threads);
  ReadLimits(r, out);
  // Each limit stands on its own (contract §1); only an explicit per-account limit above the
  // overall one is a contradiction worth refusing.
  if (r.Has("max_sessions_per_account") && out->max_sessions_per_account > out->max_sessions) {
    r.Error("max_sessions_per_account",
            "is more than max_sessions (" + std::to_string(out->max_sessions) + ")");
  }
}

void ReadStorage(TableReader& r, StorageConfig* out) {
  r.CheckKeys({"root"});
  if (r.Path("root", &out->root)) out->where = r.Where("root");
}

void ReadDatabase(TableReader& r, DatabaseConfig* out) {
  r.CheckKeys({"path"});
  if (r.Path("path", &out->path)) out->where = r.Where("path");
}

void ReadDelivery(TableReader& r, DeliveryConfig* out) {
  r.CheckKeys({"trigger_grace", "retention", "retention_warning", "max_file_size",
               "metadata_format", "workers"});
  r.Duration("trigger_grace", &out->trigger_grace);
  r.Duration("retention", &out->retention);
  r.Duration("retention_warning", &out->retention_warning);
  if (out->retention_warning >= out->retention) {
    r.Error(r.Has("retention_warning") ? "retention_warning" : "retention",
            "the warning (" + FormatDuration(out->retention_warning) +
                ") must come before data expires: retention_warning must be shorter than "
                "retention (" +
                FormatDuration(out->retention) + ")");
  }
  r.Size("max_file_size", 1, &out->max_file_size);
  std::string format;
  if (r.String("metadata_format", &format)) {
    if (format == "trigger") {
      out->metadata_format = MetadataFormat::kTrigger;
    } else if (format == "filemetadata") {
      out->metadata_format = MetadataFormat::kFileMetadata;
    } else {
      r.Error("metadata_format", "\"" + format + "\" is neither \"trigger\" nor \"filemetadata\"");
    }
  }
  int64_t workers = 0;
  if (r.Int("workers", 1, 256, &workers)) out->workers = static_cast<int>(workers);
}

}  // namespace fordeler
