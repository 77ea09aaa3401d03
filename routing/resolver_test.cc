// Table-driven tests of Resolve (contract §4) over a FLIS-like configuration built in code.
#include "routing/resolver.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace fordeler {
namespace {

using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

const std::string kAarhus = "urn:oio:cvr-nr:55133018";
const std::string kOdder = "urn:oio:cvr-nr:29189781";
const std::string kKombit = "urn:oio:cvr-nr:19435075";
const std::string kDynamic = "ROUTING_V1_0_0";

Account MakeAccount(std::string id, std::string authority, std::string it_system) {
  Account a;
  a.id = std::move(id);
  a.authority = std::move(authority);
  a.it_system = std::move(it_system);
  return a;
}

// The data area `id` with the services "FLIS<name>Aflever_1" and "FLIS<name>Hent_1".
DataArea MakeDataArea(std::string id, const std::string& name) {
  DataArea d;
  d.id = std::move(id);
  d.deliver_service = "FLIS" + name + "Aflever_1";
  d.fetch_service = "FLIS" + name + "Hent_1";
  return d;
}

Route MakeRoute(std::string id, std::string area, std::string sender,
                std::vector<std::string> authorities, std::vector<std::string> recipients) {
  Route r;
  r.id = std::move(id);
  r.data_area = std::move(area);
  r.sender = std::move(sender);
  r.authorities = std::move(authorities);
  r.recipients = std::move(recipients);
  return r;
}

// Accounts: a vendor with an authority (kmd-oekonomi), a vendor without one (sd-loen), FLIS, two
// LIS, and an OS2Forms-like sender without an authority of its own. Data areas: contract §4.
// Routes: "*" and specific CVRs, a route with two recipients (oekonomi-kmd-aarhus), associated
// municipalities (Aarhus's extracts also go to Odder's LIS: oekonomi-kmd-odder,
// voksne-sd-odder). kmd-oekonomi has no dagtilbud route; flis has no route at all.
Config MakeConfig() {
  Config c;
  c.accounts = {
      MakeAccount("kmd-oekonomi", kAarhus, "kmd-oekonomi"),
      MakeAccount("sd-loen", "", "sd-loen"),
      MakeAccount("flis", kKombit, "flis"),
      MakeAccount("lis-aarhus", kAarhus, "lis"),
      MakeAccount("lis-odder", kOdder, "lis"),
      MakeAccount("os2forms", "", "os2forms"),
  };
  c.data_areas = {
      MakeDataArea("oekonomi", "Oekonomi"),
      MakeDataArea("personale", "Personale"),
      MakeDataArea("skole", "Skole"),
      MakeDataArea("dagtilbud", "Dagtilbud"),
      MakeDataArea("voksne-handicappede", "VoksneOgHandicappede"),
  };
  c.routes = {
      MakeRoute("oekonomi-kmd-flis", "oekonomi", "kmd-oekonomi", {"*"}, {"flis"}),
      MakeRoute("oekonomi-kmd-aarhus", "oekonomi", "kmd-oekonomi", {kAarhus},
                {"flis", "lis-aarhus"}),
      MakeRoute("oekonomi-kmd-odder", "oekonomi", "kmd-oekonomi", {kOdder, kAarhus}, {"lis-odder"}),
      MakeRoute("personale-kmd-flis", "personale", "kmd-oekonomi", {kAarhus}, {"flis"}),
      MakeRoute("personale-sd-flis", "personale", "sd-loen", {"*"}, {"flis"}),
      MakeRoute("personale-sd-aarhus", "personale", "sd-loen", {kAarhus}, {"lis-aarhus"}),
      MakeRoute("voksne-sd-odder", "voksne-handicappede", "sd-loen", {kAarhus},
                {"lis-odder", "flis"}),
      MakeRoute("skole-os2forms", "skole", "os2forms", {"*"}, {"flis", "lis-aarhus", "lis-odder"}),
      MakeRoute("dagtilbud-os2forms-aarhus", "dagtilbud", "os2forms", {kAarhus}, {"lis-aarhus"}),
      MakeRoute("dagtilbud-os2forms-odder", "dagtilbud", "os2forms", {kOdder}, {"lis-odder"}),
  };
  return c;
}

struct Case {
  std::string name{};
  std::string account{};
  std::string sender{};  // empty: the account
  std::vector<std::string> recipients{};
  std::optional<std::string> inf_ref{};
  std::optional<std::string> sender_authority{};
  std::optional<std::string> recipient_it_system{};
  std::optional<std::string> recipient_authority{};
  ErrorCode code = ErrorCode::kNone;  // kNone: `want` is expected
  Resolution want{};
  std::vector<std::string> mentions{};  // what the rejection's description must name
};

// One case is one block (clang-format would put every field on a line of its own).
// clang-format off
const Case kCases[] = {
    // SENDER_MISMATCH (1007) comes before everything else.
    {.name = "SenderMismatch", .account = "kmd-oekonomi", .sender = "sd-loen",
     .recipients = {"flis"}, .code = ErrorCode::kSenderMismatch,
     .mentions = {"sd-loen", "kmd-oekonomi"}},
    {.name = "SenderMismatchBeforeEverything", .account = "kmd-oekonomi", .sender = "KMD-OEKONOMI",
     .recipients = {"nobody"}, .inf_ref = "NoSuchService_1", .code = ErrorCode::kSenderMismatch},
    // UNKNOWN_DATA_AREA (2003), before UNKNOWN_RECIPIENT.
    {.name = "UnknownInfRef", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISFoo_1", .code = ErrorCode::kUnknownDataArea, .mentions = {"FLISFoo_1"}},
    {.name = "FetchServiceIsNoInfRef", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISOekonomiHent_1", .code = ErrorCode::kUnknownDataArea},
    {.name = "UnknownInfRefBeforeUnknownRecipient", .account = "kmd-oekonomi",
     .recipients = {"nobody"}, .inf_ref = "FLISFoo_1", .code = ErrorCode::kUnknownDataArea},
    // UNKNOWN_RECIPIENT (2001): the first unknown one is named, before any routing.
    {.name = "UnknownRecipient", .account = "kmd-oekonomi",
     .recipients = {"flis", "lis-ghost", "lis-other"}, .code = ErrorCode::kUnknownRecipient,
     .mentions = {"lis-ghost"}},
    {.name = "UnknownRecipientBeforeNoRoute", .account = "flis", .recipients = {"lis-ghost"},
     .inf_ref = "FLISOekonomiAflever_1", .code = ErrorCode::kUnknownRecipient},
    {.name = "DynamicMarkerAmongNamesIsARecipientName", .account = "kmd-oekonomi",
     .recipients = {"flis", kDynamic}, .code = ErrorCode::kUnknownRecipient,
     .mentions = {kDynamic}},
    // Named recipients, InfRef given.
    {.name = "InfRefGiven", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISOekonomiAflever_1",
     .want = {"oekonomi", kAarhus, {"flis"}, {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    {.name = "InfRefPicksAmongAmbiguousAreas", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISPersonaleAflever_1",
     .want = {"personale", kAarhus, {"flis"}, {"personale-kmd-flis"}}},
    {.name = "InfRefAreaDoesNotReachRecipient", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus"}, .inf_ref = "FLISPersonaleAflever_1", .code = ErrorCode::kNoRoute,
     .mentions = {"no route for kmd-oekonomi → lis-aarhus in personale for " + kAarhus}},
    {.name = "InfRefAreaWithoutSenderRoutes", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISDagtilbudAflever_1", .code = ErrorCode::kNoRoute,
     .mentions = {"kmd-oekonomi", "flis", "dagtilbud"}},
    // Named recipients, data area inferred.
    {.name = "InferredArea", .account = "kmd-oekonomi", .recipients = {"lis-aarhus"},
     .want = {"oekonomi", kAarhus, {"lis-aarhus"}, {"oekonomi-kmd-aarhus"}}},
    {.name = "InferredAreaAmbiguous", .account = "kmd-oekonomi", .recipients = {"flis"},
     .code = ErrorCode::kAmbiguousDataArea,
     .mentions = {"kmd-oekonomi", "flis", "oekonomi", "personale", kAarhus}},
    {.name = "InferredAreaMustReachAll", .account = "kmd-oekonomi",
     .recipients = {"flis", "lis-aarhus"},
     .want = {"oekonomi", kAarhus, {"flis", "lis-aarhus"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    {.name = "InferredAreaNone", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus", "lis-odder"}, .sender_authority = kOdder,
     .code = ErrorCode::kNoRoute, .mentions = {"kmd-oekonomi", "lis-aarhus", kOdder}},
    {.name = "SenderWithoutRoutes", .account = "flis", .recipients = {"lis-aarhus"},
     .code = ErrorCode::kNoRoute, .mentions = {"flis", "lis-aarhus", kKombit}},
    {.name = "InferredAreaIgnoresRoutesOfOtherAuthorities", .account = "kmd-oekonomi",
     .recipients = {"flis"}, .sender_authority = kOdder,
     .want = {"oekonomi", kOdder, {"flis"}, {"oekonomi-kmd-flis"}}},
    // Recipient order, duplicates, and narrowing that applies to dynamic routing only.
    {.name = "RecipientsInTriggerOrder", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus", "flis"},
     .want = {"oekonomi", kAarhus, {"lis-aarhus", "flis"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    {.name = "DuplicateRecipientsDeliveredOnce", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus", "flis", "lis-aarhus", "flis"},
     .want = {"oekonomi", kAarhus, {"lis-aarhus", "flis"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    {.name = "NamedIgnoreRecipientNarrowing", .account = "kmd-oekonomi", .recipients = {"flis"},
     .inf_ref = "FLISOekonomiAflever_1", .recipient_it_system = "lis",
     .recipient_authority = kOdder,
     .want = {"oekonomi", kAarhus, {"flis"}, {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    // Authority: SenderAuthority overrides the account's; none at all matches "*" only.
    {.name = "SenderAuthorityOverridesAccount", .account = "kmd-oekonomi",
     .recipients = {"lis-odder"}, .inf_ref = "FLISOekonomiAflever_1", .sender_authority = kOdder,
     .want = {"oekonomi", kOdder, {"lis-odder"}, {"oekonomi-kmd-odder"}}},
    {.name = "SenderAuthorityOverrideLosesAccountRoutes", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus"}, .inf_ref = "FLISOekonomiAflever_1", .sender_authority = kOdder,
     .code = ErrorCode::kNoRoute,
     .mentions = {"no route for kmd-oekonomi → lis-aarhus in oekonomi for " + kOdder}},
    {.name = "EmptySenderAuthorityIsAbsent", .account = "kmd-oekonomi",
     .recipients = {"lis-aarhus"}, .sender_authority = "",
     .want = {"oekonomi", kAarhus, {"lis-aarhus"}, {"oekonomi-kmd-aarhus"}}},
    {.name = "AssociatedMunicipality", .account = "kmd-oekonomi", .recipients = {"lis-odder"},
     .want = {"oekonomi", kAarhus, {"lis-odder"}, {"oekonomi-kmd-odder"}}},
    {.name = "NoAuthorityMatchesStarOnly", .account = "sd-loen", .recipients = {"flis"},
     .want = {"personale", "", {"flis"}, {"personale-sd-flis"}}},
    {.name = "NoAuthorityMissesSpecificRoutes", .account = "sd-loen", .recipients = {"lis-aarhus"},
     .code = ErrorCode::kNoRoute, .mentions = {"sd-loen", "lis-aarhus", "no authority"}},
    {.name = "SenderAuthorityGivesVendorRoutes", .account = "sd-loen", .recipients = {"lis-aarhus"},
     .sender_authority = kAarhus,
     .want = {"personale", kAarhus, {"lis-aarhus"}, {"personale-sd-aarhus"}}},
    // All or nothing: one reachable and one unreachable recipient resolve nothing.
    {.name = "AllOrNothing", .account = "kmd-oekonomi", .recipients = {"flis", "lis-aarhus"},
     .inf_ref = "FLISOekonomiAflever_1", .sender_authority = kOdder, .code = ErrorCode::kNoRoute,
     .mentions = {"no route for kmd-oekonomi → lis-aarhus in oekonomi for " + kOdder}},
    // Dynamic routing.
    {.name = "DynamicUnion", .account = "kmd-oekonomi", .recipients = {kDynamic},
     .inf_ref = "FLISOekonomiAflever_1",
     .want = {"oekonomi", kAarhus, {"flis", "lis-aarhus", "lis-odder"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus", "oekonomi-kmd-odder"}}},
    {.name = "DynamicUnionFollowsAuthority", .account = "kmd-oekonomi", .recipients = {kDynamic},
     .inf_ref = "FLISOekonomiAflever_1", .sender_authority = kOdder,
     .want = {"oekonomi", kOdder, {"flis", "lis-odder"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-odder"}}},
    {.name = "DynamicInfersTheOneArea", .account = "os2forms", .recipients = {kDynamic},
     .want = {"skole", "", {"flis", "lis-aarhus", "lis-odder"}, {"skole-os2forms"}}},
    {.name = "DynamicAmbiguousArea", .account = "kmd-oekonomi", .recipients = {kDynamic},
     .recipient_it_system = "lis", .code = ErrorCode::kAmbiguousDataArea,
     .mentions = {"kmd-oekonomi", "oekonomi", "personale"}},
    {.name = "DynamicSenderWithoutRoutes", .account = "flis", .recipients = {kDynamic},
     .code = ErrorCode::kNoRoute, .mentions = {"flis"}},
    {.name = "DynamicAreaWithoutRoutes", .account = "os2forms", .recipients = {kDynamic},
     .inf_ref = "FLISVoksneOgHandicappedeAflever_1", .code = ErrorCode::kNoRoute,
     .mentions = {"os2forms", "voksne-handicappede"}},
    {.name = "DynamicRecipientItSystem", .account = "kmd-oekonomi", .recipients = {kDynamic},
     .inf_ref = "FLISOekonomiAflever_1", .recipient_it_system = "lis",
     .want = {"oekonomi", kAarhus, {"lis-aarhus", "lis-odder"},
              {"oekonomi-kmd-aarhus", "oekonomi-kmd-odder"}}},
    {.name = "DynamicRecipientItSystemLeavesNobody", .account = "kmd-oekonomi",
     .recipients = {kDynamic}, .inf_ref = "FLISOekonomiAflever_1", .recipient_it_system = "sap",
     .code = ErrorCode::kNoRoute, .mentions = {"kmd-oekonomi", "oekonomi", "sap"}},
    {.name = "DynamicEmptyRecipientItSystemIsAbsent", .account = "kmd-oekonomi",
     .recipients = {kDynamic}, .inf_ref = "FLISOekonomiAflever_1", .sender_authority = kOdder,
     .recipient_it_system = "",
     .want = {"oekonomi", kOdder, {"flis", "lis-odder"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-odder"}}},
    {.name = "DynamicRecipientAuthorityServedByRoute", .account = "kmd-oekonomi",
     .recipients = {kDynamic}, .inf_ref = "FLISOekonomiAflever_1", .recipient_authority = kOdder,
     .want = {"oekonomi", kAarhus, {"flis", "lis-odder"},
              {"oekonomi-kmd-flis", "oekonomi-kmd-odder"}}},
    {.name = "DynamicRecipientAuthorityIsRecipients", .account = "sd-loen",
     .recipients = {kDynamic}, .inf_ref = "FLISVoksneOgHandicappedeAflever_1",
     .sender_authority = kAarhus, .recipient_authority = kOdder,
     .want = {"voksne-handicappede", kAarhus, {"lis-odder"}, {"voksne-sd-odder"}}},
    {.name = "DynamicBothNarrowings", .account = "kmd-oekonomi", .recipients = {kDynamic},
     .inf_ref = "FLISOekonomiAflever_1", .recipient_it_system = "flis",
     .recipient_authority = kAarhus,
     .want = {"oekonomi", kAarhus, {"flis"}, {"oekonomi-kmd-flis", "oekonomi-kmd-aarhus"}}},
    {.name = "Os2FormsSendingMunicipality", .account = "os2forms", .recipients = {kDynamic},
     .inf_ref = "FLISDagtilbudAflever_1", .sender_authority = kAarhus,
     .recipient_authority = kAarhus,
     .want = {"dagtilbud", kAarhus, {"lis-aarhus"}, {"dagtilbud-os2forms-aarhus"}}},
    {.name = "Os2FormsStarRouteServesAnyMunicipality", .account = "os2forms",
     .recipients = {kDynamic}, .inf_ref = "FLISSkoleAflever_1", .sender_authority = kOdder,
     .recipient_it_system = "lis", .recipient_authority = kOdder,
     .want = {"skole", kOdder, {"lis-aarhus", "lis-odder"}, {"skole-os2forms"}}},
    {.name = "Os2FormsOtherMunicipalityLeavesNobody", .account = "os2forms",
     .recipients = {kDynamic}, .inf_ref = "FLISDagtilbudAflever_1", .sender_authority = kAarhus,
     .recipient_authority = kOdder, .code = ErrorCode::kNoRoute,
     .mentions = {"os2forms", "dagtilbud", kAarhus, kOdder}},
    {.name = "Os2FormsWithoutSenderAuthority", .account = "os2forms", .recipients = {kDynamic},
     .inf_ref = "FLISDagtilbudAflever_1", .recipient_authority = kAarhus,
     .code = ErrorCode::kNoRoute, .mentions = {"os2forms", "dagtilbud", "no authority"}},
};
// clang-format on

// Failures name the case rather than dumping its bytes.
void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ResolveTest : public ::testing::TestWithParam<Case> {};

TEST_P(ResolveTest, Resolves) {
  const Case& c = GetParam();
  const Config config = MakeConfig();
  Trigger trigger;
  trigger.file_name = "extract.csv";
  trigger.sender = c.sender.empty() ? c.account : c.sender;
  trigger.recipients = c.recipients;
  trigger.routing.inf_ref = c.inf_ref;
  trigger.routing.sender_authority = c.sender_authority;
  trigger.routing.recipient_it_system = c.recipient_it_system;
  trigger.routing.recipient_authority = c.recipient_authority;

  Resolution got{"untouched", "untouched", {"untouched"}, {"untouched"}};
  Rejection why;
  bool ok = Resolve(config, c.account, trigger, &got, &why);

  if (c.code == ErrorCode::kNone) {
    ASSERT_TRUE(ok) << ErrorName(why.code) << ": " << why.description;
    EXPECT_EQ(got.data_area, c.want.data_area);
    EXPECT_EQ(got.authority, c.want.authority);
    EXPECT_THAT(got.recipients, ElementsAreArray(c.want.recipients));
    EXPECT_THAT(got.route_ids, ElementsAreArray(c.want.route_ids));
    return;
  }
  ASSERT_FALSE(ok) << "resolved to " << got.data_area;
  EXPECT_EQ(ErrorName(why.code), ErrorName(c.code)) << why.description;
  EXPECT_FALSE(why.description.empty());
  for (const auto& m : c.mentions) EXPECT_THAT(why.description, HasSubstr(m));
  // Nothing resolved: the output is left as it was.
  EXPECT_EQ(got.data_area, "untouched");
  EXPECT_THAT(got.recipients, ElementsAreArray({"untouched"}));
}

INSTANTIATE_TEST_SUITE_P(Contract, ResolveTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return info.param.name; });

// Every code of the routing part of contract §7 is exercised by the table above.
TEST(ResolveTableTest, CoversEveryRoutingCode) {
  for (ErrorCode code :
       {ErrorCode::kSenderMismatch, ErrorCode::kUnknownRecipient, ErrorCode::kNoRoute,
        ErrorCode::kUnknownDataArea, ErrorCode::kAmbiguousDataArea}) {
    bool found = false;
    for (const Case& c : kCases) found = found || c.code == code;
    EXPECT_TRUE(found) << ErrorName(code);
  }
}

// A route naming an account the configuration lacks (LoadConfig refuses this; a Config built
// in code may not) reaches nobody under dynamic routing instead of resolving to a non-account.
TEST(ResolveEdgeTest, DynamicSkipsRecipientThatIsNoAccount) {
  Config config = MakeConfig();
  config.routes.push_back(MakeRoute("skole-ghost", "skole", "sd-loen", {"*"}, {"ghost", "flis"}));
  Trigger trigger;
  trigger.sender = "sd-loen";
  trigger.recipients = {kDynamic};
  trigger.routing.inf_ref = "FLISSkoleAflever_1";
  Resolution got;
  Rejection why;
  ASSERT_TRUE(Resolve(config, "sd-loen", trigger, &got, &why)) << why.description;
  EXPECT_THAT(got.recipients, ElementsAreArray({"flis"}));
  EXPECT_THAT(got.route_ids, ElementsAreArray({"skole-ghost"}));
}

}  // namespace
}  // namespace fordeler
