#include "audit/audit_store.h"

#include <gtest/gtest.h>

#include "audit/audit_testing.h"

namespace fordeler {
namespace {

using testing::At;
using testing::Delivery;
using testing::FakeEnv;
using testing::OpenOrDie;
using testing::SampleTransfer;
using testing::TempDir;

constexpr char kUuid[] = "5f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c71";
constexpr char kUuid2[] = "0a1b2c3d-0000-4000-8000-000000000002";

void ExpectSameTransfer(const TransferRecord& a, const TransferRecord& b) {
  EXPECT_EQ(a.uuid, b.uuid);
  EXPECT_EQ(a.sender, b.sender);
  EXPECT_EQ(a.trigger_name, b.trigger_name);
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.senders_file_id, b.senders_file_id);
  EXPECT_EQ(a.size, b.size);
  EXPECT_EQ(a.sha256, b.sha256);
  EXPECT_EQ(a.data_area, b.data_area);
  EXPECT_EQ(a.authority, b.authority);
  EXPECT_EQ(a.route_ids, b.route_ids);
  EXPECT_EQ(a.state, b.state);
  EXPECT_EQ(a.step, b.step);
  EXPECT_EQ(a.error_code, b.error_code);
  EXPECT_EQ(a.error_description, b.error_description);
  EXPECT_EQ(a.trigger_xml, b.trigger_xml);
  EXPECT_EQ(a.receipt_xml, b.receipt_xml);
  EXPECT_EQ(a.received_at, b.received_at);
}

class AuditStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = OpenOrDie(dir_.File("audit.db"), &env_); }

  TempDir dir_;
  FakeEnv env_;
  std::unique_ptr<AuditStore> store_;
};

TEST_F(AuditStoreTest, TransferWithOnlyRequiredFieldsRoundTrips) {
  TransferRecord t = SampleTransfer(kUuid, At(1'795'312'800'123));
  t.route_ids.clear();
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
  auto got = store_->GetTransfer(kUuid);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_TRUE(got->has_value());
  ExpectSameTransfer(**got, t);
  EXPECT_EQ((*got)->updated_at, env_.Now());  // set by the store when written
  EXPECT_FALSE((*got)->size.has_value());
  EXPECT_FALSE((*got)->data_area.has_value());
}

TEST_F(AuditStoreTest, TransferWithEveryFieldRoundTripsAndIsReplaced) {
  TransferRecord t = SampleTransfer(kUuid, At(1'795'312'800'123));
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
  t.senders_file_id = "F-17";
  t.size = 10ULL << 30;
  t.sha256 = std::string(64, 'a');
  t.data_area = "orders";
  t.authority = "urn:x:orders";
  t.route_ids = {"r1", "r-2.b"};
  t.state = TransferState::kRejected;
  t.step = TransferStep::kRejecting;
  t.error_code = 1006;
  t.error_description = "checksum mismatch";
  t.trigger_xml = std::string(64 * 1024, 'x');
  t.receipt_xml = "<receipt>ü</receipt>";
  env_.Advance(std::chrono::seconds(3));
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
  auto got = store_->GetTransfer(kUuid);
  ASSERT_TRUE(got.ok() && got->has_value());
  ExpectSameTransfer(**got, t);
  EXPECT_EQ((*got)->updated_at, env_.Now());
}

