// Records <-> statement parameters and result columns, in the column order of sql.cc.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "audit/records.h"
#include "audit/sqlite.h"
#include "core/status.h"

namespace fordeler {

// Binds the parameters of sql::kUpsertTransfer; updated_at is `now` (the time of the write).
void BindTransfer(Stmt& stmt, const TransferRecord& t, TimePoint now);
// Binds the parameters of sql::kUpsertDelivery.
void BindDelivery(Stmt& stmt, const DeliveryRecord& d);

// Read the current row of sql::kSelectTransferColumns, kSelect*Deliver* and kSelect*Events*
// (the event's prev_hash, column 7, is not part of EventRecord). A malformed stored value (a
// state or time that does not parse) is kInternal.
Result<TransferRecord> ReadTransfer(const Stmt& stmt);
Result<DeliveryRecord> ReadDelivery(const Stmt& stmt);
Result<EventRecord> ReadEvent(const Stmt& stmt);

// route_ids as stored: "a,b,c"; "" for none.
std::string JoinRouteIds(const std::vector<std::string>& ids);
std::vector<std::string> SplitRouteIds(std::string_view text);

}  // namespace fordeler
