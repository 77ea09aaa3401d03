#include "audit/audit_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "audit/chain.h"
#include "audit/row_codec.h"
#include "audit/sql.h"
#include "core/env.h"
#include "core/names.h"
#include "core/thread_name.h"

namespace fordeler {
namespace {

using std::chrono::milliseconds;

constexpr int64_t kHeadLogInterval = 1000;  // events (contract §10)
constexpr milliseconds kFirstBackoff{10};
constexpr milliseconds kMaxBackoff{1000};

static_assert(static_cast<int>(TransferStep::kDone) == 6,
              "sql.cc's partial index and kWhereUnfinished spell kDone as 6");

// Resets a statement when it goes out of scope, whatever happened to it.
class ScopedReset {
 public:
  explicit ScopedReset(Stmt& stmt) : stmt_(stmt) {}
  ~ScopedReset() { stmt_.Reset(); }

 private:
  Stmt& stmt_;
};

Status Execute(Stmt& stmt, int* rc) {
  ScopedReset reset(stmt);
  return stmt.Run(rc);
}

// What the store refuses before it gets to SQLite (see chain.h and sql.cc).
Status Validate(const Batch& batch) {
  for (const Batch::Op& op : batch.ops()) {
    if (const auto* e = std::get_if<EventRecord>(&op)) {
      if (!ChainableEvent(*e)) {
        return Status::InvalidArgument("audit event kind, transfer or account holds a newline");
      }
    } else if (const auto* t = std::get_if<TransferRecord>(&op)) {
      for (const std::string& id : t->route_ids) {
        if (id.empty() || id.find(',') != std::string::npos) {
          return Status::InvalidArgument("audit: bad route id '" + id + "' for transfer " +
                                         t->uuid);
        }
      }
    }
  }
  return Status::Ok();
}

void LogHead(const ChainHead& head) {
  spdlog::info("event=audit_head seq={} hash={}", head.seq, head.hash);
}

}  // namespace

Result<std::unique_ptr<AuditWriter>> AuditWriter::Start(Db db, Env* env) {
  Statements st;
  struct {
    Stmt* stmt;
    const char* sql;
  } prepares[] = {
      {&st.begin, sql::kBeginImmediate},
      {&st.commit, sql::kCommit},
      {&st.rollback, sql::kRollback},
      {&st.upsert_transfer, sql::kUpsertTransfer},
      {&st.update_transfer_state, sql::kUpdateTransferState},
      {&st.delete_routes, sql::kDeleteTransferRoutes},
      {&st.delete_pending_deliveries, sql::kDeletePendingDeliveries},
      {&st.insert_route, sql::kInsertTransferRoute},
      {&st.upsert_delivery, sql::kUpsertDelivery},
      {&st.insert_event, sql::kInsertEvent},
      {&st.select_delivery_state, sql::kSelectDeliveryState},
  };
  for (auto& p : prepares) {
    auto stmt = db.Prepare(p.sql, /*persistent=*/true);
    if (!stmt.ok()) return stmt.status();
    *p.stmt = std::move(stmt).value();
  }
  ChainHead head;
  auto last = db.Prepare(sql::kSelectHead);
  if (!last.ok()) return last.status();
  auto row = last->Step();
  if (!row.ok()) return row.status();
  if (*row) head = ChainHead{last->Int(0), last->Text(1)};
  LogHead(head);
  return std::unique_ptr<AuditWriter>(new AuditWriter(std::move(db), env, std::move(st), head));
}

AuditWriter::AuditWriter(Db db, Env* env, Statements stmts, ChainHead head)
    : db_(std::move(db)), env_(env), st_(std::move(stmts)), head_(head) {
  {
    MutexLock l(&mu_);
    published_ = head;
  }
  thread_ = std::thread([this] {
    NameThisThread("audit-writer");
    Run();
  });
}

AuditWriter::~AuditWriter() { Close(); }

void AuditWriter::Submit(Batch batch, AuditStore::Done done) {
  Pending p;
  p.batch = std::move(batch);
  p.done = std::move(done);
  p.status = Validate(p.batch);
  p.failed = !p.status.ok();
  {
    MutexLock l(&mu_);
    if (!closing_) {
      queue_.push_back(std::move(p));
      cv_.notify_one();
      return;
    }
  }
  if (p.done) p.done(Status::Unavailable("audit store is closed"));
}

void AuditWriter::Close() {
  if (OnWriterThread()) {  // from a done callback: the writer stops once the queue is drained
    MutexLock l(&mu_);
    closing_ = true;
    return;
  }
  std::lock_guard<std::mutex> guard(close_mu_);
  {
    MutexLock l(&mu_);
    if (closing_ && !thread_.joinable()) return;
    closing_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  LogHead(head());
}

ChainHead AuditWriter::head() {
  MutexLock l(&mu_);
  return published_;
}

void AuditWriter::Run() {
  writer_id_.store(std::this_thread::get_id());
  for (;;) {
    std::vector<Pending> group;
    {
      MutexLock l(&mu_);
      while (queue_.empty() && !closing_) Wait(milliseconds::max());
      if (queue_.empty()) return;  // closing, and everything is done
      group.reserve(queue_.size());
      for (Pending& p : queue_) group.push_back(std::move(p));
      queue_.clear();
    }
    CommitGroup(group);
  }
}

void AuditWriter::CommitGroup(std::vector<Pending>& group) {
  milliseconds backoff = kFirstBackoff;
  for (;;) {
    bool live = std::any_of(group.begin(), group.end(), [](const Pending& p) { return !p.failed; });
    if (!live) break;
    size_t bad = group.size();
    Status s = Attempt(group, &bad);
    if (s.ok()) break;
    if (bad < group.size()) {
      if (s.code() == Status::Code::kAlreadyExists) {  // a DeliveryStateCheck that did not hold
        spdlog::info("event=audit_batch_skipped reason={}", LogValue(s.message()));
      } else {
        spdlog::error("event=audit_batch_failed error={}", LogValue(s.ToString()));
      }
      group[bad].failed = true;
      group[bad].status = s;
      continue;  // the others again, without it
    }
    spdlog::warn("event=audit_retry batches={} backoff_ms={} error={}", group.size(),
                 backoff.count(), LogValue(s.ToString()));
    if (Closing()) {
      for (Pending& p : group) {
        if (!p.failed)
          p.status = Status::Unavailable("audit store closed while failing: " + s.ToString());
        p.failed = true;
      }
      break;
    }
    SleepUnlessClosing(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
  for (Pending& p : group) {
    if (p.done) p.done(p.failed ? p.status : Status::Ok());
  }
}

Status AuditWriter::Attempt(std::vector<Pending>& group, size_t* bad) {
  int rc = 0;
  Status s = Execute(st_.begin, &rc);
  if (!s.ok()) {
    RollbackIfOpen();
    return s;
  }
  ChainHead head = head_;
  for (size_t i = 0; i < group.size(); ++i) {
    if (group[i].failed) continue;
    s = Apply(group[i].batch, &head, &rc);
    if (!s.ok()) {
      if (IsBatchError(rc) || s.code() == Status::Code::kAlreadyExists) *bad = i;
      RollbackIfOpen();
      return s;
    }
  }
  s = Execute(st_.commit, &rc);
  if (!s.ok()) {
    RollbackIfOpen();
    return s;
  }
  commits_.fetch_add(1);
  Published(head);
  return Status::Ok();
}

Status AuditWriter::Apply(const Batch& batch, ChainHead* head, int* rc) {
  for (const Batch::Op& op : batch.ops()) {
    Status s;
    if (const auto* t = std::get_if<TransferRecord>(&op)) {
      s = ApplyTransfer(*t, rc);
    } else if (const auto* d = std::get_if<DeliveryRecord>(&op)) {
      ScopedReset reset(st_.upsert_delivery);
      BindDelivery(st_.upsert_delivery, *d);
      s = st_.upsert_delivery.Run(rc);
    } else if (const auto* check = std::get_if<DeliveryStateCheck>(&op)) {
      s = CheckDeliveryState(*check, rc);
    } else {
      s = ApplyEvent(std::get<EventRecord>(op), head, rc);
    }
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

Status AuditWriter::ApplyTransfer(const TransferRecord& t, int* rc) {
  const TimePoint now = env_->Now();
  Status s;
  bool updated = false;
  {  // the common case: a later step of a transfer recorded before (see kUpdateTransferState)
    ScopedReset reset(st_.update_transfer_state);
    BindTransfer(st_.update_transfer_state, t, now);
    s = st_.update_transfer_state.Run(rc);
    updated = s.ok() && db_.changes() == 1;
  }
  if (s.ok() && !updated) s = RewriteTransfer(t, now, rc);
  if (s.ok() && t.state == TransferState::kRejected) {
    st_.delete_pending_deliveries.Bind(1, std::string_view(t.uuid));
    s = Execute(st_.delete_pending_deliveries, rc);
  }
  return s;
}

// The whole row, and its route rows (a handful, all in one transaction).
Status AuditWriter::RewriteTransfer(const TransferRecord& t, TimePoint now, int* rc) {
  {
    ScopedReset reset(st_.upsert_transfer);
    BindTransfer(st_.upsert_transfer, t, now);
    Status s = st_.upsert_transfer.Run(rc);
    if (!s.ok()) return s;
  }
  st_.delete_routes.Bind(1, std::string_view(t.uuid));
  Status s = Execute(st_.delete_routes, rc);
  std::string received_at = FormatTime(t.received_at);
  for (size_t i = 0; s.ok() && i < t.route_ids.size(); ++i) {
    st_.insert_route.Bind(1, std::string_view(t.uuid));
    st_.insert_route.Bind(2, std::string_view(t.route_ids[i]));
    st_.insert_route.Bind(3, std::string_view(received_at));
    s = Execute(st_.insert_route, rc);
  }
  return s;
}

Status AuditWriter::ApplyEvent(const EventRecord& e, ChainHead* head, int* rc) {
  int64_t seq = head->seq + 1;
  std::string time = FormatTime(e.time == TimePoint{} ? env_->Now() : e.time);
  std::string hash = EventHash(head->hash, seq, time, e.kind, e.transfer_uuid, e.account, e.detail);
  Stmt& st = st_.insert_event;
  st.Bind(1, seq);
  st.Bind(2, std::string_view(time));
  st.Bind(3, std::string_view(e.kind));
  st.Bind(4, std::string_view(e.transfer_uuid));
  st.Bind(5, std::string_view(e.account));
  st.Bind(6, std::string_view(e.detail));
  st.Bind(7, std::string_view(head->hash));
  st.Bind(8, std::string_view(hash));
  Status s = Execute(st, rc);
  if (s.ok()) *head = ChainHead{seq, std::move(hash)};
  return s;
}

// kAlreadyExists (never a SQLite error's code) when the delivery is not in check.state.
Status AuditWriter::CheckDeliveryState(const DeliveryStateCheck& check, int* rc) {
  Stmt& st = st_.select_delivery_state;
  ScopedReset reset(st);
  st.Bind(1, std::string_view(check.transfer_uuid));
  st.Bind(2, std::string_view(check.recipient));
  auto row = st.Step(rc);
  if (!row.ok()) return row.status();
  std::string now = *row ? st.Text(0) : "absent";
  if (now == ToString(check.state)) return Status::Ok();
  return Status::AlreadyExists("the delivery of " + check.transfer_uuid + " to " + check.recipient +
                               " is " + now + ", not " + std::string(ToString(check.state)));
}

void AuditWriter::RollbackIfOpen() {
  if (db_.autocommit()) return;
  Status s = Execute(st_.rollback, nullptr);
  if (!s.ok()) spdlog::warn("event=audit_rollback_failed error={}", LogValue(s.ToString()));
}

void AuditWriter::Published(const ChainHead& head) {
  bool log = head.seq / kHeadLogInterval != head_.seq / kHeadLogInterval;
  head_ = head;
  {
    MutexLock l(&mu_);
    published_ = head;
  }
  if (log) LogHead(head);
}

bool AuditWriter::Closing() {
  MutexLock l(&mu_);
  return closing_;
}

void AuditWriter::SleepUnlessClosing(milliseconds d) {
  MutexLock l(&mu_);
  if (!closing_) Wait(d);
}

// Waits on cv_ for up to `d` (forever for milliseconds::max()), holding mu_ on return.
void AuditWriter::Wait(milliseconds d) {
  std::unique_lock<std::mutex> lock(mu_.native(), std::adopt_lock);
  if (d == milliseconds::max()) {
    cv_.wait(lock);
  } else {
    cv_.wait_for(lock, d);
  }
  lock.release();  // MutexLock still owns mu_
}

}  // namespace fordeler
