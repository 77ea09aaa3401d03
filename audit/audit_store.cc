#include "audit/audit_store.h"

#include <future>

#include "audit/audit_writer.h"
#include "audit/list_query.h"
#include "audit/read_pool.h"
#include "audit/row_codec.h"
#include "audit/schema.h"
#include "audit/sql.h"
#include "audit/verify.h"

namespace fordeler {

Batch& Batch::PutTransfer(TransferRecord t) {
  ops_.emplace_back(std::move(t));
  return *this;
}

Batch& Batch::PutDelivery(DeliveryRecord d) {
  ops_.emplace_back(std::move(d));
  return *this;
}

Batch& Batch::Append(Batch other) {
  ops_.insert(ops_.end(), std::make_move_iterator(other.ops_.begin()),
              std::make_move_iterator(other.ops_.end()));
  return *this;
}

Batch& Batch::RequireDeliveryState(std::string transfer_uuid, std::string recipient,
                                   DeliveryState state) {
  ops_.emplace_back(DeliveryStateCheck{std::move(transfer_uuid), std::move(recipient), state});
  return *this;
}

Batch& Batch::AddEvent(std::string kind, std::string transfer_uuid, std::string account,
                       std::string detail, std::optional<TimePoint> at) {
  EventRecord e;
  e.time = at.value_or(TimePoint{});  // the epoch: the commit's time (AuditWriter::ApplyEvent)
  e.kind = std::move(kind);
  e.transfer_uuid = std::move(transfer_uuid);
  e.account = std::move(account);
  e.detail = std::move(detail);
  ops_.emplace_back(std::move(e));
  return *this;
}

namespace {

// Reads run on pooled read-only connections; writes go to the AuditWriter (none when read-only).
class SqliteAuditStore final : public AuditStore {
 public:
  SqliteAuditStore(std::unique_ptr<ReadPool> pool, std::unique_ptr<AuditWriter> writer)
      : pool_(std::move(pool)), writer_(std::move(writer)) {}
  ~SqliteAuditStore() override { Close(); }

  void Submit(Batch batch, Done done) override {
    if (writer_) return writer_->Submit(std::move(batch), std::move(done));
    if (done) done(Status::PermissionDenied("audit store is open read-only"));
  }

  Status Commit(Batch batch) override {
    if (writer_ && writer_->OnWriterThread()) {
      return Status::Internal("AuditStore::Commit called from a done callback");
    }
    std::promise<Status> promise;
    auto future = promise.get_future();
    Submit(std::move(batch), [&promise](const Status& s) { promise.set_value(s); });
    return future.get();
  }

  void Close() override {
    if (writer_) writer_->Close();
  }

  Result<std::optional<TransferRecord>> GetTransfer(const std::string& uuid) override;
  Result<std::vector<TransferRecord>> UnfinishedTransfers() override;
  Status ListTransfers(const TransferFilter& filter,
                       const std::function<bool(const TransferRecord&)>& row) override;
  Result<std::vector<DeliveryRecord>> DeliveriesOf(const std::string& uuid) override;
  Result<std::optional<DeliveryRecord>> FindDelivered(const std::string& recipient,
                                                      const std::string& name) override;
  Result<std::vector<DeliveryRecord>> AllDelivered() override;
  Result<std::optional<DeliveryRecord>> FindPlaced(const std::string& recipient,
                                                   const std::string& name) override;
  Result<std::optional<std::string>> FindLastReceipt(const std::string& sender,
                                                     const std::string& name) override;
  Status EventsOf(const std::string& uuid,
                  const std::function<bool(const EventRecord&)>& row) override;
  Result<ChainHead> Head() override;
  Result<VerifyReport> Verify(const std::optional<ChainHead>& head) override;
  Result<RouteActivity> RouteActivityOf(const RouteActivityQuery& query) override;
  Result<std::vector<PendingCount>> PendingDeliveries() override;
  Result<std::optional<TimePoint>> LastLogin(const std::string& account) override;
  Result<std::optional<LastDelivery>> LastDelivered(const std::string& route_id,
                                                    const std::string& authority) override;
  Result<std::optional<TransferOutcome>> LastAccepted(const std::string& route_id,
                                                      const std::string& authority) override;
  Result<std::optional<TransferOutcome>> LatestOfSender(const std::string& sender,
                                                        const std::string& data_area,
                                                        const std::string& authority,
                                                        TimePoint since) override;
  Result<std::vector<UnfetchedDelivery>> DeliveredBetween(TimePoint from, TimePoint to) override;
  Result<bool> AlertRecorded(const std::string& account, TimePoint since,
                             const std::string& key) override;
  Result<std::optional<TimePoint>> RouteWatchedSince(const std::string& key) override;
  int64_t commit_count() const override { return writer_ ? writer_->commit_count() : 0; }

