// Reader for the [http] table of the main configuration file: the status page, JSON API and
// /metrics (docs/configuration.md). Fills the fields that are present and valid; every problem
// goes to the reader's ErrorList with its line. Thread-compatible.
#pragma once

#include <string_view>

#include "config/config.h"
#include "config/toml_reader.h"

namespace fordeler {

// Keys: listen (array; empty disables HTTP), user + password_hash (crypt(3) text, both or
// neither), tls_certificate + tls_key (paths relative to this file, both or neither, readable).
// A listen address that is not loopback (127.0.0.0/8, [::1]) needs basic auth and TLS.
void ReadHttp(TableReader& reader, HttpConfig* out);

// True for 127.0.0.0/8 and [::1] (and [::ffff:127.x.y.z]) listen addresses ("host:port").
bool IsLoopbackListenAddress(std::string_view text);

}  // namespace fordeler
