#include "delivery/quota_ledger.h"

#include <gtest/gtest.h>

#include <utility>
#include <vector>

namespace fordeler {
namespace {

TEST(QuotaLedgerTest, HoldsCountUntilReleasedOrDestroyed) {
  auto ledger = std::make_shared<QuotaLedger>();
  EXPECT_EQ(ledger->Promised("flis").files, 0u);
  QuotaLedger::Hold a = ledger->Promise("flis", 100);
  {
    QuotaLedger::Hold b = ledger->Promise("flis", 20);
    QuotaLedger::Hold c = ledger->Promise("lis", 7);
    EXPECT_EQ(ledger->Promised("flis").files, 2u);
    EXPECT_EQ(ledger->Promised("flis").bytes, 120u);
    EXPECT_EQ(ledger->Promised("lis").bytes, 7u);
  }
  EXPECT_EQ(ledger->Promised("flis").files, 1u);
  EXPECT_EQ(ledger->Promised("flis").bytes, 100u);
  EXPECT_EQ(ledger->Promised("lis").files, 0u);
  a.Release();
  a.Release();  // once only
  EXPECT_EQ(ledger->Promised("flis").files, 0u);
}

TEST(QuotaLedgerTest, AMovedHoldIsGivenBackOnce) {
  auto ledger = std::make_shared<QuotaLedger>();
  std::vector<QuotaLedger::Hold> holds;
  holds.push_back(ledger->Promise("flis", 5));
  holds.push_back(ledger->Promise("flis", 6));  // may move the first
  QuotaLedger::Hold moved = std::move(holds[0]);
  EXPECT_EQ(ledger->Promised("flis").bytes, 11u);
  holds.clear();
  EXPECT_EQ(ledger->Promised("flis").bytes, 5u);
  moved = ledger->Promise("lis", 1);  // replacing a hold gives the old one back
  EXPECT_EQ(ledger->Promised("flis").files, 0u);
  EXPECT_EQ(ledger->Promised("lis").files, 1u);
}

TEST(QuotaLedgerTest, AHoldOutlivesTheLedgersOwner) {
  QuotaLedger::Hold hold;
  {
    auto ledger = std::make_shared<QuotaLedger>();
    hold = ledger->Promise("flis", 1);
  }
  hold.Release();  // the ledger is kept alive by the hold
}

}  // namespace
}  // namespace fordeler
