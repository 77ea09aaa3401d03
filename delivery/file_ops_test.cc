#include "delivery/file_ops.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>

#include "core/names.h"

namespace fordeler {
namespace {

const std::string kUuid = "5f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c71";

TEST(CollisionName, AppendsTheUuid) { EXPECT_EQ(CollisionName("f.csv", kUuid), "f.csv." + kUuid); }

TEST(CollisionName, CutsLongNamesAtACharacterBoundarySoMetadataFits) {
  std::string name;
  while (name.size() < 240) name += "æ";  // two bytes each
  std::string cut = CollisionName(name, kUuid);
  EXPECT_LE(cut.size() + std::string(".metadata").size(), 255u);
  EXPECT_TRUE(IsValidUtf8(cut));
  EXPECT_EQ(cut.substr(cut.size() - kUuid.size()), kUuid);
}

TEST(ReceiptName, IsTheNameWithItsSuffixWhenThatFits) {
  EXPECT_EQ(ReceiptName("f.csv", kUuid), "f.csv.sftpreceipt");
  std::string longest(243, 'n');
  EXPECT_EQ(ReceiptName(longest, kUuid), longest + ".sftpreceipt");
}

TEST(ReceiptName, CutsAnOverlongNameAtACharacterBoundaryAndAddsTheUuid) {
  std::string name = "x";
  while (name.size() < 246) name += "ø";  // two bytes each
  std::string receipt = ReceiptName(name, kUuid);
  EXPECT_LE(receipt.size(), 255u);
  EXPECT_TRUE(IsValidUtf8(receipt));
  EXPECT_TRUE(receipt.ends_with("." + kUuid + ".sftpreceipt"));
  EXPECT_EQ(name.rfind(receipt.substr(0, receipt.size() - 49), 0), 0u);  // a prefix of <name>
}

class FileOpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fordeler-fileops-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    for (const char* d : {"spool", "staging", "in", "out"}) {
      mkdir((root_ + "/" + d).c_str(), 0700);
      fds_.emplace_back(open((root_ + "/" + d).c_str(), O_RDONLY | O_DIRECTORY));
    }
  }
  void TearDown() override {
    fds_.clear();
    ASSERT_EQ(std::system(("rm -rf " + root_).c_str()), 0);
  }
  int dir(int i) const { return fds_[static_cast<size_t>(i)].get(); }
  void Put(const std::string& rel, const std::string& data) {
    std::ofstream(root_ + "/" + rel, std::ios::binary) << data;
  }
  std::string root_;
  std::vector<UniqueFd> fds_;
};

TEST_F(FileOpsTest, PlaceDataIsIdempotentAndAvoidsTakenNames) {
  Put("spool/" + kUuid, "data");
  auto first = PlaceData(Env::Default(), dir(0), dir(1), dir(2), kUuid, "flis", "f.csv");
  ASSERT_TRUE(first.ok()) << first.status().message();
  EXPECT_EQ(*first, "f.csv");
  auto again = PlaceData(Env::Default(), dir(0), dir(1), dir(2), kUuid, "flis", "f.csv");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, "f.csv");  // found its own inode: not placed twice
  struct stat st;
  ASSERT_EQ(stat((root_ + "/spool/" + kUuid).c_str(), &st), 0);
  EXPECT_EQ(st.st_nlink, 2u);  // spool + one /IN entry, nothing left in staging

  std::string other = "6f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c72";
  Put("spool/" + other, "newer");
  auto second = PlaceData(Env::Default(), dir(0), dir(1), dir(2), other, "flis", "f.csv");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(*second, "f.csv." + other);
}

TEST_F(FileOpsTest, AStaleMetadataFileAlsoCountsAsTaken) {
  Put("spool/" + kUuid, "data");
  Put("in/g.csv.metadata", "<old/>");
  auto placed = PlaceData(Env::Default(), dir(0), dir(1), dir(2), kUuid, "flis", "g.csv");
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(*placed, "g.csv." + kUuid);
}

// "<x>.metadata" is x's (contract §5): while a delivered <x> waits for its metadata, a data file
// called "<x>.metadata" is placed under its other name, or the metadata would replace it.
TEST_F(FileOpsTest, ADataFileNamedLikeAWaitingMetadataTakesItsOtherName) {
  Put("spool/" + kUuid, "data");
  auto data = PlaceData(Env::Default(), dir(0), dir(1), dir(2), kUuid, "flis", "h.csv");
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(*data, "h.csv");  // its metadata comes later
  std::string other = "6f0c3b1e-8a7d-4c2e-9f10-0b6d2e4a9c72";
  Put("spool/" + other, "named like metadata");
  auto placed = PlaceData(Env::Default(), dir(0), dir(1), dir(2), other, "flis", "h.csv.metadata");
  ASSERT_TRUE(placed.ok());
  EXPECT_EQ(*placed, "h.csv.metadata." + other);
}

