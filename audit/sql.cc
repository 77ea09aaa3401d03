#include "audit/sql.h"

namespace fordeler::sql {
namespace {

// Version 1: the initial schema.
//
// Times are RFC 3339 UTC text with milliseconds (fixed width, so text order is time order).
// transfers.route_ids is the comma-separated list of route ids (ids never hold a comma);
// transfer_routes repeats it one row per route with the transfer's received_at, so that
// `fordeler transfers --route R` reads R's transfers newest first straight off its key.
// The list indexes end in uuid so that "newest first, then uuid" is read straight off an index
// (walked backwards) and streams without a sort. step 6 is TransferStep::kDone.
constexpr char kSchemaV1[] = R"sql(
CREATE TABLE transfers (
  uuid              TEXT PRIMARY KEY NOT NULL,
  sender            TEXT NOT NULL,
  trigger_name      TEXT NOT NULL,
  name              TEXT NOT NULL,
  senders_file_id   TEXT,
  size              INTEGER,
  sha256            TEXT,
  data_area         TEXT,
  authority         TEXT,
  route_ids         TEXT NOT NULL DEFAULT '',
  state             TEXT NOT NULL
                    CHECK (state IN ('received', 'delivering', 'delivered', 'rejected')),
  step              INTEGER NOT NULL,
  error_code        INTEGER CHECK (error_code IS NULL OR error_code <> 0),
  error_description TEXT NOT NULL DEFAULT '',
  trigger_xml       TEXT NOT NULL DEFAULT '',
  receipt_xml       TEXT NOT NULL DEFAULT '',
  received_at       TEXT NOT NULL,
  updated_at        TEXT NOT NULL
);
CREATE INDEX transfers_received ON transfers (received_at, uuid);
CREATE INDEX transfers_state ON transfers (state, received_at, uuid);
CREATE INDEX transfers_sender ON transfers (sender, received_at, uuid);
CREATE INDEX transfers_data_area ON transfers (data_area, received_at, uuid);
CREATE INDEX transfers_unfinished ON transfers (step) WHERE step != 6;

CREATE TABLE transfer_routes (
  route_id      TEXT NOT NULL,
  received_at   TEXT NOT NULL,
  transfer_uuid TEXT NOT NULL REFERENCES transfers (uuid) ON DELETE CASCADE,
  PRIMARY KEY (route_id, received_at, transfer_uuid)
) WITHOUT ROWID;
CREATE INDEX transfer_routes_transfer ON transfer_routes (transfer_uuid);

CREATE TABLE deliveries (
  transfer_uuid TEXT NOT NULL REFERENCES transfers (uuid),
  recipient     TEXT NOT NULL,
  name_in_in    TEXT NOT NULL DEFAULT '',
  state         TEXT NOT NULL
                CHECK (state IN ('pending', 'delivered', 'picked_up', 'expired', 'recalled')),
  delivered_at  TEXT,
  picked_up_at  TEXT,
  expired_at    TEXT,
  recalled_at   TEXT,
  PRIMARY KEY (transfer_uuid, recipient)
) WITHOUT ROWID;
CREATE INDEX deliveries_in ON deliveries (recipient, name_in_in);
CREATE INDEX deliveries_state ON deliveries (state);

CREATE TABLE events (
  seq           INTEGER PRIMARY KEY NOT NULL,
  time          TEXT NOT NULL,
  kind          TEXT NOT NULL,
  transfer_uuid TEXT NOT NULL DEFAULT '',
  account       TEXT NOT NULL DEFAULT '',
  detail        TEXT NOT NULL DEFAULT '',
  prev_hash     TEXT NOT NULL,
  hash          TEXT NOT NULL
);
CREATE INDEX events_transfer ON events (transfer_uuid, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
  BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
)sql";

// Version 2: indexes for the operator's `fordeler status` and `accounts` (cli/): deliveries by
// the time they were placed ("delivered today"), and events by kind and account (last login).
constexpr char kSchemaV2[] = R"sql(
CREATE INDEX deliveries_delivered ON deliveries (delivered_at);
CREATE INDEX events_kind_account ON events (kind, account, time);
)sql";

// Version 3: the events are looked up by account for four kinds only (a sender's receipts, an
// account's logins and alerts, a schedule's first watch), so each of those has a partial index of
// its own, and the events every transfer writes (received, delivered, ...) are in none: one index
// leaf per account and kind was some 8 of the 50 pages a group commit wrote. A query's
// `kind = '...'` must name the kind exactly for SQLite to use the index.
constexpr char kSchemaV3[] = R"sql(
DROP INDEX events_kind_account;
CREATE INDEX events_receipts ON events (account, time) WHERE kind = 'receipt_sent';
CREATE INDEX events_logins ON events (account, time) WHERE kind = 'login';
CREATE INDEX events_alerts ON events (account, time) WHERE kind = 'alert';
CREATE INDEX events_route_watches ON events (detail, time) WHERE kind = 'route_watched';
)sql";

}  // namespace

