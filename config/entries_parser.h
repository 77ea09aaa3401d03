// Readers for the entries that may stand in any configuration file: [[account]], [[data_area]]
// and [[route]] (contract §9). Each checks its table's keys and values and reports every problem
// to the reader's ErrorList. Each returns false only when the entry has no usable id; an entry
// with a valid id but other errors is still returned, so that references to it do not cause
// follow-on "unknown account" errors (the load fails anyway). Cross-entry checks (duplicates,
// references) are the loader's. Thread-compatible.
#pragma once

#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/toml_reader.h"

namespace fordeler {

// Account, data area and route ids: 1-64 characters of lowercase letters, digits, '.', '_' and
// '-', starting with a letter or digit. An account id is an SFTP user name and a folder name.
bool IsValidId(std::string_view id);

// "urn:..." without whitespace, e.g. "urn:oio:cvr-nr:55133018".
bool IsValidAuthority(std::string_view authority);

// Reads `authorized_keys` (relative to the file) and inline `keys` too.
bool ReadAccount(TableReader& reader, Account* out);
bool ReadDataArea(TableReader& reader, DataArea* out);
// Where a route's references stand, for the loader's messages about them.
struct RouteLines {
  int data_area = 0;
  int sender = 0;
  std::vector<int> recipients;
};
bool ReadRoute(TableReader& reader, Route* out, RouteLines* lines);

}  // namespace fordeler