TEST_F(FileOpsTest, CopyAndHashCopiesWithoutTouchingTheSource) {
  Put("out/x", "hello");
  auto digest = CopyAndHash(Env::Default(), dir(3), "x", dir(0), "copy", 0440);
  ASSERT_TRUE(digest.ok());
  EXPECT_EQ(ToHex(*digest), ToHex(Sha256::Of("hello")));
  EXPECT_EQ(access((root_ + "/out/x").c_str(), F_OK), 0);
  EXPECT_NE(access((root_ + "/spool/copy.part").c_str(), F_OK), 0);
}

TEST_F(FileOpsTest, StatAtCallsAHardLinkedFileNotRegular) {
  Put("out/x", "another account's bytes");
  auto alone = StatAt(dir(3), "x");
  ASSERT_TRUE(alone.ok());
  EXPECT_TRUE(alone->regular);
  ASSERT_EQ(link((root_ + "/out/x").c_str(), (root_ + "/out/planted").c_str()), 0);
  auto linked = StatAt(dir(3), "planted");
  ASSERT_TRUE(linked.ok());
  EXPECT_FALSE(linked->regular);  // never taken nor routed (contract §1)
  ASSERT_EQ(mkfifo((root_ + "/out/fifo").c_str(), 0600), 0);
  EXPECT_FALSE(StatAt(dir(3), "fifo")->regular);
}

// A <name> may end in ".metadata" or ".sftpreceipt" (contract §2): such a file is a data file
// when the audit log has it as delivered, and counts towards the quota; real metadata and
// receipts (no delivery of that name) do not.
TEST_F(FileOpsTest, UsageCountsDeliveredDataWhateverItsSuffix) {
  Put("in/a.csv", "abc");
  Put("in/a.csv.metadata", "<m/>");
  Put("in/report.metadata", "data");
  Put("in/report.metadata.metadata", "<m/>");
  Put("in/x.sftpreceipt", "bytes");
  Put("in/x.sftpreceipt.metadata", "<m/>");
  Put("in/sent.csv.sftpreceipt", "<receipt/>");  // the account's own receipt
  Put("in/gone.csv.metadata", "<m/>");           // metadata whose data was fetched
  std::vector<std::string> asked;
  auto delivered = [&](const std::string& name) -> Result<bool> {
    asked.push_back(name);
    return name == "report.metadata" || name == "x.sftpreceipt";
  };
  auto usage = UsageOf(dir(2), delivered);
  ASSERT_TRUE(usage.ok()) << usage.status().message();
  EXPECT_EQ(usage->files, 3u);
  EXPECT_EQ(usage->bytes, 3u + 4u + 5u);
  // Plain names are data anyway, and "x.metadata" beside "x" is metadata: the audit log is asked
  // only about the others, not once per delivery waiting in /IN.
  std::sort(asked.begin(), asked.end());
  EXPECT_EQ(asked, (std::vector<std::string>{"gone.csv.metadata", "report.metadata",
                                             "sent.csv.sftpreceipt", "x.sftpreceipt"}));
  auto failing = [](const std::string&) -> Result<bool> { return Status::Unavailable("busy"); };
  EXPECT_FALSE(UsageOf(dir(2), failing).ok());
}

TEST(KindOfInFile, TheAuditLogDecidesBeforeTheSuffix) {
  EXPECT_EQ(KindOfInFile("a.csv", false), InFileKind::kData);
  EXPECT_EQ(KindOfInFile("a.csv.metadata", false), InFileKind::kMetadata);
  EXPECT_EQ(KindOfInFile("a.csv.sftpreceipt", false), InFileKind::kReceipt);
  EXPECT_EQ(KindOfInFile("report.metadata", true), InFileKind::kData);
  EXPECT_EQ(KindOfInFile("x.sftpreceipt", true), InFileKind::kData);
}

TEST_F(FileOpsTest, CopyRefusesAFifo) {
  ASSERT_EQ(mkfifo((root_ + "/out/fifo").c_str(), 0600), 0);
  EXPECT_FALSE(CopyAndHash(Env::Default(), dir(3), "fifo", dir(0), "copy", 0440).ok());
}

}  // namespace
}  // namespace fordeler
