// AuditWriter: the single writer of an audit database, doing group commit.
//
// One thread owns the write connection. It takes every batch queued since its last commit, applies
// them in submission order inside one BEGIN IMMEDIATE ... COMMIT, and then runs each batch's
// `done` (on the writer thread, in submission order). Events get their seq (head + 1), time
// (env->Now(), unless the batch gave one: Batch::AddEvent) and hash (chain.h) as they are
// applied; the chain head lives in memory, loaded at start.
//
// Failures. A batch whose own content breaks a constraint (a bug in the caller) fails alone: the
// transaction is rolled back, that batch's `done` gets the error, and the group is applied again
// without it. A batch whose DeliveryStateCheck does not hold is skipped the same way
// (kAlreadyExists). Any other failure (busy, locked, read-only, I/O, full disk) rolls back, logs
// `event=audit_retry`, sleeps (10 ms doubling to 1 s) and retries the same group; nothing is
// dropped. Only Close() while the database is failing completes the held batches with the error
// (after one more attempt). Submit() after Close() runs `done` at once, on the caller's thread,
// with kUnavailable.
//
// Thread safety: Submit, Close, head and commit_count may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "audit/audit_store.h"
#include "audit/sqlite.h"
#include "core/mutex.h"

namespace fordeler {

class AuditWriter {
 public:
  // Takes over `db` (an open write connection: schema.h) and starts the writer thread.
  static Result<std::unique_ptr<AuditWriter>> Start(Db db, Env* env);
  ~AuditWriter();  // Close()
  AuditWriter(const AuditWriter&) = delete;
  AuditWriter& operator=(const AuditWriter&) = delete;

  void Submit(Batch batch, AuditStore::Done done) EXCLUDES(mu_);
  // Commits what is queued and stops the writer thread. Idempotent. From a done callback it only
  // marks the writer closing (the thread ends once the queue is drained; the destructor joins).
  void Close() EXCLUDES(mu_);

  ChainHead head() EXCLUDES(mu_);  // as of the last commit
  int64_t commit_count() const { return commits_.load(); }
  bool OnWriterThread() const { return std::this_thread::get_id() == writer_id_.load(); }

 private:
  struct Pending {
    Batch batch;
    AuditStore::Done done;
    bool failed = false;
    Status status;  // the error, when failed
  };
  struct Statements {
    Stmt begin, commit, rollback;
    Stmt upsert_transfer, update_transfer_state, delete_routes, insert_route, upsert_delivery,
        insert_event, delete_pending_deliveries, select_delivery_state;
  };

  AuditWriter(Db db, Env* env, Statements stmts, ChainHead head);
  void Run() EXCLUDES(mu_);
  void CommitGroup(std::vector<Pending>& group) EXCLUDES(mu_);
  // One transaction over the live batches. On a batch's own error, *bad is its index.
  Status Attempt(std::vector<Pending>& group, size_t* bad);
  Status Apply(const Batch& batch, ChainHead* head, int* rc);
  Status ApplyTransfer(const TransferRecord& t, int* rc);
  Status RewriteTransfer(const TransferRecord& t, TimePoint now, int* rc);
  Status ApplyEvent(const EventRecord& e, ChainHead* head, int* rc);
  Status CheckDeliveryState(const DeliveryStateCheck& check, int* rc);
  void RollbackIfOpen();
  void Published(const ChainHead& head) EXCLUDES(mu_);
  bool Closing() EXCLUDES(mu_);
  void SleepUnlessClosing(std::chrono::milliseconds d) EXCLUDES(mu_);
  void Wait(std::chrono::milliseconds d) REQUIRES(mu_);

  Db db_;
  Env* const env_;
  Statements st_;
  ChainHead head_;  // written by the writer thread only (and by Start, before it runs)
  std::atomic<int64_t> commits_{0};

  Mutex mu_;
  std::condition_variable cv_;  // signalled on a Submit and on Close
  std::deque<Pending> queue_ GUARDED_BY(mu_);
  bool closing_ GUARDED_BY(mu_) = false;
  ChainHead published_ GUARDED_BY(mu_);

  std::atomic<std::thread::id> writer_id_{};
  std::mutex close_mu_;  // serialises Close
  std::thread thread_;
};

}  // namespace fordeler
