// Writers for the two documents fordeler produces (contract §5, §6): the metadata file placed
// beside each delivered file, and the technical receipt returned to the sender. Both use the
// literal "ns2" prefix for the SFTP namespace with unqualified children, exactly as existing
// clients parse them (xmltodict without namespace processing). Pure functions; thread-safe.
//
// Output: `<?xml version="1.0" encoding="UTF-8"?>`, then the root with two-space indentation,
// one element per line. Values are written as text (& < > " ' as entities, CR as &#13;), so
// every value reads back unchanged, except what XML cannot carry: bytes that are not UTF-8
// become U+FFFD and control characters other than TAB, LF, CR are dropped. An optional field
// that is unset is omitted; so is Sha256 when empty.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/error_codes.h"
#include "metadata/trigger.h"

namespace fordeler {

enum class MetadataRoot { kTrigger, kFileMetadata };  // ns2:Trigger or ns2:FileMetadata

struct MetadataFields {
  MetadataRoot root = MetadataRoot::kTrigger;
  std::string file_transfer_uuid;
  std::string file_name;  // as placed in the recipient's /IN
  uint64_t size_in_bytes = 0;
  std::string sender;
  std::optional<std::string> senders_file_id;
  std::string recipient;  // this recipient's account id
  std::string sha256;     // lowercase hex
  // SFTPDynamicRoutingInfo: always present. inf_ref = the data area's fetch service.
  std::string inf_ref;
  std::optional<std::string> sender_it_system;
  std::string sender_authority;
  std::optional<std::string> recipient_it_system;
  std::optional<std::string> recipient_authority;
  std::optional<std::string> transaction_id;
  std::optional<std::string> sender_timestamp;
  std::vector<std::string> route_parameters;
};

// The metadata document: root, FileTransferUUID, FileDescriptor (FileName, SizeInBytes, Sender,
// SendersFileId?, Recipients, Sha256), FileContentDescriptor/SFTPDynamicRoutingInfo (InfRef,
// SenderIt-system?, SenderAuthority, TransactionId?, SenderTimestamp?, RecipientIt-system?,
// RecipientAuthority?, RouteParameterList?).
std::string WriteMetadata(const MetadataFields& fields);

struct ReceiptFields {
  std::string file_transfer_uuid;
  std::optional<std::string> senders_file_id;
  std::optional<Rejection> error;  // unset: SUCCESS
};

// ns2:TechnicalReceipt with FileTransferUUID, SendersFileId?, then Receipt/Message SUCCESS or
// ErrorMessage (ErrorCode, ErrorCodeDescription, ErrorDescription — never empty: an empty
// description is written as the code's name, and an error with code kNone as 5001
// INTERNAL_ERROR, since every receipt carries a code of contract §7).
std::string WriteReceipt(const ReceiptFields& fields);

}  // namespace fordeler
