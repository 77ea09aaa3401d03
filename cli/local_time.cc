#include "cli/local_time.h"

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <optional>

namespace fordeler::cli {
namespace {

bool ZoneExists(const std::string& zone) {
  if (zone == "UTC") return true;
  if (zone.empty() || zone.front() == '/' || zone.find("..") != std::string::npos) return false;
  const char* dir = std::getenv("TZDIR");
  std::string path = std::string(dir != nullptr ? dir : "/usr/share/zoneinfo") + "/" + zone;
  struct stat st;
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// Sets TZ for its lifetime and restores the previous value.
class ScopedTz {
 public:
  explicit ScopedTz(const std::string& zone) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", zone.c_str(), 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> old_;
};

}  // namespace

Result<TimePoint> LocalMidnight(TimePoint now, const std::string& time_zone) {
  if (!ZoneExists(time_zone)) {
    return Status::InvalidArgument("unknown time zone \"" + time_zone + "\"");
  }
  ScopedTz tz(time_zone);
  time_t t = std::chrono::system_clock::to_time_t(now);
  struct tm local {};
  localtime_r(&t, &local);
  local.tm_hour = local.tm_min = local.tm_sec = 0;
  local.tm_isdst = -1;  // let mktime find whether DST was in force at midnight
  time_t midnight = mktime(&local);
  if (midnight == static_cast<time_t>(-1)) {
    return Status::Internal("cannot compute local midnight in " + time_zone);
  }
  return std::chrono::system_clock::from_time_t(midnight);
}

}  // namespace fordeler::cli
