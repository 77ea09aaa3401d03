// DigestCheck: while Verify walks the chained events, checks each transfer's `sha256` and `size`
// columns against the digest fields its events carry (chain.h DigestFields), so that a digest
// edited in the `transfers` row, which the chain does not cover, is found like an edited event.
//
// Cost. The rows are read once, in rowid order, only as far as the events need them: a
// transfer's row is inserted by its first commit and its digest events come after, so the two
// walks advance together. The rows read are kept in a ring of the last kWindow (for the
// transfer's other recipients, and transfers finishing out of order), indexed by uuid; the
// ring's strings are reused, so a row costs no allocation but its index entry. An event whose
// row is neither there nor among the next kLookAhead rows (a redelivery months later, a transfer
// that waited long, the first new event in a log written by an earlier fordeler) finds its row by
// its key, and the walk goes on from the further of the two. Memory stays at the ring whatever
// the log's size.
//
// Not thread-safe: one per Verify.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"

namespace fordeler {

class DigestCheck {
 public:
  // A transfer's row, as far as the check reads it.
  struct Row {
    int64_t rowid = 0;
    std::string uuid;
    bool has_sha256 = false;
    std::string sha256;
    bool has_size = false;
    int64_t size = 0;
  };
  // The transfers table (in one read transaction with the events' walk).
  class Rows {
   public:
    virtual ~Rows() = default;
    // Reads the next row in rowid order after the last one read or sought into `row`; false at
    // the end.
    virtual Result<bool> Next(Row* row) = 0;
    // Next() goes on after `rowid`.
    virtual Status SeekAfter(int64_t rowid) = 0;
    // Reads the row of transfer `uuid` into `row`; false when there is none.
    virtual Result<bool> Find(std::string_view uuid, Row* row) = 0;
  };

  static constexpr size_t kWindow = 4096;
  static constexpr size_t kLookAhead = 1024;

  // REQUIRES: `rows` outlives the check.
  explicit DigestCheck(Rows* rows) : rows_(rows), ring_(kWindow) { index_.reserve(kWindow); }

  // One chained event, in seq order: "" when its digest fields (if any) match its transfer's row,
  // else what is wrong, naming the transfer and the column ("transfers.sha256 of transfer … is …,
  // but this event (delivered) says …"), or that the transfer has no row.
  Result<std::string> Check(std::string_view kind, std::string_view transfer_uuid,
                            std::string_view detail);

  // Events whose digest fields were checked.
  int64_t checked() const { return checked_; }

 private:
  // The row of `uuid`: from the ring, the next rows, or by its key; null when there is none.
  Result<const Row*> RowOf(std::string_view uuid);
  // The slot the next row read goes into: the oldest in the ring, taken out of the index.
  Row* FreeSlot();
  // The row just read into FreeSlot() joins the ring (and the index) as its newest.
  void Keep();

  Rows* rows_;
  std::vector<Row> ring_;
  std::unordered_map<std::string_view, size_t> index_;  // ring_[i].uuid -> i, for the newest i
  uint64_t kept_ = 0;                                   // rows put in the ring so far
  int64_t last_rowid_ = 0;                              // where Next() goes on
  bool at_end_ = false;
  int64_t checked_ = 0;
};

}  // namespace fordeler