 private:
  // Runs `sql` (parameters bound by `bind`) on a pooled connection and passes each row to `row`
  // until it returns false or fails.
  Status Query(std::string_view sql, const std::function<void(Stmt&)>& bind,
               const std::function<Status(const Stmt&, bool* more)>& row);
  // Runs a query returning outcome columns (sql.cc), binding `texts` as ?1, ?2, ...
  Result<std::optional<TransferOutcome>> Outcome(std::string_view sql,
                                                 const std::vector<std::string>& texts);
  // Runs a query whose one row holds one integer (a COUNT), binding `texts` as ?1, ?2, ...
  Result<int64_t> Count(std::string_view sql, const std::vector<std::string>& texts);
  // Runs a query whose one row holds one time or NULL (a MIN or MAX), binding `text` as ?1.
  Result<std::optional<TimePoint>> OptionalTime(std::string_view sql, const std::string& text);
  // Runs a query returning at most one delivery, binding `recipient` and `name` as ?1, ?2.
  Result<std::optional<DeliveryRecord>> OneDelivery(std::string_view sql,
                                                    const std::string& recipient,
                                                    const std::string& name);
  template <typename Record>
  Status Collect(std::string_view sql, const std::function<void(Stmt&)>& bind,
                 Result<Record> (*read)(const Stmt&), std::vector<Record>* out);

