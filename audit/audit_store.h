// AuditStore: fordeler's audit log in SQLite (WAL, synchronous=FULL, schema versioned with
// migrations; all SQL lives in sql.cc). It holds transfers, deliveries and an append-only events
// table in which each row carries the SHA-256 of the previous row's hash and its own content, so
// `audit verify` detects a changed, reordered or missing row.
//
// Writes go through Submit(): a Batch is applied in one transaction, and batches submitted
// concurrently share one commit (group commit) on the store's writer thread. `done` is called
// once the commit holding the batch is durable — so a caller that starts the next step of a
// transfer from `done` never runs ahead of the record of the previous step. When SQLite is busy
// or unwritable the writer retries with back-off and holds the batches (nothing is dropped);
// `done` then receives the error only when the store is closing.
//
// Reads use separate read-only connections (a small pool: each read call borrows one) and may run
// on any thread, concurrently; a row callback may itself call the read methods. A read sees every
// batch whose `done` has run. A read-only store (the CLI) opens the database without creating or
// migrating it, and its Submit fails at once.
//
// Thread safety: every method is thread-safe. Commit() must not be called from a `done` callback
// (it would wait for the writer thread it runs on; it returns kInternal instead).
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "audit/records.h"
#include "core/status.h"

namespace fordeler {

class Env;

// A condition a batch holds to (Batch::RequireDeliveryState): checked inside the transaction,
// against the database as it then is.
struct DeliveryStateCheck {
  std::string transfer_uuid;
  std::string recipient;
  DeliveryState state = DeliveryState::kDelivered;
};

// A set of writes applied atomically, in order.
class Batch {
 public:
  Batch& PutTransfer(TransferRecord t);  // insert or replace by uuid
  // Insert or replace by (transfer_uuid, recipient). REQUIRES: the transfer was put before (in
  // this batch or an earlier one): a delivery of an unknown transfer fails the batch.
  Batch& PutDelivery(DeliveryRecord d);
  // seq and hash are assigned at commit, and so is the time unless `at` gives it: when what the
  // event records happened before it could be recorded (a download, reported before the lookup
  // that tells its transfer). The chain's order stays the commit's (seq).
  Batch& AddEvent(std::string kind, std::string transfer_uuid, std::string account,
                  std::string detail, std::optional<TimePoint> at = std::nullopt);
  Batch& Append(Batch other);  // other's writes after these
  // Applies the batch only if the delivery (transfer_uuid, recipient) is in `state` at that point
  // of the commit; otherwise the batch is skipped whole and its `done` gets kAlreadyExists
  // ("changed meanwhile"). This makes a change of a delivery's state a compare-and-set: of two
  // writers that both saw it `delivered` (a pickup and the retention sweep, or the same pickup
  // reported twice), only the first to commit records its change.
  Batch& RequireDeliveryState(std::string transfer_uuid, std::string recipient,
                              DeliveryState state);
  bool empty() const { return ops_.empty(); }

  using Op = std::variant<TransferRecord, DeliveryRecord, EventRecord, DeliveryStateCheck>;
  const std::vector<Op>& ops() const { return ops_; }