const std::vector<Migration>& Migrations() {
  static const std::vector<Migration> kMigrations = {
      {1, kSchemaV1},
      {2, kSchemaV2},
      {3, kSchemaV3},
  };
  return kMigrations;
}

int CurrentVersion() { return Migrations().back().version; }

const char kJournalModeWal[] = "PRAGMA journal_mode = WAL";
const char kSynchronousFull[] = "PRAGMA synchronous = FULL";
const char kForeignKeysOn[] = "PRAGMA foreign_keys = ON";
const char kUserVersion[] = "PRAGMA user_version";

std::string SetUserVersion(int version) {
  // PRAGMA takes no parameters; `version` is an integer of ours, never user text.
  return "PRAGMA user_version = " + std::to_string(version);
}

const char kBeginImmediate[] = "BEGIN IMMEDIATE";
const char kCommit[] = "COMMIT";
const char kRollback[] = "ROLLBACK";

const char kUpsertTransfer[] = R"sql(
INSERT INTO transfers (uuid, sender, trigger_name, name, senders_file_id, size, sha256,
                       data_area, authority, route_ids, state, step, error_code,
                       error_description, trigger_xml, receipt_xml, received_at, updated_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)
ON CONFLICT (uuid) DO UPDATE SET
  sender = excluded.sender, trigger_name = excluded.trigger_name, name = excluded.name,
  senders_file_id = excluded.senders_file_id, size = excluded.size, sha256 = excluded.sha256,
  data_area = excluded.data_area, authority = excluded.authority,
  route_ids = excluded.route_ids, state = excluded.state, step = excluded.step,
  error_code = excluded.error_code, error_description = excluded.error_description,
  trigger_xml = excluded.trigger_xml, receipt_xml = excluded.receipt_xml,
  received_at = excluded.received_at, updated_at = excluded.updated_at
)sql";

// A transfer's later steps change only its state, error and receipt. This UPDATE (with the
// parameters of kUpsertTransfer) sets just those, so SQLite rewrites only the indexes on state
// and step, not those on sender, time and data area, nor the route rows; it changes the row only
// if everything else is as stored, and otherwise kUpsertTransfer rewrites the whole transfer.
const char kUpdateTransferState[] = R"sql(
UPDATE transfers SET state = ?11, step = ?12, error_code = ?13, error_description = ?14,
                     receipt_xml = ?16, updated_at = ?18
WHERE uuid = ?1 AND sender = ?2 AND trigger_name = ?3 AND name = ?4
  AND senders_file_id IS ?5 AND size IS ?6 AND sha256 IS ?7 AND data_area IS ?8
  AND authority IS ?9 AND route_ids = ?10 AND trigger_xml = ?15 AND received_at = ?17
)sql";

const char kDeleteTransferRoutes[] = "DELETE FROM transfer_routes WHERE transfer_uuid = ?1";
// A rejected transfer is delivered to nobody (contract §5): deliveries planned before a late
// check (Sha256, ...) rejected it go with the rejection.
const char kDeletePendingDeliveries[] =
    "DELETE FROM deliveries WHERE transfer_uuid = ?1 AND state = 'pending'";
