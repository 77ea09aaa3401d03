#include "audit/verify.h"

#include "audit/chain.h"
#include "audit/digest_check.h"
#include "audit/sql.h"

namespace fordeler {

namespace {

// The transfers table as DigestCheck reads it, on Verify's connection (so in the snapshot of the
// events' walk, whose statement stays active throughout).
class TransferDigestRows final : public DigestCheck::Rows {
 public:
  explicit TransferDigestRows(Db& db) : db_(db) {}

  Result<bool> Next(DigestCheck::Row* row) override {
    if (!walk_) {
      auto st = db_.Prepare(sql::kSelectTransferDigestsAfter);
      if (!st.ok()) return st.status();
      walk_ = std::move(*st);
      walk_->Bind(1, after_);
    }
    return Read(*walk_, row);
  }
  Status SeekAfter(int64_t rowid) override {
    after_ = rowid;
    walk_.reset();
    return Status::Ok();
  }
  Result<bool> Find(std::string_view uuid, DigestCheck::Row* row) override {
    if (!find_) {
      auto st = db_.Prepare(sql::kSelectTransferDigest);
      if (!st.ok()) return st.status();
      find_ = std::move(*st);
    }
    find_->Reset();
    find_->Bind(1, uuid);
    return Read(*find_, row);
  }

 private:
  // Steps `st` and reads its row (rowid, uuid, sha256, size) into `row`, reusing its strings.
  static Result<bool> Read(Stmt& st, DigestCheck::Row* row) {
    auto step = st.Step();
    if (!step.ok() || !*step) return step;
    row->rowid = st.Int(0);
    row->uuid.assign(st.TextView(1));
    row->has_sha256 = !st.IsNull(2);
    row->sha256.assign(st.TextView(2));
    row->has_size = !st.IsNull(3);
    row->size = st.Int(3);
    return true;
  }

  Db& db_;
  int64_t after_ = 0;
  std::optional<Stmt> walk_, find_;
};

}  // namespace

// One walk of the events, in seq order; the columns are read in place (TextView): a log has
// 300,000 rows and more.
Result<VerifyReport> VerifyLog(Db& db, const std::optional<ChainHead>& head) {
  auto events = db.Prepare(sql::kSelectAllEvents);
  if (!events.ok()) return events.status();
  TransferDigestRows rows(db);
  DigestCheck digests(&rows);
  ChainVerifier verifier(head);
  for (;;) {
    auto step = events->Step();
    if (!step.ok()) return step.status();
    if (!*step) break;
    const Stmt& st = *events;
    int64_t seq = st.Int(0);
    std::string_view kind = st.TextView(2), uuid = st.TextView(3), detail = st.TextView(5);
    verifier.Row(seq, st.TextView(1), kind, uuid, st.TextView(4), detail, st.TextView(7),
                 st.TextView(6));
    if (verifier.failed()) break;
    auto problem = digests.Check(kind, uuid, detail);  // the row is as chained: its fields count
    if (!problem.ok()) return problem.status();
    if (!problem->empty()) {
      verifier.Fail(seq, std::move(*problem), std::string(uuid));
      break;
    }
  }
  VerifyReport report = verifier.Finish();
  report.digests = digests.checked();
  return report;
}

}  // namespace fordeler