  std::unique_ptr<ReadPool> pool_;
  std::unique_ptr<AuditWriter> writer_;
};

Status SqliteAuditStore::Query(std::string_view sql, const std::function<void(Stmt&)>& bind,
                               const std::function<Status(const Stmt&, bool* more)>& row) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  auto stmt = lease->db().Prepare(sql);
  if (!stmt.ok()) return stmt.status();
  if (bind) bind(*stmt);
  for (bool more = true; more;) {
    auto step = stmt->Step();
    if (!step.ok()) return step.status();
    if (!*step) break;
    Status s = row(*stmt, &more);
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

template <typename Record>
Status SqliteAuditStore::Collect(std::string_view sql, const std::function<void(Stmt&)>& bind,
                                 Result<Record> (*read)(const Stmt&), std::vector<Record>* out) {
  return Query(sql, bind, [&](const Stmt& stmt, bool*) {
    auto r = read(stmt);
    if (!r.ok()) return r.status();
    out->push_back(std::move(r).value());
    return Status::Ok();
  });
}

Result<std::optional<TransferRecord>> SqliteAuditStore::GetTransfer(const std::string& uuid) {
  std::vector<TransferRecord> found;
  Status s = Collect<TransferRecord>(
      std::string(sql::kSelectTransferColumns) + sql::kWhereUuid,
      [&](Stmt& st) { st.Bind(1, std::string_view(uuid)); }, &ReadTransfer, &found);
  if (!s.ok()) return s;
  if (found.empty()) return std::optional<TransferRecord>();
  return std::optional<TransferRecord>(std::move(found.front()));
}

Result<std::vector<TransferRecord>> SqliteAuditStore::UnfinishedTransfers() {
  std::vector<TransferRecord> out;
  Status s = Collect<TransferRecord>(
      std::string(sql::kSelectTransferColumns) + sql::kWhereUnfinished + sql::kOrderByReceived,
      nullptr, &ReadTransfer, &out);
  if (!s.ok()) return s;
  return out;
}

Status SqliteAuditStore::ListTransfers(const TransferFilter& filter,
                                       const std::function<bool(const TransferRecord&)>& row) {
  ListQuery q = BuildListQuery(filter);
  return Query(
      q.sql, [&](Stmt& st) { q.BindTo(st); },
      [&](const Stmt& st, bool* more) {
        auto t = ReadTransfer(st);
        if (!t.ok()) return t.status();
        *more = row(*t);
        return Status::Ok();
      });
}

Result<std::vector<DeliveryRecord>> SqliteAuditStore::DeliveriesOf(const std::string& uuid) {
  std::vector<DeliveryRecord> out;
  Status s = Collect<DeliveryRecord>(
      sql::kSelectDeliveriesOf, [&](Stmt& st) { st.Bind(1, std::string_view(uuid)); },
      &ReadDelivery, &out);
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<DeliveryRecord>> SqliteAuditStore::FindDelivered(const std::string& recipient,
                                                                      const std::string& name) {
  return OneDelivery(sql::kSelectDelivered, recipient, name);
}

Result<std::vector<DeliveryRecord>> SqliteAuditStore::AllDelivered() {
  std::vector<DeliveryRecord> out;
  Status s = Collect<DeliveryRecord>(sql::kSelectAllDelivered, nullptr, &ReadDelivery, &out);
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<DeliveryRecord>> SqliteAuditStore::FindPlaced(const std::string& recipient,
                                                                   const std::string& name) {
  return OneDelivery(sql::kSelectPlaced, recipient, name);
}

Result<std::optional<std::string>> SqliteAuditStore::FindLastReceipt(const std::string& sender,
                                                                     const std::string& name) {
  std::optional<std::string> uuid;
  Status s = Query(
      sql::kSelectLastReceipt,
      [&](Stmt& st) {
        st.Bind(1, std::string_view(sender));
        st.Bind(2, std::string_view(name));
      },
      [&](const Stmt& st, bool* more) {
        uuid = st.Text(0);
        *more = false;
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return uuid;
}

Result<std::optional<DeliveryRecord>> SqliteAuditStore::OneDelivery(std::string_view sql,
                                                                    const std::string& recipient,
                                                                    const std::string& name) {
  std::vector<DeliveryRecord> found;
  Status s = Collect<DeliveryRecord>(
      sql,
      [&](Stmt& st) {
        st.Bind(1, std::string_view(recipient));
        st.Bind(2, std::string_view(name));
      },
      &ReadDelivery, &found);
  if (!s.ok()) return s;
  if (found.empty()) return std::optional<DeliveryRecord>();
  return std::optional<DeliveryRecord>(std::move(found.front()));
}

Status SqliteAuditStore::EventsOf(const std::string& uuid,
                                  const std::function<bool(const EventRecord&)>& row) {
  return Query(
      sql::kSelectEventsOf, [&](Stmt& st) { st.Bind(1, std::string_view(uuid)); },
      [&](const Stmt& st, bool* more) {
        auto e = ReadEvent(st);
        if (!e.ok()) return e.status();
        *more = row(*e);
        return Status::Ok();
      });
}

Result<ChainHead> SqliteAuditStore::Head() {
  if (writer_) return writer_->head();
  ChainHead head;
  Status s = Query(sql::kSelectHead, nullptr, [&](const Stmt& st, bool* more) {
    head = ChainHead{st.Int(0), st.Text(1)};
    *more = false;
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return head;
}

Result<VerifyReport> SqliteAuditStore::Verify(const std::optional<ChainHead>& head) {
  auto lease = pool_->Acquire();
  if (!lease.ok()) return lease.status();
  return VerifyLog(lease->db(), head);
}

Result<int64_t> SqliteAuditStore::Count(std::string_view sql,
                                        const std::vector<std::string>& texts) {
  int64_t count = 0;
  Status s = Query(
      sql,
      [&](Stmt& st) {
        for (size_t i = 0; i < texts.size(); ++i) {
          st.Bind(static_cast<int>(i + 1), std::string_view(texts[i]));
        }
      },
      [&](const Stmt& st, bool* more) {
        count = st.Int(0);
        *more = false;
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return count;
}

Result<std::optional<LastDelivery>> SqliteAuditStore::LastDelivered(const std::string& route_id,
                                                                    const std::string& authority) {
  std::optional<LastDelivery> found;
  Status s = Query(
      sql::kSelectLastDelivery,
      [&](Stmt& st) {
        st.Bind(1, std::string_view(route_id));
        st.Bind(2, std::string_view(authority));
      },
      [&](const Stmt& st, bool* more) {
        LastDelivery last{st.Text(0), st.Text(1), std::nullopt};
        TimePoint at;
        if (!st.IsNull(2) && ParseTime(st.Text(2), &at)) last.placed_at = at;
        found = std::move(last);
        *more = false;
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return found;
}

Result<RouteActivity> SqliteAuditStore::RouteActivityOf(const RouteActivityQuery& q) {
  RouteActivity a;
  auto last = LastDelivered(q.route_id, "");
  if (!last.ok()) return last.status();
  if (*last) {
    a.last_delivery_uuid = (*last)->uuid;
    a.last_delivery_name = (*last)->name;
    a.last_delivery_at = (*last)->placed_at;
  }
  std::string today = FormatTime(q.today_since), day = FormatTime(q.day_since);
  auto delivered = Count(sql::kCountDeliveredSince, {q.route_id, today});
  if (!delivered.ok()) return delivered.status();
  auto failed = Count(sql::kCountFailedSince, {q.sender, day, q.data_area});
  if (!failed.ok()) return failed.status();
  auto rejected = Count(sql::kCountRejectedSince, {q.sender, day, q.data_area});
  if (!rejected.ok()) return rejected.status();
  a.today = *delivered;
  a.failed_24h = *failed;
  a.rejected_24h = *rejected;
  return a;
}

Result<std::vector<PendingCount>> SqliteAuditStore::PendingDeliveries() {
  std::vector<PendingCount> out;
  Status s = Query(sql::kSelectPendingByRoute, nullptr, [&](const Stmt& st, bool*) {
    out.push_back(PendingCount{st.Text(0), st.Text(1), st.Int(2)});
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Result<std::optional<TimePoint>> SqliteAuditStore::OptionalTime(std::string_view sql,
                                                                const std::string& text) {
  std::optional<TimePoint> found;
  Status s = Query(
      sql, [&](Stmt& st) { st.Bind(1, std::string_view(text)); },
      [&](const Stmt& st, bool* more) {
        TimePoint at;
        if (!st.IsNull(0) && ParseTime(st.Text(0), &at)) found = at;
        *more = false;
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return found;
}

Result<std::optional<TimePoint>> SqliteAuditStore::LastLogin(const std::string& account) {
  return OptionalTime(sql::kSelectLastLogin, account);
}

void BindTexts(Stmt& st, const std::vector<std::string>& texts) {
  for (size_t i = 0; i < texts.size(); ++i) {
    st.Bind(static_cast<int>(i + 1), std::string_view(texts[i]));
  }
}

Result<std::optional<TransferOutcome>> SqliteAuditStore::Outcome(
    std::string_view sql, const std::vector<std::string>& texts) {
  std::optional<TransferOutcome> found;
  Status s = Query(
      sql, [&](Stmt& st) { BindTexts(st, texts); },
      [&](const Stmt& st, bool* more) {
        TransferOutcome o;
        o.uuid = st.Text(0);
        o.name = st.Text(1);
        ParseTransferState(st.Text(2), &o.state);
        o.error_code = st.IsNull(3) ? 0 : static_cast<int>(st.Int(3));
        o.failed = st.Int(4) != 0;
        ParseTime(st.Text(5), &o.received_at);
        found = std::move(o);
        *more = false;
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return found;
}

Result<std::optional<TransferOutcome>> SqliteAuditStore::LastAccepted(
    const std::string& route_id, const std::string& authority) {
  return Outcome(sql::kSelectLastAccepted, {route_id, authority});
}

Result<std::optional<TransferOutcome>> SqliteAuditStore::LatestOfSender(
    const std::string& sender, const std::string& data_area, const std::string& authority,
    TimePoint since) {
  return Outcome(sql::kSelectLatestOfSender, {sender, FormatTime(since), data_area, authority});
}

Result<std::vector<UnfetchedDelivery>> SqliteAuditStore::DeliveredBetween(TimePoint from,
                                                                          TimePoint to) {
  std::vector<UnfetchedDelivery> out;
  Status s = Query(
      sql::kSelectDeliveredBetween,
      [&](Stmt& st) {
        BindTexts(st, {FormatTime(from), FormatTime(to)});
      },
      [&](const Stmt& st, bool*) {
        UnfetchedDelivery d{st.Text(0), st.Text(1), st.Text(2), st.Text(3), st.Text(4), {}, {}};
        ParseTime(st.Text(5), &d.delivered_at);
        d.authority = st.OptionalText(6).value_or("");
        out.push_back(std::move(d));
        return Status::Ok();
      });
  if (!s.ok()) return s;
  return out;
}

Result<bool> SqliteAuditStore::AlertRecorded(const std::string& account, TimePoint since,
                                             const std::string& key) {
  auto count = Count(sql::kSelectAlertRecorded, {account, FormatTime(since), key});
  if (!count.ok()) return count.status();
  return *count != 0;
}

Result<std::optional<TimePoint>> SqliteAuditStore::RouteWatchedSince(const std::string& key) {
  return OptionalTime(sql::kSelectRouteWatched, key);
}

}  // namespace

Result<std::unique_ptr<AuditStore>> AuditStore::Open(const std::string& path, Env* env,
                                                     Options options) {
  std::unique_ptr<AuditWriter> writer;
  if (!options.read_only) {
    auto db = OpenWriteConnection(path, options.busy_timeout_ms);
    if (!db.ok()) return db.status();
    auto started = AuditWriter::Start(std::move(db).value(), env);
    if (!started.ok()) return started.status();
    writer = std::move(started).value();
  }
  auto pool = std::make_unique<ReadPool>(path, options.busy_timeout_ms);
  {
    auto first = pool->Acquire();  // reports a missing, locked or too new database now
    if (!first.ok()) return first.status();
  }
  return std::unique_ptr<AuditStore>(new SqliteAuditStore(std::move(pool), std::move(writer)));
}

}  // namespace fordeler
