// Reader for the [alerts] table of the main configuration file (docs/configuration.md): the
// command run on an alert and the monitor's timings. Fills the fields that are present and valid;
// every problem goes to the reader's ErrorList with its line. Thread-compatible.
#pragma once

#include "config/config.h"
#include "config/toml_reader.h"

namespace fordeler {

// Keys: on_alert (argv array; the program an absolute path, run without a shell), timeout,
// not_picked_up_after, check_interval (durations).
void ReadAlerts(TableReader& reader, AlertsConfig* out);

}  // namespace fordeler