// A later step usually changes only state, step, error and receipt, and is written as a narrow
// UPDATE; a change to any other column must still replace the whole row (sql.cc).
TEST_F(AuditStoreTest, ALaterStepChangingAnyOneColumnIsRecordedExactly) {
  using Change = void (*)(TransferRecord&);
  const Change changes[] = {
      [](TransferRecord& t) { t.state = TransferState::kDelivered; },
      [](TransferRecord& t) { t.step = TransferStep::kDone; },
      [](TransferRecord& t) { t.error_code = 5001; },
      [](TransferRecord& t) { t.error_description = "disk full"; },
      [](TransferRecord& t) { t.receipt_xml = "<r/>"; },
      [](TransferRecord& t) { t.sender = "other"; },
      [](TransferRecord& t) { t.trigger_name = "g.trigger"; },
      [](TransferRecord& t) { t.name = "g"; },
      [](TransferRecord& t) { t.senders_file_id = "F-18"; },
      [](TransferRecord& t) { t.senders_file_id.reset(); },
      [](TransferRecord& t) { t.size = 5; },
      [](TransferRecord& t) { t.size.reset(); },
      [](TransferRecord& t) { t.sha256 = std::string(64, 'b'); },
      [](TransferRecord& t) { t.data_area = "invoices"; },
      [](TransferRecord& t) { t.data_area.reset(); },
      [](TransferRecord& t) { t.authority = "urn:x:other"; },
      [](TransferRecord& t) { t.route_ids = {"r9"}; },
      [](TransferRecord& t) { t.trigger_xml += " "; },
      [](TransferRecord& t) { t.received_at += std::chrono::milliseconds(1); },
  };
  for (size_t i = 0; i < std::size(changes); ++i) {
    SCOPED_TRACE(i);
    std::string uuid = kUuid;
    uuid.replace(uuid.size() - 2, 2, (i < 10 ? "0" : "") + std::to_string(i));
    TransferRecord t = SampleTransfer(uuid, At(1'795'312'800'123));
    t.senders_file_id = "F-17";
    t.size = 3;
    t.sha256 = std::string(64, 'a');
    t.data_area = "orders";
    t.authority = "urn:x:orders";
    t.route_ids = {"r1", "r2"};
    ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
    changes[i](t);
    env_.Advance(std::chrono::seconds(1));
    ASSERT_TRUE(store_->Commit(Batch().PutTransfer(t)).ok());
    auto got = store_->GetTransfer(uuid);
    ASSERT_TRUE(got.ok() && got->has_value());
    ExpectSameTransfer(**got, t);
    EXPECT_EQ((*got)->updated_at, env_.Now());
  }
}

TEST_F(AuditStoreTest, UnknownTransferIsEmptyNotAnError) {
  auto got = store_->GetTransfer(kUuid);
  ASSERT_TRUE(got.ok());
  EXPECT_FALSE(got->has_value());
  auto deliveries = store_->DeliveriesOf(kUuid);
  ASSERT_TRUE(deliveries.ok());
  EXPECT_TRUE(deliveries->empty());
}

