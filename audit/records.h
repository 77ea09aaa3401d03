// The rows of the audit log: transfers, their deliveries, and the hash-chained events.
// Plain data. Times are UTC; stored as RFC 3339 text with milliseconds.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fordeler {

using TimePoint = std::chrono::system_clock::time_point;

// What operators and `--json` see (contract §10).
enum class TransferState { kReceived, kDelivering, kDelivered, kRejected };

// Where the delivery state machine stands. Each step is recorded before the work of the next one
// starts, so recovery resumes from `step` (docs/architecture.md).
enum class TransferStep {
  kReceived = 0,  // trigger seen; recorded before it is taken from /OUT
  kTriggerTaken,  // trigger moved to the spool; waiting for / checking the data file
  kAccepted,      // checks passed, recipients resolved; data file about to be spooled
  kSpooled,       // data in the spool (0440), digest known; placing in each /IN
  kPlaced,        // every recipient has data and metadata
  kReceiptSent,   // receipt in the sender's /IN
  kDone,          // /OUT cleaned; nothing left to do
  kRejecting,     // rejected: moving files to quarantine, then the receipt
};

enum class DeliveryState { kPending, kDelivered, kPickedUp, kExpired, kRecalled };

struct TransferRecord {
  std::string uuid;
  std::string sender;        // account id
  std::string trigger_name;  // "<name>.trigger" as found in /OUT
  std::string name;          // <name>
  std::optional<std::string> senders_file_id;
  std::optional<uint64_t> size;
  std::optional<std::string> sha256;  // lowercase hex
  std::optional<std::string> data_area;
  std::optional<std::string> authority;
  std::vector<std::string> route_ids;
  TransferState state = TransferState::kReceived;
  TransferStep step = TransferStep::kReceived;
  int error_code = 0;  // 0: none
  std::string error_description;
  std::string trigger_xml;  // the trigger as received (≤ 64 KiB)
  std::string receipt_xml;  // the receipt sent, once sent
  TimePoint received_at{};
  TimePoint updated_at{};
};

// A transfer unfinished this long after it was received needs the operator: `fordeler status`
// lists it (and exits 1), and the monitor raises a `stuck` alert for it.
inline constexpr std::chrono::minutes kStuckAfter{5};

struct DeliveryRecord {
  std::string transfer_uuid;
  std::string recipient;   // account id
  std::string name_in_in;  // file name placed in the recipient's /IN ("" until chosen)
  DeliveryState state = DeliveryState::kPending;
  std::optional<TimePoint> delivered_at;
  std::optional<TimePoint> picked_up_at;
  std::optional<TimePoint> expired_at;
  std::optional<TimePoint> recalled_at;
};

struct EventRecord {
  int64_t seq = 0;
  TimePoint time{};
  std::string kind;           // received, rejected, delivered, receipt_sent, picked_up, ...
  std::string transfer_uuid;  // "" when not about a transfer (login, ...)
  std::string account;
  std::string detail;  // key=value text
  std::string hash;    // hex SHA-256 over the previous hash and this row
};

std::string_view ToString(TransferState s);
std::string_view ToString(TransferStep s);
std::string_view ToString(DeliveryState s);
bool ParseTransferState(std::string_view text, TransferState* out);
bool ParseDeliveryState(std::string_view text, DeliveryState* out);

// RFC 3339 UTC with milliseconds: "2026-11-22T02:00:00.000Z".
std::string FormatTime(TimePoint t);
bool ParseTime(std::string_view text, TimePoint* out);

}  // namespace fordeler
