#include "metadata/documents.h"

#include <gtest/gtest.h>
#include <pugixml.hpp>

#include <string>
#include <vector>

#include "metadata/trigger_parser.h"

namespace fordeler {
namespace {

constexpr char kDeclaration[] = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

MetadataFields FullFields() {
  MetadataFields f;
  f.file_transfer_uuid = "5f0c2d8e-1b7a-4c3e-9f10-2a3b4c5d6e7f";
  f.file_name = "oekonomi_2026-11-22.csv";
  f.size_in_bytes = 1048576;
  f.sender = "kmd-oekonomi";
  f.senders_file_id = "a1b2c3";
  f.recipient = "flis";
  f.sha256 = std::string(64, 'e');
  f.inf_ref = "FLISOekonomiHent_1";
  f.sender_it_system = "kmd-oekonomi";
  f.sender_authority = "urn:oio:cvr-nr:55133018";
  f.recipient_it_system = "flis";
  f.recipient_authority = "urn:oio:cvr-nr:29189846";
  f.transaction_id = "tx-1";
  f.sender_timestamp = "2026-11-22T02:00:00Z";
  f.route_parameters = {"p1", "p2"};
  return f;
}

MetadataFields MinimalFields() {
  MetadataFields f = FullFields();
  f.senders_file_id.reset();
  f.sender_it_system.reset();
  f.recipient_it_system.reset();
  f.recipient_authority.reset();
  f.transaction_id.reset();
  f.sender_timestamp.reset();
  f.route_parameters.clear();
  return f;
}

std::vector<std::string> ChildNames(pugi::xml_node node) {
  std::vector<std::string> names;
  for (pugi::xml_node child : node.children()) names.push_back(child.name());
  return names;
}

// Parses `xml` with a stock parser (no entity or DTD processing needed).
pugi::xml_node Root(pugi::xml_document* doc, const std::string& xml) {
  const pugi::xml_parse_result result = doc->load_string(xml.c_str());
  EXPECT_TRUE(result) << result.description() << "\n" << xml;
  return doc->document_element();
}

TEST(WriteMetadata, HasTheContractShape) {
  const std::string xml = WriteMetadata(FullFields());
  EXPECT_EQ(xml.rfind(kDeclaration, 0), 0u) << xml;
  pugi::xml_document doc;
  const pugi::xml_node root = Root(&doc, xml);
  EXPECT_STREQ(root.name(), "ns2:Trigger");
  EXPECT_STREQ(root.attribute("xmlns:ns2").value(), kSftpNamespace);
  EXPECT_EQ(std::distance(root.attributes_begin(), root.attributes_end()), 1);
  EXPECT_EQ(ChildNames(root), (std::vector<std::string>{"FileTransferUUID", "FileDescriptor",
                                                        "FileContentDescriptor"}));
  EXPECT_STREQ(root.child_value("FileTransferUUID"), "5f0c2d8e-1b7a-4c3e-9f10-2a3b4c5d6e7f");
  const pugi::xml_node fd = root.child("FileDescriptor");
  EXPECT_EQ(ChildNames(fd), (std::vector<std::string>{"FileName", "SizeInBytes", "Sender",
                                                      "SendersFileId", "Recipients", "Sha256"}));
  EXPECT_STREQ(fd.child_value("FileName"), "oekonomi_2026-11-22.csv");
  EXPECT_STREQ(fd.child_value("SizeInBytes"), "1048576");
  EXPECT_STREQ(fd.child_value("Sender"), "kmd-oekonomi");
  EXPECT_STREQ(fd.child_value("SendersFileId"), "a1b2c3");
  EXPECT_STREQ(fd.child_value("Recipients"), "flis");
  EXPECT_EQ(fd.child_value("Sha256"), std::string(64, 'e'));
  const pugi::xml_node info = root.child("FileContentDescriptor").child("SFTPDynamicRoutingInfo");
  EXPECT_EQ(ChildNames(root.child("FileContentDescriptor")),
            std::vector<std::string>{"SFTPDynamicRoutingInfo"});
  EXPECT_EQ(ChildNames(info),
            (std::vector<std::string>{"InfRef", "SenderIt-system", "SenderAuthority",
                                      "TransactionId", "SenderTimestamp", "RecipientIt-system",
                                      "RecipientAuthority", "RouteParameterList"}));
  EXPECT_STREQ(info.child_value("InfRef"), "FLISOekonomiHent_1");
  EXPECT_STREQ(info.child_value("RecipientAuthority"), "urn:oio:cvr-nr:29189846");
  EXPECT_EQ(ChildNames(info.child("RouteParameterList")),
            (std::vector<std::string>{"RouteParameter", "RouteParameter"}));
  EXPECT_STREQ(info.child("RouteParameterList").last_child().child_value(), "p2");
}

TEST(WriteMetadata, OmitsWhatIsAbsent) {
  pugi::xml_document doc;
  const pugi::xml_node root = Root(&doc, WriteMetadata(MinimalFields()));
  EXPECT_EQ(
      ChildNames(root.child("FileDescriptor")),
      (std::vector<std::string>{"FileName", "SizeInBytes", "Sender", "Recipients", "Sha256"}));
  EXPECT_EQ(ChildNames(root.child("FileContentDescriptor").child("SFTPDynamicRoutingInfo")),
            (std::vector<std::string>{"InfRef", "SenderAuthority"}));
}

TEST(WriteMetadata, FileMetadataRoot) {
  MetadataFields fields = MinimalFields();
  fields.root = MetadataRoot::kFileMetadata;
  const std::string xml = WriteMetadata(fields);
  pugi::xml_document doc;
  const pugi::xml_node root = Root(&doc, xml);
  EXPECT_STREQ(root.name(), "ns2:FileMetadata");
  EXPECT_STREQ(root.attribute("xmlns:ns2").value(), kSftpNamespace);
  EXPECT_NE(xml.find("</ns2:FileMetadata>\n"), std::string::npos);
}

// A metadata file has the trigger's shape: fordeler's own parser reads it back.
TEST(WriteMetadata, ReadsBackAsATrigger) {
  Trigger t;
  Rejection why;
  ASSERT_TRUE(ParseTrigger(WriteMetadata(FullFields()), &t, &why)) << why.description;
  EXPECT_EQ(t.file_name, "oekonomi_2026-11-22.csv");
  EXPECT_EQ(t.size_in_bytes, 1048576u);
  EXPECT_EQ(t.senders_file_id, "a1b2c3");
  EXPECT_EQ(t.recipients, std::vector<std::string>{"flis"});
  EXPECT_EQ(t.sha256, std::string(64, 'e'));
  EXPECT_EQ(t.routing.transaction_id, "tx-1");
  EXPECT_EQ(t.routing.route_parameters, (std::vector<std::string>{"p1", "p2"}));
}

TEST(WriteMetadata, DanishAndMarkupCharactersSurvive) {
  MetadataFields fields = MinimalFields();
  fields.file_name = "Ærø æøå ÆØÅ.csv";
  fields.senders_file_id = "a<&>\"'b";
  fields.sender_authority = "]]> & </SenderAuthority>";
  const std::string xml = WriteMetadata(fields);
  EXPECT_NE(xml.find("<FileName>Ærø æøå ÆØÅ.csv</FileName>"), std::string::npos) << xml;
  // Quotes stand as they are in text (only attributes need them escaped, and there are none).
  EXPECT_NE(xml.find("a&lt;&amp;&gt;\"'b"), std::string::npos) << xml;
  pugi::xml_document doc;
  const pugi::xml_node root = Root(&doc, xml);
  EXPECT_STREQ(root.child("FileDescriptor").child_value("FileName"), "Ærø æøå ÆØÅ.csv");
  EXPECT_STREQ(root.child("FileDescriptor").child_value("SendersFileId"), "a<&>\"'b");
  EXPECT_STREQ(root.child("FileContentDescriptor")
                   .child("SFTPDynamicRoutingInfo")
                   .child_value("SenderAuthority"),
               "]]> & </SenderAuthority>");
}

// Values XML cannot carry never break the document: control characters are dropped, bytes
// that are not UTF-8 become U+FFFD; TAB, LF and CR survive.
TEST(WriteMetadata, UnrepresentableCharactersNeverBreakTheDocument) {
  MetadataFields fields = MinimalFields();
  fields.file_name = std::string("a\x01\x1B[0m\0b\xFF\xC3.csv", 14);
  fields.sender = "k\tm\r\nd";
  const std::string xml = WriteMetadata(fields);
  Trigger t;
  Rejection why;  // ParseTrigger refuses any character XML does not allow
  ASSERT_TRUE(ParseTrigger(xml, &t, &why)) << why.description << "\n" << xml;
  EXPECT_EQ(t.file_name, "a[0mb\xEF\xBF\xBD\xEF\xBF\xBD.csv");
  pugi::xml_document doc;
  EXPECT_STREQ(Root(&doc, xml).child("FileDescriptor").child_value("Sender"), "k\tm\r\nd");
}

TEST(WriteReceipt, Success) {
  EXPECT_EQ(WriteReceipt({"5f0c", "a1b2c3", std::nullopt}),
            std::string(kDeclaration) +
                "<ns2:TechnicalReceipt "
                "xmlns:ns2=\"http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types\">\n"
                "  <FileTransferUUID>5f0c</FileTransferUUID>\n"
                "  <SendersFileId>a1b2c3</SendersFileId>\n"
                "  <Receipt>\n"
                "    <Message>SUCCESS</Message>\n"
                "  </Receipt>\n"
                "</ns2:TechnicalReceipt>\n");
}

TEST(WriteReceipt, Rejection) {
  const Rejection error{ErrorCode::kNoRoute, "no route for kmd-oekonomi → lis-aarhus"};
  EXPECT_EQ(WriteReceipt({"5f0c", std::nullopt, error}),
            std::string(kDeclaration) +
                "<ns2:TechnicalReceipt "
                "xmlns:ns2=\"http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types\">\n"
                "  <FileTransferUUID>5f0c</FileTransferUUID>\n"
                "  <ErrorMessage>\n"
                "    <ErrorCode>2002</ErrorCode>\n"
                "    <ErrorCodeDescription>NO_ROUTE</ErrorCodeDescription>\n"
                "    <ErrorDescription>no route for kmd-oekonomi → lis-aarhus</ErrorDescription>\n"
                "  </ErrorMessage>\n"
                "</ns2:TechnicalReceipt>\n");
}

TEST(WriteReceipt, ErrorDescriptionIsNeverEmpty) {
  pugi::xml_document doc;
  pugi::xml_node error =
      Root(&doc, WriteReceipt({"u", "id", Rejection{ErrorCode::kTriggerInvalid, ""}}))
          .child("ErrorMessage");
  EXPECT_STREQ(error.child_value("ErrorCode"), "1002");
  EXPECT_STREQ(error.child_value("ErrorDescription"), "TRIGGER_INVALID");
  EXPECT_STREQ(doc.document_element().child_value("SendersFileId"), "id");
  EXPECT_FALSE(doc.document_element().child("Receipt"));
}

TEST(WriteReceipt, ARejectionWithoutCodeIsAnInternalError) {
  pugi::xml_document doc;
  const pugi::xml_node error =
      Root(&doc, WriteReceipt({"u", std::nullopt, Rejection{ErrorCode::kNone, "oops"}}))
          .child("ErrorMessage");
  EXPECT_STREQ(error.child_value("ErrorCode"), "5001");
  EXPECT_STREQ(error.child_value("ErrorCodeDescription"), "INTERNAL_ERROR");
  EXPECT_STREQ(error.child_value("ErrorDescription"), "oops");
}

TEST(WriteReceipt, EscapesTheDescription) {
  pugi::xml_document doc;
  const pugi::xml_node root =
      Root(&doc, WriteReceipt({"u", "<id>", Rejection{ErrorCode::kSenderMismatch, "a<&>\"'b"}}));
  EXPECT_STREQ(root.child_value("SendersFileId"), "<id>");
  EXPECT_STREQ(root.child("ErrorMessage").child_value("ErrorDescription"), "a<&>\"'b");
}

}  // namespace
}  // namespace fordeler