TEST_F(AuditStoreTest, DeliveriesRoundTripWithOptionalTimes) {
  DeliveryRecord a = Delivery(kUuid, "clinic-b", "", DeliveryState::kPending);
  DeliveryRecord b = Delivery(kUuid, "alpha", "orders.xml", DeliveryState::kPickedUp);
  b.delivered_at = At(1'000);
  b.picked_up_at = At(2'000);
  b.expired_at = At(3'000);
  b.recalled_at = At(4'000);
  Batch batch;
  batch.PutTransfer(SampleTransfer(kUuid, At(0))).PutDelivery(a).PutDelivery(b);
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  a.name_in_in = "orders.xml";
  a.state = DeliveryState::kDelivered;
  a.delivered_at = At(5'000);
  ASSERT_TRUE(store_->Commit(Batch().PutDelivery(a)).ok());

  auto got = store_->DeliveriesOf(kUuid);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  ASSERT_EQ(got->size(), 2u);  // by recipient
  const DeliveryRecord& first = (*got)[0];
  EXPECT_EQ(first.recipient, "alpha");
  EXPECT_EQ(first.name_in_in, "orders.xml");
  EXPECT_EQ(first.state, DeliveryState::kPickedUp);
  EXPECT_EQ(first.delivered_at, At(1'000));
  EXPECT_EQ(first.picked_up_at, At(2'000));
  EXPECT_EQ(first.expired_at, At(3'000));
  EXPECT_EQ(first.recalled_at, At(4'000));
  const DeliveryRecord& second = (*got)[1];
  EXPECT_EQ(second.recipient, "clinic-b");
  EXPECT_EQ(second.state, DeliveryState::kDelivered);
  EXPECT_EQ(second.delivered_at, At(5'000));
  EXPECT_FALSE(second.picked_up_at.has_value());
  EXPECT_FALSE(second.expired_at.has_value());
  EXPECT_FALSE(second.recalled_at.has_value());
}

TEST_F(AuditStoreTest, UnfinishedTransfersAreThoseNotDone) {
  TransferRecord a = SampleTransfer(kUuid, At(2'000));
  a.step = TransferStep::kSpooled;
  TransferRecord b = SampleTransfer(kUuid2, At(1'000));
  b.step = TransferStep::kRejecting;
  TransferRecord c = SampleTransfer("c0000000-0000-4000-8000-000000000003", At(3'000));
  c.step = TransferStep::kDone;
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(a).PutTransfer(b).PutTransfer(c)).ok());
  auto unfinished = store_->UnfinishedTransfers();
  ASSERT_TRUE(unfinished.ok());
  ASSERT_EQ(unfinished->size(), 2u);
  EXPECT_EQ((*unfinished)[0].uuid, kUuid2);  // oldest first
  EXPECT_EQ((*unfinished)[1].uuid, kUuid);
  a.step = TransferStep::kDone;
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(a)).ok());
  EXPECT_EQ(store_->UnfinishedTransfers()->size(), 1u);
}

TEST_F(AuditStoreTest, FindDeliveredOnlyFindsWhatIsWaitingInIn) {
  DeliveryRecord d = Delivery(kUuid, "clinic-b", "orders.xml", DeliveryState::kDelivered);
  d.delivered_at = At(1'000);
  ASSERT_TRUE(
      store_->Commit(Batch().PutTransfer(SampleTransfer(kUuid, At(0))).PutDelivery(d)).ok());
  auto found = store_->FindDelivered("clinic-b", "orders.xml");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->transfer_uuid, kUuid);
  EXPECT_FALSE(store_->FindDelivered("clinic-c", "orders.xml")->has_value());
  EXPECT_FALSE(store_->FindDelivered("clinic-b", "other.xml")->has_value());
  d.state = DeliveryState::kPickedUp;
  d.picked_up_at = At(2'000);
  ASSERT_TRUE(store_->Commit(Batch().PutDelivery(d)).ok());
  EXPECT_FALSE(store_->FindDelivered("clinic-b", "orders.xml")->has_value());
}

// The rescan for pickups fordelerd did not see (delivery/pipeline_records.cc) looks at every
// delivery still `delivered`, and at no other.
TEST_F(AuditStoreTest, AllDeliveredListsTheDeliveriesStillDeliveredByTransfer) {
  DeliveryRecord waiting = Delivery(kUuid2, "clinic-b", "b.xml", DeliveryState::kDelivered);
  DeliveryRecord also = Delivery(kUuid, "clinic-c", "a.xml", DeliveryState::kDelivered);
  DeliveryRecord fetched = Delivery(kUuid, "clinic-b", "a.xml", DeliveryState::kPickedUp);
  DeliveryRecord pending = Delivery(kUuid2, "clinic-a", "", DeliveryState::kPending);
  Batch batch;
  batch.PutTransfer(SampleTransfer(kUuid2, At(1'000)))
      .PutDelivery(waiting)
      .PutDelivery(pending)
      .PutTransfer(SampleTransfer(kUuid, At(0)))
      .PutDelivery(also)
      .PutDelivery(fetched);
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  auto all = store_->AllDelivered();
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].transfer_uuid, kUuid2);  // "0a1b…" before "5f0c…"
  EXPECT_EQ((*all)[0].name_in_in, "b.xml");
  EXPECT_EQ((*all)[1].transfer_uuid, kUuid);
  EXPECT_EQ((*all)[1].recipient, "clinic-c");
}

// A download of IN/<name> is linked to the newest delivery placed under that name, even one picked
// up (the recipient removed it at once) or expired since; never one not yet placed.
TEST_F(AuditStoreTest, FindPlacedFindsTheNewestPlacementOfTheNameWhateverItsState) {
  constexpr char kUuid3[] = "c0000000-0000-4000-8000-000000000003";
  DeliveryRecord older = Delivery(kUuid, "clinic-b", "orders.xml", DeliveryState::kPickedUp);
  older.delivered_at = At(1'000);
  older.picked_up_at = At(2'000);
  DeliveryRecord newer = Delivery(kUuid2, "clinic-b", "orders.xml", DeliveryState::kExpired);
  newer.delivered_at = At(3'000);
  newer.expired_at = At(4'000);
  DeliveryRecord unplaced = Delivery(kUuid3, "clinic-b", "orders.xml", DeliveryState::kPending);
  Batch batch;
  // Put newest first: the order is the placements', not the rows'.
  batch.PutTransfer(SampleTransfer(kUuid2, At(2'500)))
      .PutDelivery(newer)
      .PutTransfer(SampleTransfer(kUuid, At(0)))
      .PutDelivery(older)
      .PutTransfer(SampleTransfer(kUuid3, At(5'000)))
      .PutDelivery(unplaced);
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  auto found = store_->FindPlaced("clinic-b", "orders.xml");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->transfer_uuid, kUuid2);
  EXPECT_EQ((*found)->state, DeliveryState::kExpired);
  EXPECT_FALSE(store_->FindPlaced("clinic-c", "orders.xml")->has_value());
  EXPECT_FALSE(store_->FindPlaced("clinic-b", "orders.xml.metadata")->has_value());

  ASSERT_TRUE(store_
                  ->Commit(Batch().PutDelivery(Delivery(kUuid2, "clinic-b", "orders.xml",
                                                        DeliveryState::kPending)))
                  .ok());  // only the older placement is left
  found = store_->FindPlaced("clinic-b", "orders.xml");
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->transfer_uuid, kUuid);
  EXPECT_EQ((*found)->state, DeliveryState::kPickedUp);
}

// IN/<name>.sftpreceipt holds the receipt sent last for <name> (contract §5): the order of the
// receipts, not of the transfers' arrival.
TEST_F(AuditStoreTest, FindLastReceiptFindsTheReceiptSentLastForTheName) {
  constexpr char kUuid3[] = "c0000000-0000-4000-8000-000000000003";
  TransferRecord other_name = SampleTransfer(kUuid3, At(3'000));
  other_name.name = "other.xml";
  Batch batch;
  batch.PutTransfer(SampleTransfer(kUuid, At(0)))
      .PutTransfer(SampleTransfer(kUuid2, At(1'000)))
      .PutTransfer(other_name)
      .AddEvent("receipt_sent", kUuid2, "vendor-a", "code=SUCCESS");
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  auto found = store_->FindLastReceipt("vendor-a", "orders.xml");
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(*found, std::optional<std::string>(kUuid2));
  env_.Advance(std::chrono::milliseconds(10));
  // The earlier transfer's receipt goes out after the later one's (it was retried).
  ASSERT_TRUE(store_
                  ->Commit(Batch()
                               .AddEvent("receipt_sent", kUuid, "vendor-a", "code=SUCCESS")
                               .AddEvent("receipt_sent", kUuid3, "vendor-a", "code=SUCCESS"))
                  .ok());
  EXPECT_EQ(*store_->FindLastReceipt("vendor-a", "orders.xml"), std::optional<std::string>(kUuid));
  EXPECT_EQ(*store_->FindLastReceipt("vendor-a", "other.xml"), std::optional<std::string>(kUuid3));
  EXPECT_FALSE(store_->FindLastReceipt("vendor-b", "orders.xml")->has_value());
  EXPECT_FALSE(store_->FindLastReceipt("vendor-a", "third.xml")->has_value());

  // Only the sender's 1,000 newest receipts are looked through.
  env_.Advance(std::chrono::milliseconds(10));
  Batch many;
  for (int i = 0; i < 1'000; ++i) {
    many.AddEvent("receipt_sent", kUuid3, "vendor-a", "code=SUCCESS");
  }
  ASSERT_TRUE(store_->Commit(std::move(many)).ok());
  EXPECT_FALSE(store_->FindLastReceipt("vendor-a", "orders.xml")->has_value());
  EXPECT_EQ(*store_->FindLastReceipt("vendor-a", "other.xml"), std::optional<std::string>(kUuid3));
}

TEST_F(AuditStoreTest, EventsOfATransferInSeqOrderWithClockTimes) {
  Batch batch;
  batch.PutTransfer(SampleTransfer(kUuid, At(0)))
      .AddEvent("received", kUuid, "vendor-a", "name=orders.xml size=12")
      .AddEvent("login", "", "clinic-b", "addr=10.0.0.2 key=SHA256:abc");
  ASSERT_TRUE(store_->Commit(std::move(batch)).ok());
  env_.Advance(std::chrono::milliseconds(1500));
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("delivered", kUuid, "clinic-b", "")).ok());

  std::vector<EventRecord> events;
  ASSERT_TRUE(store_
                  ->EventsOf(kUuid,
                             [&](const EventRecord& e) {
                               events.push_back(e);
                               return true;
                             })
                  .ok());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(events[0].kind, "received");
  EXPECT_EQ(events[0].account, "vendor-a");
  EXPECT_EQ(events[0].detail, "name=orders.xml size=12");
  EXPECT_EQ(events[0].time, env_.Now() - std::chrono::milliseconds(1500));
  EXPECT_EQ(events[0].hash.size(), 64u);
  EXPECT_EQ(events[1].seq, 3);
  EXPECT_EQ(events[1].kind, "delivered");
  EXPECT_EQ(events[1].time, env_.Now());
  EXPECT_EQ(store_->Head()->seq, 3);
  EXPECT_EQ(store_->Head()->hash, events[1].hash);

  int seen = 0;
  ASSERT_TRUE(store_->EventsOf(kUuid, [&](const EventRecord&) { return ++seen < 1; }).ok());
  EXPECT_EQ(seen, 1);  // stopped
}

// A download is recorded with the time the server reported it, after a lookup: a pickup reported
// after it may be committed first. The chain keeps the commit order (seq); the transfer's events
// are listed in the order things happened, by time and then seq.
TEST_F(AuditStoreTest, EventsOfATransferInTheOrderTheyHappened) {
  ASSERT_TRUE(store_
                  ->Commit(Batch()
                               .PutTransfer(SampleTransfer(kUuid, At(0)))
                               .AddEvent("picked_up", kUuid, "clinic-b", "name=a.csv"))
                  .ok());
  const TimePoint picked = env_.Now();
  env_.Advance(std::chrono::milliseconds(30));
  ASSERT_TRUE(
      store_
          ->Commit(Batch()
                       .AddEvent("downloaded", kUuid, "clinic-b", "name=a.csv",
                                 picked - std::chrono::milliseconds(20))
                       .AddEvent("downloaded", kUuid, "clinic-b", "name=a.csv.metadata", picked)
                       .AddEvent("expired", kUuid, "clinic-b", ""))
          .ok());

  std::vector<EventRecord> events;
  ASSERT_TRUE(store_
                  ->EventsOf(kUuid,
                             [&](const EventRecord& e) {
                               events.push_back(e);
                               return true;
                             })
                  .ok());
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].detail, "name=a.csv");  // recorded second, happened first
  EXPECT_EQ(events[0].seq, 2);
  EXPECT_EQ(events[0].time, picked - std::chrono::milliseconds(20));
  EXPECT_EQ(events[1].kind, "picked_up");
  EXPECT_EQ(events[1].seq, 1);
  EXPECT_EQ(events[2].detail, "name=a.csv.metadata");  // the same time: in seq order
  EXPECT_EQ(events[2].seq, 3);
  EXPECT_EQ(events[2].time, picked);
  EXPECT_EQ(events[3].kind, "expired");  // no time given: the commit's
  EXPECT_EQ(events[3].time, env_.Now());
  EXPECT_TRUE(store_->Verify(std::nullopt)->ok);
}

TEST_F(AuditStoreTest, ABatchThatBreaksAConstraintFailsAlone) {
  ASSERT_TRUE(store_->Commit(Batch().PutTransfer(SampleTransfer(kUuid, At(0)))).ok());
  Batch orphan;  // a delivery of an unknown transfer: a caller's bug
  orphan.AddEvent("delivered", kUuid2, "x", "")
      .PutDelivery(Delivery(kUuid2, "clinic-b", "f", DeliveryState::kDelivered));
  Status bad = store_->Commit(std::move(orphan));
  EXPECT_EQ(bad.code(), Status::Code::kInvalidArgument) << bad.ToString();
  EXPECT_NE(bad.message().find("FOREIGN KEY"), std::string::npos) << bad.ToString();
  // Nothing of it was kept, and the chain did not move.
  EXPECT_EQ(store_->Head()->seq, 0);
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("received", kUuid, "vendor-a", "")).ok());
  EXPECT_EQ(store_->Head()->seq, 1);
  EXPECT_TRUE(store_->Verify(std::nullopt)->ok);
}

TEST_F(AuditStoreTest, RefusesFieldsThatWouldMakeTheChainAmbiguous) {
  EXPECT_EQ(store_->Commit(Batch().AddEvent("login", "", "a\nb", "")).code(),
            Status::Code::kInvalidArgument);
  TransferRecord t = SampleTransfer(kUuid, At(0));
  t.route_ids = {"a,b"};
  EXPECT_EQ(store_->Commit(Batch().PutTransfer(t)).code(), Status::Code::kInvalidArgument);
  // Newlines in detail are fine: it is the last field.
  EXPECT_TRUE(store_->Commit(Batch().AddEvent("alert", "", "", "line1\nline2")).ok());
  EXPECT_TRUE(store_->Verify(std::nullopt)->ok);
}

TEST_F(AuditStoreTest, ReadsMayNestInsideRowCallbacks) {
  ASSERT_TRUE(store_
                  ->Commit(Batch()
                               .PutTransfer(SampleTransfer(kUuid, At(1)))
                               .PutTransfer(SampleTransfer(kUuid2, At(2)))
                               .AddEvent("received", kUuid, "vendor-a", ""))
                  .ok());
  int events = 0;
  ASSERT_TRUE(
      store_
          ->ListTransfers(
              {},
              [&](const TransferRecord& t) {
                EXPECT_TRUE(store_->DeliveriesOf(t.uuid).ok());
                EXPECT_TRUE(
                    store_->EventsOf(t.uuid, [&](const EventRecord&) { return ++events, true; })
                        .ok());
                return true;
              })
          .ok());
  EXPECT_EQ(events, 1);
}

TEST_F(AuditStoreTest, AfterCloseSubmitFailsAtOnce) {
  ASSERT_TRUE(store_->Commit(Batch().AddEvent("login", "", "a", "")).ok());
  store_->Close();
  store_->Close();  // idempotent
  EXPECT_EQ(store_->Commit(Batch().AddEvent("login", "", "a", "")).code(),
            Status::Code::kUnavailable);
  EXPECT_EQ(store_->Head()->seq, 1);  // reads still work
}

}  // namespace
}  // namespace fordeler