const char kInsertTransferRoute[] =
    "INSERT OR IGNORE INTO transfer_routes (transfer_uuid, route_id, received_at) "
    "VALUES (?1, ?2, ?3)";

const char kUpsertDelivery[] = R"sql(
INSERT INTO deliveries (transfer_uuid, recipient, name_in_in, state, delivered_at, picked_up_at,
                        expired_at, recalled_at)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
ON CONFLICT (transfer_uuid, recipient) DO UPDATE SET
  name_in_in = excluded.name_in_in, state = excluded.state,
  delivered_at = excluded.delivered_at, picked_up_at = excluded.picked_up_at,
  expired_at = excluded.expired_at, recalled_at = excluded.recalled_at
)sql";

const char kInsertEvent[] = R"sql(
INSERT INTO events (seq, time, kind, transfer_uuid, account, detail, prev_hash, hash)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
)sql";

const char kSelectDeliveryState[] =
    "SELECT state FROM deliveries WHERE transfer_uuid = ?1 AND recipient = ?2";

#define FORDELER_TRANSFER_COLUMNS                                                          \
  "SELECT t.uuid, t.sender, t.trigger_name, t.name, t.senders_file_id, t.size, t.sha256, " \
  "t.data_area, t.authority, t.route_ids, t.state, t.step, t.error_code, "                 \
  "t.error_description, t.trigger_xml, t.receipt_xml, t.received_at, t.updated_at "
const char kSelectTransferColumns[] = FORDELER_TRANSFER_COLUMNS "FROM transfers t";
const char kSelectTransfersOfRoute[] = FORDELER_TRANSFER_COLUMNS
    "FROM transfer_routes r JOIN transfers t ON t.uuid = r.transfer_uuid WHERE r.route_id = ?";
#undef FORDELER_TRANSFER_COLUMNS

const char kWhereUuid[] = " WHERE t.uuid = ?1";
const char kWhereUnfinished[] = " WHERE t.step != 6";
const char kOrderByReceived[] = " ORDER BY t.received_at, t.uuid";

const char kWhereSince[] = "t.received_at >= ?";
const char kWhereRouteSince[] = "r.received_at >= ?";
const char kWhereState[] = "t.state = ?";
const char kWhereSender[] = "t.sender = ?";
const char kWhereDataArea[] = "t.data_area = ?";
const char kListTail[] = " ORDER BY t.received_at DESC, t.uuid DESC LIMIT ?";
const char kRouteListTail[] = " ORDER BY r.received_at DESC, r.transfer_uuid DESC LIMIT ?";

const char kSelectDeliveriesOf[] = R"sql(
SELECT transfer_uuid, recipient, name_in_in, state, delivered_at, picked_up_at, expired_at,
       recalled_at
FROM deliveries WHERE transfer_uuid = ?1 ORDER BY recipient
)sql";

const char kSelectDelivered[] = R"sql(
SELECT transfer_uuid, recipient, name_in_in, state, delivered_at, picked_up_at, expired_at,
       recalled_at
FROM deliveries WHERE recipient = ?1 AND name_in_in = ?2 AND state = 'delivered'
ORDER BY delivered_at DESC LIMIT 1
)sql";

// Every delivery in state 'delivered' (placed, not yet picked up, expired nor recalled), by
// transfer: deliveries_state, which holds the primary key after the state, so its rows come in
// key order with no sort, and each is read by its key. The cost is the number of such deliveries
// (files waiting in some /IN, at most `retention` old), never the log's history.
const char kSelectAllDelivered[] = R"sql(
SELECT transfer_uuid, recipient, name_in_in, state, delivered_at, picked_up_at, expired_at,
       recalled_at
FROM deliveries INDEXED BY deliveries_state WHERE state = 'delivered'
ORDER BY transfer_uuid, recipient
)sql";

// The newest delivery ever placed under the name, whatever its state since: deliveries_in, then
// the few placements of that name sorted.
const char kSelectPlaced[] = R"sql(
SELECT transfer_uuid, recipient, name_in_in, state, delivered_at, picked_up_at, expired_at,
       recalled_at
