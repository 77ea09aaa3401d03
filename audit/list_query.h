// The query behind ListTransfers: the filter's conditions as fixed SQL fragments of sql.cc with
// the values as parameters (never spliced into the text).
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "audit/audit_store.h"
#include "audit/sqlite.h"

namespace fordeler {

struct ListQuery {
  std::string sql;
  std::vector<std::variant<std::string, int64_t>> params;  // for ?1, ?2, ... in order

  void BindTo(Stmt& stmt) const;
};

// Newest first (received_at DESC, then uuid DESC), at most filter.limit rows (a limit < 0 means
// no limit).
ListQuery BuildListQuery(const TransferFilter& filter);

}  // namespace fordeler
