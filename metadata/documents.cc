#include "metadata/documents.h"

#include <string_view>

#include "metadata/xml_text.h"

namespace fordeler {
namespace {

constexpr std::string_view kDeclaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

// Pretty-printed XML with two-space indentation: the document is built start to end.
class XmlOut {
 public:
  XmlOut() { text_ = kDeclaration; }

  void OpenRoot(std::string_view root) {
    text_ += "<ns2:";
    text_ += root;
    text_ += " xmlns:ns2=\"";
    text_ += kSftpNamespace;
    text_ += "\">\n";
    ++depth_;
  }

  void Open(std::string_view tag) {
    Indent();
    text_ += "<" + std::string(tag) + ">\n";
    ++depth_;
  }

  void Close(std::string_view tag) {
    --depth_;
    Indent();
    text_ += "</" + std::string(tag) + ">\n";
  }

  void Leaf(std::string_view tag, std::string_view value) {
    Indent();
    text_ += "<" + std::string(tag) + ">";
    AppendXmlEscaped(value, &text_);
    text_ += "</" + std::string(tag) + ">\n";
  }

  void OptionalLeaf(std::string_view tag, const std::optional<std::string>& value) {
    if (value) Leaf(tag, *value);
  }

  std::string Take() { return std::move(text_); }

 private:
  void Indent() { text_.append(2 * static_cast<size_t>(depth_), ' '); }

  std::string text_;
  int depth_ = 0;
};

void WriteFileDescriptor(const MetadataFields& fields, XmlOut* out) {
  out->Open("FileDescriptor");
  out->Leaf("FileName", fields.file_name);
  out->Leaf("SizeInBytes", std::to_string(fields.size_in_bytes));
  out->Leaf("Sender", fields.sender);
  out->OptionalLeaf("SendersFileId", fields.senders_file_id);
  out->Leaf("Recipients", fields.recipient);
  if (!fields.sha256.empty()) out->Leaf("Sha256", fields.sha256);
  out->Close("FileDescriptor");
}

void WriteRoutingInfo(const MetadataFields& fields, XmlOut* out) {
  out->Open("FileContentDescriptor");
  out->Open("SFTPDynamicRoutingInfo");
  out->Leaf("InfRef", fields.inf_ref);
  out->OptionalLeaf("SenderIt-system", fields.sender_it_system);
  out->Leaf("SenderAuthority", fields.sender_authority);
  out->OptionalLeaf("TransactionId", fields.transaction_id);
  out->OptionalLeaf("SenderTimestamp", fields.sender_timestamp);
  out->OptionalLeaf("RecipientIt-system", fields.recipient_it_system);
  out->OptionalLeaf("RecipientAuthority", fields.recipient_authority);
  if (!fields.route_parameters.empty()) {
    out->Open("RouteParameterList");
    for (const std::string& parameter : fields.route_parameters) {
      out->Leaf("RouteParameter", parameter);
    }
    out->Close("RouteParameterList");
  }
  out->Close("SFTPDynamicRoutingInfo");
  out->Close("FileContentDescriptor");
}

void WriteError(const Rejection& error, XmlOut* out) {
  // Every receipt carries a code of contract §7: a Rejection without one is fordeler's fault.
  const ErrorCode code = error.code == ErrorCode::kNone ? ErrorCode::kInternalError : error.code;
  out->Open("ErrorMessage");
  out->Leaf("ErrorCode", std::to_string(static_cast<int>(code)));
  out->Leaf("ErrorCodeDescription", ErrorName(code));
  out->Leaf("ErrorDescription",
            error.description.empty() ? ErrorName(code) : std::string_view(error.description));
  out->Close("ErrorMessage");
}

}  // namespace

std::string WriteMetadata(const MetadataFields& fields) {
  const std::string_view root =
      fields.root == MetadataRoot::kFileMetadata ? "FileMetadata" : "Trigger";
  XmlOut out;
  out.OpenRoot(root);
  out.Leaf("FileTransferUUID", fields.file_transfer_uuid);
  WriteFileDescriptor(fields, &out);
  WriteRoutingInfo(fields, &out);
  out.Close("ns2:" + std::string(root));
  return out.Take();
}

std::string WriteReceipt(const ReceiptFields& fields) {
  XmlOut out;
  out.OpenRoot("TechnicalReceipt");
  out.Leaf("FileTransferUUID", fields.file_transfer_uuid);
  out.OptionalLeaf("SendersFileId", fields.senders_file_id);
  if (fields.error) {
    WriteError(*fields.error, &out);
  } else {
    out.Open("Receipt");
    out.Leaf("Message", "SUCCESS");
    out.Close("Receipt");
  }
  out.Close("ns2:TechnicalReceipt");
  return out.Take();
}

}  // namespace fordeler
