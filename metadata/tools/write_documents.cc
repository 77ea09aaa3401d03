// fordeler_write_documents_for_test: prints one sample document to stdout, for
// metadata/xmltodict_check.py (not installed). Usage:
//   metadata RECIPIENT          ns2:Trigger metadata for RECIPIENT
//   filemetadata RECIPIENT      the same with root ns2:FileMetadata
//   receipt                     a SUCCESS receipt
//   error CODE DESCRIPTION      a rejection receipt
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "metadata/documents.h"

namespace {

constexpr const char* kUuid = "5f0c2d8e-1b7a-4c3e-9f10-2a3b4c5d6e7f";

std::string SampleMetadata(fordeler::MetadataRoot root, const std::string& recipient) {
  fordeler::MetadataFields fields;
  fields.root = root;
  fields.file_transfer_uuid = kUuid;
  fields.file_name = "økonomi_æøå_2026-11-22.csv";
  fields.size_in_bytes = 1048576;
  fields.sender = "kmd-oekonomi";
  fields.senders_file_id = "a<&>\"'b";
  fields.recipient = recipient;
  fields.sha256 = std::string(64, 'a');
  fields.inf_ref = "FLISOekonomiHent_1";
  fields.sender_it_system = "kmd-oekonomi";
  fields.sender_authority = "urn:oio:cvr-nr:55133018";
  fields.recipient_it_system = "flis";
  fields.sender_timestamp = "2026-11-22T02:00:00Z";
  fields.route_parameters = {"første", "second"};
  return fordeler::WriteMetadata(fields);
}

int Usage() {
  std::fputs("usage: metadata|filemetadata RECIPIENT | receipt | error CODE DESCRIPTION\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage();
  const std::string_view kind = argv[1];
  std::string document;
  if ((kind == "metadata" || kind == "filemetadata") && argc == 3) {
    document = SampleMetadata(kind == "metadata" ? fordeler::MetadataRoot::kTrigger
                                                 : fordeler::MetadataRoot::kFileMetadata,
                              argv[2]);
  } else if (kind == "receipt" && argc == 2) {
    document = fordeler::WriteReceipt({kUuid, "a1b2c3", std::nullopt});
  } else if (kind == "error" && argc == 4) {
    const fordeler::ErrorCode code = fordeler::ErrorCodeFromInt(std::atoi(argv[2]));
    document = fordeler::WriteReceipt({kUuid, std::nullopt, fordeler::Rejection{code, argv[3]}});
  } else {
    return Usage();
  }
  std::fwrite(document.data(), 1, document.size(), stdout);
  return 0;
}