 private:
  std::vector<Op> ops_;
};

struct TransferFilter {
  std::optional<TimePoint> since;
  std::optional<TransferState> state;
  std::optional<std::string> sender;
  std::optional<std::string> route;  // a route id among route_ids
  std::optional<std::string> data_area;
  int limit = 100;
};

struct ChainHead {
  int64_t seq = 0;   // 0 for an empty chain
  std::string hash;  // hex; "" for an empty chain
};

// What `fordeler status` shows of one route (contract §10); see AuditStore::RouteActivityOf.
struct RouteActivityQuery {
  std::string route_id;
  std::string sender;       // the route's sender
  std::string data_area;    // the route's data area
  TimePoint today_since{};  // local midnight
  TimePoint day_since{};    // now - 24 h
};

// A route's newest delivered transfer (AuditStore::LastDelivered).
struct LastDelivery {
  std::string uuid;
  std::string name;
  std::optional<TimePoint> placed_at;  // when its last delivery was placed
};

struct RouteActivity {
  std::optional<TimePoint> last_delivery_at;  // unset: nothing delivered on the route yet
  std::string last_delivery_uuid;
  std::string last_delivery_name;
  int64_t today = 0;         // transfers with a delivery placed since today_since
  int64_t failed_24h = 0;    // received since day_since, recorded a `failed` event (5xxx)
  int64_t rejected_24h = 0;  // received since day_since, rejected
};

// One transfer as the route monitor (monitor/route_health.h) sees it.
struct TransferOutcome {
  std::string uuid;
  std::string name;
  TransferState state = TransferState::kReceived;
  int error_code = 0;
  bool failed = false;  // recorded a `failed` event (fordeler's own error, 5001)
  TimePoint received_at{};
};

// A delivery placed and not picked up (AuditStore::DeliveredBetween).
struct UnfetchedDelivery {
  std::string transfer_uuid;
  std::string recipient;
  std::string name_in_in;
  std::string sender;
  std::string route_ids;  // comma-separated
  TimePoint delivered_at{};
  std::string authority;  // the transfer's; "" when it has none
};

struct PendingCount {
  std::string route_id;
  std::string recipient;
  int64_t count = 0;  // deliveries in state pending or delivered (not picked up)
};

struct VerifyReport {
  bool ok = true;
  int64_t rows = 0;
  int64_t first_bad_seq = 0;  // when !ok
  std::string problem;        // when !ok: what is wrong with that row
  std::string transfer;       // when !ok and the problem is that transfer's row: its uuid
  // Events whose digest fields (chain.h DigestFields) were checked against their transfer's row.
  int64_t digests = 0;
};

class AuditStore {
 public:
  struct Options {
    bool read_only = false;
    // How long one SQLite call waits for a lock held by another connection before the writer
    // backs off and retries (and before a read fails with kUnavailable).
    int busy_timeout_ms = 5000;
  };
  // Opens (creating and migrating unless read-only) the database at `path`. Fails with a clear
  // message for a database written by a newer fordeler (schema version unknown here); read-only,
  // a missing file is kNotFound naming `path`, a locked one kUnavailable.
  static Result<std::unique_ptr<AuditStore>> Open(const std::string& path, Env* env,
                                                  Options options);
  static Result<std::unique_ptr<AuditStore>> Open(const std::string& path, Env* env) {
    return Open(path, env, Options{});
  }
  virtual ~AuditStore() = default;

  using Done = std::function<void(const Status&)>;
  // Queues `batch`; `done` runs on the writer thread once it is committed (or failed for good).
  // A batch that breaks a constraint, or whose event kind / transfer / account holds a newline or
  // a route id a comma, fails alone with kInvalidArgument. After Close(), and on a read-only
  // store, `done` runs at once on the caller's thread with kUnavailable / kPermissionDenied.
  // TransferRecord::updated_at is set by the store to env->Now() when the record is written.
  virtual void Submit(Batch batch, Done done) = 0;
  // Submit and wait for the commit.
  virtual Status Commit(Batch batch) = 0;
  // Commits queued batches and stops the writer; later Submits fail. Called by the destructor.
  // If the database is failing at that moment, the held batches complete with the error.
  virtual void Close() = 0;

  // Reads.
  virtual Result<std::optional<TransferRecord>> GetTransfer(const std::string& uuid) = 0;
  virtual Result<std::vector<TransferRecord>> UnfinishedTransfers() = 0;  // step != kDone
  // Newest first; streams rows to `row` (return false to stop).
  virtual Status ListTransfers(const TransferFilter& filter,
                               const std::function<bool(const TransferRecord&)>& row) = 0;
  virtual Result<std::vector<DeliveryRecord>> DeliveriesOf(const std::string& uuid) = 0;
  // The delivered (not yet picked up) delivery placed in `recipient`'s /IN as `name`, if any.
  virtual Result<std::optional<DeliveryRecord>> FindDelivered(const std::string& recipient,
                                                              const std::string& name) = 0;
  // Every delivery in state `delivered` (placed, and not yet picked up, expired or recalled),
  // ordered by transfer, then recipient. One indexed read (deliveries_state): its cost is the
  // number of deliveries waiting in the recipients' /IN, not the log's history.
  virtual Result<std::vector<DeliveryRecord>> AllDelivered() = 0;
  // The newest delivery (by delivered_at) ever placed in `recipient`'s /IN as `name`, whatever
  // its state since (picked up, expired, recalled), if any: whose file a download of IN/<name>
  // read, unless the name was freed and taken again meanwhile (the caller judges).
  virtual Result<std::optional<DeliveryRecord>> FindPlaced(const std::string& recipient,
                                                           const std::string& name) = 0;
  // The uuid of `sender`'s transfer of `name` whose receipt was sent last, if any among the
  // sender's 1,000 newest receipts (`receipt_sent` events): the one IN/<name>.sftpreceipt holds,
  // each receipt of a name replacing the one before (contract §5). An older one is not found:
  // the bound keeps a lookup's cost independent of the sender's history.
  virtual Result<std::optional<std::string>> FindLastReceipt(const std::string& sender,
                                                             const std::string& name) = 0;
  // The transfer's events in the order they happened: by time, then seq. An event recorded
  // with an earlier time than its commit's (Batch::AddEvent's `at`) comes before events
  // committed ahead of it.
  virtual Status EventsOf(const std::string& uuid,
                          const std::function<bool(const EventRecord&)>& row) = 0;