FROM deliveries WHERE recipient = ?1 AND name_in_in = ?2 AND delivered_at IS NOT NULL
ORDER BY delivered_at DESC LIMIT 1
)sql";

// The sender's last receipt for the name, among its 1,000 newest receipts: events_receipts
// walked backwards (time, then seq: commit order) for at most 1,000 rows, each joined to its
// transfer by primary key. The bound keeps the cost of one lookup independent of how much the
// sender ever sent.
const char kSelectLastReceipt[] = R"sql(
SELECT t.uuid
FROM (SELECT transfer_uuid, time, seq FROM events
      WHERE kind = 'receipt_sent' AND account = ?1
      ORDER BY time DESC, seq DESC LIMIT 1000) e
  CROSS JOIN transfers t ON t.uuid = e.transfer_uuid
WHERE t.name = ?2
ORDER BY e.time DESC, e.seq DESC LIMIT 1
)sql";

// In the order things happened (AuditStore::EventsOf): a transfer's few rows, sorted.
const char kSelectEventsOf[] = R"sql(
SELECT seq, time, kind, transfer_uuid, account, detail, hash
FROM events WHERE transfer_uuid = ?1 ORDER BY time, seq
)sql";

const char kSelectAllEvents[] = R"sql(
SELECT seq, time, kind, transfer_uuid, account, detail, hash, prev_hash
FROM events ORDER BY seq
)sql";

const char kSelectHead[] = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";

// Verify's check of the transfers' digests (audit/digest_check.h): the rows in rowid order from
// after ?1 (the table's own b-tree, read in order), and one row by its key.
const char kSelectTransferDigestsAfter[] =
    "SELECT rowid, uuid, sha256, size FROM transfers WHERE rowid > ?1 ORDER BY rowid";
const char kSelectTransferDigest[] =
    "SELECT rowid, uuid, sha256, size FROM transfers WHERE uuid = ?1";

// `fordeler status`, the status page and route health. The newest transfer delivered on route
// ?1 (for authority ?2, '' = any), walking its transfer_routes key backwards; the time is when
// its last delivery was placed. Only state `delivered` counts: a transfer still delivering (or
// failing with 5001 while it does) has not reached its recipients.
const char kSelectLastDelivery[] = R"sql(
SELECT t.uuid, t.name, (SELECT MAX(d.delivered_at) FROM deliveries d WHERE d.transfer_uuid = t.uuid)
FROM transfer_routes r CROSS JOIN transfers t ON t.uuid = r.transfer_uuid
WHERE r.route_id = ?1 AND t.state = 'delivered' AND (?2 = '' OR t.authority = ?2)
ORDER BY r.received_at DESC, r.transfer_uuid DESC LIMIT 1
)sql";

// Transfers of the route with a delivery placed at or after ?2. CROSS JOIN keeps SQLite reading
// deliveries_delivered first (only today's rows), not the route's whole history.
const char kCountDeliveredSince[] = R"sql(
SELECT COUNT(DISTINCT d.transfer_uuid)
FROM deliveries d CROSS JOIN transfer_routes r ON r.transfer_uuid = d.transfer_uuid
WHERE d.delivered_at >= ?2 AND r.route_id = ?1
)sql";

// Deliveries not yet picked up, per route and recipient (deliveries_state, then the route rows
// of each transfer); not those of a transfer rejected after routing (they were never placed).
const char kSelectPendingByRoute[] = R"sql(
SELECT r.route_id, d.recipient, COUNT(*)
FROM deliveries d CROSS JOIN transfer_routes r ON r.transfer_uuid = d.transfer_uuid
  CROSS JOIN transfers t ON t.uuid = d.transfer_uuid
WHERE d.state IN ('pending', 'delivered') AND t.state <> 'rejected'
GROUP BY r.route_id, d.recipient
)sql";

