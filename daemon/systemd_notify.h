// Thin wrappers over sd_notify(3): harmless no-ops when not run by systemd.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace fordeler::systemd {

void NotifyReady(const std::string& status);
void NotifyReloading();
void NotifyStopping();
void NotifyWatchdog();
// The interval at which systemd expects WATCHDOG=1, when WatchdogSec= is set.
std::optional<std::chrono::microseconds> WatchdogInterval();

}  // namespace fordeler::systemd
