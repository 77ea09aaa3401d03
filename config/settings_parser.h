// Readers for the settings tables that only the main configuration file may hold: [server],
// [storage], [database] and [delivery] (contract §9). Each checks its keys, fills the fields
// that are present and valid, and leaves the defaults of config.h in place for the rest; every
// problem goes to the reader's ErrorList. Thread-compatible.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "config/toml_reader.h"
#include "core/status.h"

namespace fordeler {

// `host_key_problem` as in LoadOptions (may be empty).
void ReadServer(TableReader& reader, ServerConfig* out,
                const std::function<std::string(const std::string&)>& host_key_problem);
void ReadStorage(TableReader& reader, StorageConfig* out);
void ReadDatabase(TableReader& reader, DatabaseConfig* out);
void ReadDelivery(TableReader& reader, DeliveryConfig* out);

// "192.0.2.1:2222" or "[2001:db8::1]:2222": an IP literal (IPv6 in brackets) and a port
// 0..65535 (0: any free port). Host names are refused: a listening address is an address.
Status ValidateListenAddress(std::string_view text);

// An IANA time-zone name ("Europe/Copenhagen", "UTC"); checked against /usr/share/zoneinfo
// when that directory exists.
Status ValidateTimeZone(std::string_view name);

}  // namespace fordeler