// The sender's transfers received at or after ?2 in data area ?3 or in none yet known
// (transfers_sender): those that recorded a failure of fordeler's own, and those rejected.
// INDEXED BY: a transfer's few events (events_transfer), never every failure ever recorded, as
// SQLite chose while events had an index led by kind (events_kind_account, until version 3).
const char kCountFailedSince[] = R"sql(
SELECT COUNT(*) FROM transfers t
WHERE t.sender = ?1 AND t.received_at >= ?2 AND (t.data_area IS NULL OR t.data_area = ?3)
  AND EXISTS (SELECT 1 FROM events e INDEXED BY events_transfer
              WHERE e.transfer_uuid = t.uuid AND e.kind = 'failed')
)sql";
const char kCountRejectedSince[] = R"sql(
SELECT COUNT(*) FROM transfers t
WHERE t.sender = ?1 AND t.received_at >= ?2 AND (t.data_area IS NULL OR t.data_area = ?3)
  AND t.state = 'rejected'
)sql";

// `fordeler accounts`: the account's last login (events_logins, read backwards).
const char kSelectLastLogin[] =
    "SELECT MAX(time) FROM events WHERE kind = 'login' AND account = ?1";

// Route monitoring (monitor/route_health.h). Outcome columns: uuid, name, state, error_code,
// failed (0/1), received_at.
//
// The newest accepted transfer of route ?1 (for authority ?2, '' = any): the route's
// transfer_routes key walked backwards, as kSelectLastDelivery.
const char kSelectLastAccepted[] = R"sql(
SELECT t.uuid, t.name, t.state, t.error_code, 0, t.received_at
FROM transfer_routes r CROSS JOIN transfers t ON t.uuid = r.transfer_uuid
WHERE r.route_id = ?1 AND t.state IN ('delivering', 'delivered')
  AND (?2 = '' OR t.authority = ?2)
ORDER BY r.received_at DESC, r.transfer_uuid DESC LIMIT 1
)sql";

// The sender's newest transfer since ?2 in data area ?3 or none known, for authority ?4 or none
// known ('' = any): transfers_sender walked backwards.
const char kSelectLatestOfSender[] = R"sql(
SELECT t.uuid, t.name, t.state, t.error_code,
       EXISTS (SELECT 1 FROM events e INDEXED BY events_transfer
               WHERE e.transfer_uuid = t.uuid AND e.kind = 'failed'),
       t.received_at
FROM transfers t INDEXED BY transfers_sender
WHERE t.sender = ?1 AND t.received_at >= ?2 AND (t.data_area IS NULL OR t.data_area = ?3)
  AND (?4 = '' OR t.authority IS NULL OR t.authority = ?4)
ORDER BY t.received_at DESC, t.uuid DESC LIMIT 1
)sql";

// Deliveries placed in [?1, ?2) and not picked up (deliveries_delivered), with their transfer's
// sender, routes and authority.
const char kSelectDeliveredBetween[] = R"sql(
SELECT d.transfer_uuid, d.recipient, d.name_in_in, t.sender, t.route_ids, d.delivered_at,
       t.authority
FROM deliveries d CROSS JOIN transfers t ON t.uuid = d.transfer_uuid
WHERE d.delivered_at >= ?1 AND d.delivered_at < ?2 AND d.state = 'delivered'
ORDER BY d.delivered_at
)sql";

// An alert already recorded: events_alerts, one account's alerts since ?2.
const char kSelectAlertRecorded[] = R"sql(
SELECT 1 FROM events
WHERE kind = 'alert' AND account = ?1 AND time >= ?2
  AND (detail = ?3 OR substr(detail, 1, length(?3) + 1) = ?3 || ' ')
LIMIT 1
)sql";

// When fordelerd first watched a schedule: the oldest `route_watched` event with detail ?1
// (events_route_watches; there is one such event per schedule, more only after a crash between
// recording one and reading it back).
const char kSelectRouteWatched[] = R"sql(
SELECT MIN(time) FROM events WHERE kind = 'route_watched' AND account = '' AND detail = ?1
)sql";

}  // namespace fordeler::sql
