#include "metadata/trigger_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "metadata/trigger_testing.h"
#include "metadata/xml_text.h"

namespace fordeler {
namespace {

using trigger_testing::Doc;
using trigger_testing::kDescriptor;
using trigger_testing::kNs;
using trigger_testing::Valid;
using trigger_testing::WithFileName;
using trigger_testing::WithSize;

Trigger MustParse(const std::string& xml) {
  Trigger trigger;
  Rejection why;
  EXPECT_TRUE(ParseTrigger(xml, &trigger, &why)) << why.description << "\n" << xml;
  return trigger;
}

// The trigger example of contract §3, verbatim.
const char kContractExample[] =
    R"(<ns2:Trigger xmlns:ns2="http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types">
  <FileDescriptor>
    <FileName>oekonomi_2026-11-22.csv</FileName>          <!-- = <name>, required -->
    <SizeInBytes>1048576</SizeInBytes>                    <!-- required, must match -->
    <Sender>kmd-oekonomi</Sender>                         <!-- = the logged-in account -->
    <SendersFileId>a1b2c3</SendersFileId>                 <!-- optional, ≤255, echoed -->
    <Recipients>flis</Recipients>                         <!-- 1..n -->
  </FileDescriptor>
  <FileContentDescriptor>                                 <!-- optional -->
    <SFTPDynamicRoutingInfo>
      <InfRef>FLISOekonomiAflever_1</InfRef>
      <SenderIt-system>kmd-oekonomi</SenderIt-system>
      <SenderAuthority>urn:oio:cvr-nr:55133018</SenderAuthority>
      <TransactionId>…</TransactionId>
      <SenderTimestamp>2026-11-22T02:00:00Z</SenderTimestamp>
      <RecipientIt-system>…</RecipientIt-system>
      <RecipientAuthority>…</RecipientAuthority>
      <RouteParameterList><RouteParameter>…</RouteParameter></RouteParameterList>
    </SFTPDynamicRoutingInfo>
  </FileContentDescriptor>
</ns2:Trigger>
)";

TEST(TriggerParser, ContractExample) {
  const Trigger t = MustParse(kContractExample);
  EXPECT_EQ(t.file_name, "oekonomi_2026-11-22.csv");
  EXPECT_EQ(t.size_in_bytes, 1048576u);
  EXPECT_EQ(t.sender, "kmd-oekonomi");
  EXPECT_EQ(t.senders_file_id, "a1b2c3");
  EXPECT_EQ(t.recipients, std::vector<std::string>{"flis"});
  EXPECT_FALSE(t.sha256.has_value());
  EXPECT_FALSE(t.IsDynamicRouting());
  EXPECT_EQ(t.routing.inf_ref, "FLISOekonomiAflever_1");
  EXPECT_EQ(t.routing.sender_it_system, "kmd-oekonomi");
  EXPECT_EQ(t.routing.sender_authority, "urn:oio:cvr-nr:55133018");
  EXPECT_EQ(t.routing.transaction_id, "…");
  EXPECT_EQ(t.routing.sender_timestamp, "2026-11-22T02:00:00Z");
  EXPECT_EQ(t.routing.recipient_it_system, "…");
  EXPECT_EQ(t.routing.recipient_authority, "…");
  EXPECT_EQ(t.routing.route_parameters, std::vector<std::string>{"…"});
}

// The same trigger in every namespace spelling a client may use.
TEST(TriggerParser, AnyPrefixDefaultNamespaceAndQualifiedChildren) {
  const std::string body =
      "<FileName>x.csv</FileName><SizeInBytes>5</SizeInBytes><Sender>kmd</Sender>"
      "<Recipients>flis</Recipients>";
  const std::vector<std::string> spellings = {
      Valid(),
      "<sftp:Trigger xmlns:sftp=\"" + kNs + "\"><FileDescriptor>" + body +
          "</FileDescriptor></sftp:Trigger>",
      "<Trigger xmlns=\"" + kNs + "\"><FileDescriptor>" + body + "</FileDescriptor></Trigger>",
      "<t:Trigger xmlns:t=\"" + kNs +
          "\"><t:FileDescriptor><t:FileName>x.csv</t:FileName><t:SizeInBytes>5</t:SizeInBytes>"
          "<t:Sender>kmd</t:Sender><t:Recipients>flis</t:Recipients></t:FileDescriptor>"
          "</t:Trigger>",
      "<ns2:Trigger xmlns:ns2=\"" + kNs + "\"><ns2:FileDescriptor>" + body +
          "</ns2:FileDescriptor></ns2:Trigger>",
      "<ns2:Trigger xmlns:ns2=\"" + kNs + "\" xmlns=\"urn:example:other\"><FileDescriptor>" + body +
          "</FileDescriptor></ns2:Trigger>",
      "<ns2:Trigger xmlns:ns2=\"" + kNs + "\"><q:FileDescriptor xmlns:q=\"" + kNs + "\">" + body +
          "</q:FileDescriptor></ns2:Trigger>",
  };
  for (const std::string& xml : spellings) {
    SCOPED_TRACE(xml);
    const Trigger t = MustParse(xml);
    EXPECT_EQ(t.file_name, "x.csv");
    EXPECT_EQ(t.size_in_bytes, 5u);
    EXPECT_EQ(t.sender, "kmd");
    EXPECT_EQ(t.recipients, std::vector<std::string>{"flis"});
  }
}

TEST(TriggerParser, DynamicRoutingWithFullRoutingInfo) {
  const Trigger t = MustParse(
      Doc("<FileName>skole.csv</FileName><SizeInBytes>0</SizeInBytes><Sender>tabulex</Sender>"
          "<Recipients>ROUTING_V1_0_0</Recipients>",
          "<FileContentDescriptor><SFTPDynamicRoutingInfo><InfRef>FLISSkoleAflever_1</InfRef>"
          "<SenderIt-system>tabulex</SenderIt-system><SenderAuthority>urn:oio:cvr-nr:29189846"
          "</SenderAuthority><TransactionId>tx-9</TransactionId><SenderTimestamp>"
          "2026-11-22T02:00:00+01:00</SenderTimestamp><RecipientIt-system>flis</RecipientIt-system>"
          "<RecipientAuthority>urn:oio:cvr-nr:29189846</RecipientAuthority><RouteParameterList>"
          "<RouteParameter>a</RouteParameter><RouteParameter></RouteParameter>"
          "<RouteParameter> c </RouteParameter></RouteParameterList></SFTPDynamicRoutingInfo>"
          "</FileContentDescriptor>"));
  EXPECT_TRUE(t.IsDynamicRouting());
  EXPECT_EQ(t.size_in_bytes, 0u);
  EXPECT_EQ(t.routing.inf_ref, "FLISSkoleAflever_1");
  EXPECT_EQ(t.routing.sender_it_system, "tabulex");
  EXPECT_EQ(t.routing.sender_authority, "urn:oio:cvr-nr:29189846");
  EXPECT_EQ(t.routing.transaction_id, "tx-9");
  EXPECT_EQ(t.routing.sender_timestamp, "2026-11-22T02:00:00+01:00");
  EXPECT_EQ(t.routing.recipient_it_system, "flis");
  EXPECT_EQ(t.routing.recipient_authority, "urn:oio:cvr-nr:29189846");
  EXPECT_EQ(t.routing.route_parameters, (std::vector<std::string>{"a", "", "c"}));
}

TEST(TriggerParser, MultipleRecipientsInOrder) {
  const Trigger t =
      MustParse(Doc("<FileName>x</FileName><SizeInBytes>1</SizeInBytes><Sender>kmd</Sender>"
                    "<Recipients>flis</Recipients><Recipients>lis-aarhus</Recipients>"
                    "<Recipients>ROUTING_V1_0_0</Recipients>"));
  EXPECT_EQ(t.recipients, (std::vector<std::string>{"flis", "lis-aarhus", "ROUTING_V1_0_0"}));
  EXPECT_FALSE(t.IsDynamicRouting());
}

TEST(TriggerParser, UnknownElementsAndForeignNamespacesAreIgnored) {
  const Trigger t = MustParse(
      Doc("<Unknown><Deep><FileName>no</FileName></Deep></Unknown>"
          "<x:FileName xmlns:x=\"urn:example:other\">evil.csv</x:FileName>" +
              kDescriptor + "<Extra attr=\"1\"/>",
          "<Future>1</Future><FileContentDescriptor><Other/><SFTPDynamicRoutingInfo>"
          "<NewThing>y</NewThing><InfRef>FLISOekonomiAflever_1</InfRef></SFTPDynamicRoutingInfo>"
          "</FileContentDescriptor>"));
  EXPECT_EQ(t.file_name, "x.csv");
  EXPECT_EQ(t.routing.inf_ref, "FLISOekonomiAflever_1");
}

TEST(TriggerParser, AnyElementOrderIsAccepted) {
  const Trigger t = MustParse(
      "<ns2:Trigger xmlns:ns2=\"" + kNs +
      "\"><FileContentDescriptor><SFTPDynamicRoutingInfo><SenderAuthority>a</SenderAuthority>"
      "<InfRef>i</InfRef></SFTPDynamicRoutingInfo></FileContentDescriptor><FileDescriptor>"
      "<Recipients>flis</Recipients><Sender>kmd</Sender><SizeInBytes>7</SizeInBytes>"
      "<FileName>x</FileName></FileDescriptor></ns2:Trigger>");
  EXPECT_EQ(t.file_name, "x");
  EXPECT_EQ(t.size_in_bytes, 7u);
  EXPECT_EQ(t.routing.inf_ref, "i");
}

TEST(TriggerParser, TextIsTrimmedAndDecoded) {
  EXPECT_EQ(
      MustParse(WithFileName("\r\n\t a&amp;b&#xE6;&#248;&lt;&gt;&quot;&apos;.csv \n")).file_name,
      "a&bæø<>\"'.csv");
  EXPECT_EQ(MustParse(WithFileName("<![CDATA[ <!DOCTYPE x> & ]]>")).file_name, "<!DOCTYPE x> &");
  EXPECT_EQ(MustParse(WithFileName("a<!-- c -->b<?pi x?>c")).file_name, "abc");
  EXPECT_EQ(MustParse(WithFileName("Ærø æøå.csv")).file_name, "Ærø æøå.csv");
  std::string crlf = Valid();
  crlf.insert(crlf.find("<FileDescriptor>"), "\r\n");
  EXPECT_EQ(MustParse(crlf + "\r\n").file_name, "x.csv");
}

TEST(TriggerParser, ByteOrderMarkAndUtf8DeclarationAreAccepted) {
  MustParse("\xEF\xBB\xBF" + Valid());
  MustParse("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" + Valid());
  MustParse("\xEF\xBB\xBF<?xml version='1.0' encoding='utf-8' standalone='yes'?>" + Valid());
  MustParse("<?xml version=\"1.0\"?><!-- a comment --><?app x?>\n" + Valid() + "\n<!-- end -->");
}

TEST(TriggerParser, ExactlyTheSizeLimitIsAccepted) {
  std::string xml = Valid();
  const std::string open = "<!--", close = "-->";
  xml +=
      open + std::string(kMaxTriggerBytes - xml.size() - open.size() - close.size(), 'x') + close;
  ASSERT_EQ(xml.size(), kMaxTriggerBytes);
  MustParse(xml);
}

TEST(TriggerParser, SizeInBytesBounds) {
  EXPECT_EQ(MustParse(WithSize("18446744073709551615")).size_in_bytes, UINT64_MAX);
  EXPECT_EQ(MustParse(WithSize("0")).size_in_bytes, 0u);
  EXPECT_EQ(MustParse(WithSize("007")).size_in_bytes, 7u);
  EXPECT_EQ(MustParse(WithSize(" 42\n")).size_in_bytes, 42u);
}

TEST(TriggerParser, Sha256IsStoredLowercase) {
  const std::string upper = "ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789ABCDEF0123456789";
  const Trigger t = MustParse(Doc(kDescriptor + "<Sha256> " + upper + " </Sha256>"));
  EXPECT_EQ(t.sha256, "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789");
}

TEST(TriggerParser, SendersFileIdCountsCharactersNotBytes) {
  std::string id;
  for (int i = 0; i < 255; ++i) id += "æ";
  EXPECT_EQ(
      MustParse(Doc(kDescriptor + "<SendersFileId>" + id + "</SendersFileId>")).senders_file_id,
      id);
}

TEST(TriggerParser, EmptyOptionalElementsCountAsAbsent) {
  const Trigger t = MustParse(Doc(kDescriptor + "<SendersFileId> </SendersFileId>",
                                  "<FileContentDescriptor><SFTPDynamicRoutingInfo><InfRef/>"
                                  "</SFTPDynamicRoutingInfo></FileContentDescriptor>"));
  EXPECT_FALSE(t.senders_file_id.has_value());
  EXPECT_FALSE(t.routing.inf_ref.has_value());
}

TEST(TriggerParser, DeepNestingIsHarmless) {
  std::string deep;
  for (int i = 0; i < 7000; ++i) deep += "<a>";
  for (int i = 0; i < 7000; ++i) deep += "</a>";
  EXPECT_EQ(MustParse(Doc(kDescriptor + deep)).file_name, "x.csv");
}

TEST(TriggerParser, RejectionLeavesOutputAlone) {
  Trigger t;
  t.file_name = "before";
  Rejection why;
  EXPECT_FALSE(ParseTrigger(WithSize("x"), &t, &why));
  EXPECT_EQ(t.file_name, "before");
  EXPECT_FALSE(t.senders_file_id.has_value());
  EXPECT_EQ(why.code, ErrorCode::kTriggerInvalid);
}

// Contract §5: the receipt echoes a SendersFileId "when the trigger had one", a trigger rejected
// with 1002 too, so the sender can match the receipt to its file.
TEST(TriggerParser, AnInvalidTriggerStillGivesItsSendersFileId) {
  const std::string id = "<SendersFileId> SFI-7 </SendersFileId>";
  const std::string other_ns = "<ns9:Trigger xmlns:ns9=\"urn:other\"><ns9:FileDescriptor>" +
                               kDescriptor + "<ns9:SendersFileId>SFI-7</ns9:SendersFileId>" +
                               "</ns9:FileDescriptor></ns9:Trigger>";
  for (const std::string& xml :
       {Doc("<FileName>x.csv</FileName><Sender>v</Sender><Recipients>f</Recipients>" + id),
        Doc(kDescriptor + id + "<Sha256>abc</Sha256>"), other_ns}) {
    Trigger t;
    Rejection why;
    EXPECT_FALSE(ParseTrigger(xml, &t, &why)) << xml;
    EXPECT_EQ(why.code, ErrorCode::kTriggerInvalid) << xml;
    EXPECT_EQ(t.senders_file_id, "SFI-7") << why.description;
  }
  // Not when it cannot be told: given twice, holding elements, or over 255 characters.
  for (const std::string& ids : {id + id, std::string("<SendersFileId><a/></SendersFileId>"),
                                 "<SendersFileId>" + std::string(256, 'x') + "</SendersFileId>"}) {
    Trigger t;
    Rejection why;
    EXPECT_FALSE(ParseTrigger(Doc(kDescriptor + ids), &t, &why));
    EXPECT_FALSE(t.senders_file_id.has_value()) << ids;
  }
}

// ParseTrigger is total: no input crashes it, and every refusal has one code and a readable,
// valid UTF-8 description.
TEST(TriggerParser, MutationsOfTheContractExampleNeverCrash) {
  const std::string base = kContractExample;
  const std::string replacements = std::string("<>&\";/!?-x\xff", 12) + '\0';
  auto check = [](const std::string& xml) {
    Trigger t;
    Rejection why;
    if (ParseTrigger(xml, &t, &why)) return;
    ASSERT_TRUE(why.code == ErrorCode::kTriggerMalformed || why.code == ErrorCode::kTriggerInvalid)
        << xml;
    ASSERT_FALSE(why.description.empty()) << xml;
    for (size_t pos = 0; pos < why.description.size();) {
      ASSERT_GE(DecodeUtf8(why.description, &pos), 0) << why.description;
    }
  };
  for (size_t i = 0; i < base.size(); ++i) {
    check(base.substr(0, i));
    check(base.substr(0, i) + base.substr(i + 1));
    for (char c : replacements) {
      std::string mutated = base;
      mutated[i] = c;
      check(mutated);
    }
  }
}

}  // namespace
}  // namespace fordeler
