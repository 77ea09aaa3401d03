// Every SQL statement of the audit store, as named constants: the schema, its migrations and the
// queries. No other file of audit/ holds SQL text, so a schema change is reviewed in one place.
#pragma once

#include <string>
#include <vector>

namespace fordeler::sql {

// Schema migrations, in order: migration i brings the database from user_version i to i + 1.
// A migration is never edited once shipped; a change of schema appends one.
struct Migration {
  int version;      // the user_version after it
  const char* sql;  // several statements
};
const std::vector<Migration>& Migrations();
int CurrentVersion();  // Migrations().back().version

// Connection set-up.
extern const char kJournalModeWal[];  // returns the mode now in force
extern const char kSynchronousFull[];
extern const char kForeignKeysOn[];
extern const char kUserVersion[];  // reads it
std::string SetUserVersion(int version);

// Transactions (writer).
extern const char kBeginImmediate[];
extern const char kCommit[];
extern const char kRollback[];

// Writes. Parameters are numbered in the order the codec binds them (see row_codec.cc).
extern const char kUpsertTransfer[];
extern const char kUpdateTransferState[];  // kUpsertTransfer's parameters; changes 0 or 1 row
extern const char kDeleteTransferRoutes[];
extern const char kDeletePendingDeliveries[];  // ?1 transfer uuid
extern const char kInsertTransferRoute[];
extern const char kUpsertDelivery[];
extern const char kInsertEvent[];
extern const char kSelectDeliveryState[];  // ?1 transfer uuid, ?2 recipient -> state

// Reads.
extern const char kSelectTransferColumns[];  // "SELECT <columns> FROM transfers t"
extern const char kWhereUuid[];
extern const char kWhereUnfinished[];  // matches the partial index on step
extern const char kOrderByReceived[];  // oldest first
// ListTransfers: kSelectTransferColumns + " WHERE " + fragments joined by " AND " + kListTail;
// with a route, kSelectTransfersOfRoute (already " WHERE r.route_id = ?") + " AND " fragments
// (kWhereRouteSince for the time) + kRouteListTail. Both: newest first, then LIMIT ?.
extern const char kSelectTransfersOfRoute[];
extern const char kWhereSince[];
extern const char kWhereRouteSince[];
extern const char kWhereState[];
extern const char kWhereSender[];
extern const char kWhereDataArea[];
extern const char kListTail[];
extern const char kRouteListTail[];

extern const char kSelectDeliveriesOf[];
extern const char kSelectDelivered[];
extern const char kSelectAllDelivered[];  // -> delivery columns, by transfer and recipient
extern const char kSelectPlaced[];        // ?1 recipient, ?2 name in /IN -> delivery columns
extern const char kSelectLastReceipt[];   // ?1 sender, ?2 name -> transfer uuid
extern const char kSelectEventsOf[];
extern const char kSelectAllEvents[];  // with prev_hash, for Verify
extern const char kSelectHead[];
extern const char kSelectTransferDigestsAfter[];  // ?1 rowid -> rowid, uuid, sha256, size
extern const char kSelectTransferDigest[];        // ?1 uuid -> rowid, uuid, sha256, size

// Operator queries (cli/ status and accounts); parameters as documented in sql.cc.
extern const char kSelectLastDelivery[];    // ?1 route id, ?2 authority or '' -> uuid, name, time
extern const char kCountDeliveredSince[];   // ?1 route id, ?2 time -> count
extern const char kSelectPendingByRoute[];  // -> route id, recipient, count
extern const char kCountFailedSince[];      // ?1 sender, ?2 time, ?3 data area -> count
extern const char kCountRejectedSince[];    // ?1 sender, ?2 time, ?3 data area -> count
extern const char kSelectLastLogin[];       // ?1 account -> time or NULL

// Route monitoring (monitor/); parameters as documented in sql.cc.
extern const char kSelectLastAccepted[];      // ?1 route, ?2 authority or '' -> outcome columns
extern const char kSelectLatestOfSender[];    // ?1 sender, ?2 since, ?3 area, ?4 authority or ''
extern const char kSelectDeliveredBetween[];  // ?1 from, ?2 to -> unfetched delivery columns
extern const char kSelectAlertRecorded[];     // ?1 account, ?2 since, ?3 key -> 1 or no row
extern const char kSelectRouteWatched[];      // ?1 key -> time or NULL

}  // namespace fordeler::sql