  // Operator queries (`fordeler status`, `fordeler accounts`).
  // The route's last delivered transfer and its counts. A rejected or failing transfer often
  // never learned its route (it failed before routing), so failed_24h and rejected_24h count the
  // route sender's transfers whose data area is the route's or not known.
  virtual Result<RouteActivity> RouteActivityOf(const RouteActivityQuery& query) = 0;
  // Deliveries not yet picked up, per (route, recipient) of their transfers.
  virtual Result<std::vector<PendingCount>> PendingDeliveries() = 0;
  // The time of the account's newest `login` event, if any.
  virtual Result<std::optional<TimePoint>> LastLogin(const std::string& account) = 0;

  // Route monitoring (monitor/). The newest delivered transfer (state delivered: placed in every
  // recipient's IN) routed on `route_id`, for `authority` ("" = any), by received_at; what
  // RouteActivityOf reports as the route's last delivery.
  virtual Result<std::optional<LastDelivery>> LastDelivered(const std::string& route_id,
                                                            const std::string& authority) = 0;
  // The newest accepted transfer (state delivering or delivered) routed on `route_id`, for
  // `authority` ("" = any), by received_at.
  virtual Result<std::optional<TransferOutcome>> LastAccepted(const std::string& route_id,
                                                              const std::string& authority) = 0;
  // The newest transfer of `sender` received at or after `since` whose data area is `data_area`
  // or not known, and whose authority is `authority` or not known ("" = any).
  virtual Result<std::optional<TransferOutcome>> LatestOfSender(const std::string& sender,
                                                                const std::string& data_area,
                                                                const std::string& authority,
                                                                TimePoint since) = 0;
  // Deliveries in state `delivered` (placed, not picked up) placed in [from, to), oldest first.
  virtual Result<std::vector<UnfetchedDelivery>> DeliveredBetween(TimePoint from, TimePoint to) = 0;
  // True when an `alert` event of `account` at or after `since` has a detail that is `key` or
  // starts with `key` followed by a space (alerts raised once survive a restart).
  virtual Result<bool> AlertRecorded(const std::string& account, TimePoint since,
                                     const std::string& key) = 0;
  // The time of the oldest `route_watched` event (account "") whose detail is `key`: when
  // fordelerd first watched that schedule (monitor/route_health.h, WatchKey). Unset: never.
  virtual Result<std::optional<TimePoint>> RouteWatchedSince(const std::string& key) = 0;

  // The hash chain (canonical form: audit/chain.h). Head() is the last committed event; the
  // daemon also logs it (`event=audit_head seq=N hash=H`) at Open, after each commit that crosses
  // a multiple of 1,000 events, and at Close.
  virtual Result<ChainHead> Head() = 0;
  // Walks every event in seq order, recomputing hashes and checking seq continuity (from 1) and
  // prev_hash links, and checks each transfer's sha256 and size columns against the digest
  // fields of its events (chain.h DigestFields; audit/digest_check.h); stops at the first bad
  // row. With `head`, also checks that the row at head.seq exists and carries head.hash (rows
  // cut from the end). Problems reported: "hash mismatch", "seq gap: expected N, found M",
  // "prev_hash does not match row N-1", "chain ends at seq L, before the head seq H (rows cut
  // from the end)", "hash at seq N does not match the head", "transfers.sha256 (or size) of
  // transfer U is X, but this event (K) says Y" and "this event (K) names transfer U, which has
  // no row in transfers" (both with `transfer` set). A result that is not ok() means the
  // database could not be read, not that the chain is broken.
  virtual Result<VerifyReport> Verify(const std::optional<ChainHead>& head) = 0;

  // Counts the writer's commits, each one fsync-bearing transaction (for benchmarks and tests);
  // the schema set-up at Open is not counted.
  virtual int64_t commit_count() const = 0;
};

}  // namespace fordeler
