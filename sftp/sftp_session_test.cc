#include "sftp/sftp_session.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "sftp/session_test_client.h"

namespace fordeler {
namespace {

using testing_util::Client;
using testing_util::Reply;
using testing_util::SessionTest;

TEST_F(SessionTest, InitAnswersVersion3WithOurExtensions) {
  Client c(&registry_, &events_, "acme");
  Reply r = c.Call(PacketBuilder(kFxpInit).U32(6).Finish());  // lftp asks for 6
  ASSERT_EQ(r.type, kFxpVersion);
  EXPECT_EQ(r.id, 3u);  // the version field
  std::map<std::string, std::string> want = {{"posix-rename@openssh.com", "1"},
                                             {"statvfs@openssh.com", "2"},
                                             {"fsync@openssh.com", "1"},
                                             {"limits@openssh.com", "1"}};
  EXPECT_EQ(r.extensions, want);  // and no hardlink@openssh.com
}

TEST_F(SessionTest, RequestBeforeInitOrSecondInitEndsTheSession) {
  Client c(&registry_, &events_, "acme");
  EXPECT_FALSE(c.Feed(PacketBuilder(kFxpStat).U32(1).String("/").Finish()).ok());
  EXPECT_FALSE(client_.Feed(PacketBuilder(kFxpInit).U32(3).Finish()).ok());
}

TEST_F(SessionTest, UploadPublishesSizeAndSha256) {
  std::string data(300000, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  Reply h = client_.Create("OUT/data.csv");
  ASSERT_EQ(h.type, kFxpHandle);
  EXPECT_EQ(h.handle.size(), 4u);
  // Pipelined in order, as OpenSSH's sftp does: all WRITEs in one Consume.
  std::string batch;
  for (size_t off = 0; off < data.size(); off += 32768) {
    batch += PacketBuilder(kFxpWrite)
                 .U32(client_.id())
                 .String(h.handle)
                 .U64(off)
                 .String(data.substr(off, 32768))
                 .Finish();
  }
  ASSERT_TRUE(client_.Feed(batch).ok());
  for (size_t off = 0; off < data.size(); off += 32768) EXPECT_EQ(client_.Next().code, kFxOk);
  EXPECT_TRUE(events_.uploads().empty());
  EXPECT_TRUE(registry_.IsOpenForWriting("acme", "data.csv"));
  EXPECT_EQ(client_.Close(h.handle).code, kFxOk);
  EXPECT_FALSE(registry_.IsOpenForWriting("acme", "data.csv"));
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].account, "acme");
  EXPECT_EQ(ups[0].name, "data.csv");
  EXPECT_EQ(ups[0].size, data.size());
  EXPECT_EQ(ups[0].how, UploadClosed::How::kClosed);
  ASSERT_TRUE(ups[0].sha256.has_value());
  EXPECT_EQ(ToHex(*ups[0].sha256), ToHex(Sha256::Of(data)));

  // Read it back, in pieces, to EOF.
  Reply r = client_.Open("/OUT/./data.csv", kFxfRead);
  ASSERT_EQ(r.type, kFxpHandle);
  std::string back;
  for (;;) {
    Reply d = client_.Read(r.handle, back.size(), 1 << 20);  // clamped to 255 KiB
    if (d.type != kFxpData) {
      EXPECT_EQ(d.code, kFxEof);
      break;
    }
    EXPECT_LE(d.data.size(), kMaxReadWrite);
    back += d.data;
  }
  EXPECT_EQ(back, data);
  EXPECT_EQ(client_.Close(r.handle).code, kFxOk);
  EXPECT_EQ(events_.uploads().size(), 1u);  // reading publishes nothing
}

TEST_F(SessionTest, OutOfOrderWritesLeaveTheHashUnset) {
  Reply h = client_.Create("OUT/x");
  ASSERT_EQ(client_.Write(h.handle, 5, "world").code, kFxOk);
  ASSERT_EQ(client_.Write(h.handle, 0, "hello").code, kFxOk);
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].size, 10u);
  EXPECT_FALSE(ups[0].sha256.has_value());
}

// A digest describes only what its own handle wrote: once another writer has had the file open
// at the same time, neither writer's close may claim one.
TEST_F(SessionTest, TwoWritersAtOnceLeaveTheHashUnset) {
  Client other(&registry_, &events_, "acme");
  other.Init();
  Reply first = client_.Create("OUT/x");
  ASSERT_EQ(client_.Write(first.handle, 0, "AAAA").code, kFxOk);
  Reply second = other.Open("OUT/x", kFxfWrite);
  ASSERT_EQ(second.type, kFxpHandle);
  ASSERT_EQ(other.Write(second.handle, 0, "B").code, kFxOk);
  ASSERT_EQ(other.Close(second.handle).code, kFxOk);
  ASSERT_EQ(client_.Close(first.handle).code, kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_FALSE(ups[0].sha256.has_value());  // the second writer: wrote one byte of four
  EXPECT_EQ(ups[1].size, 4u);               // the first: "BAAA" on disk, not its "AAAA"
  EXPECT_FALSE(ups[1].sha256.has_value());

  // The same when the second writer comes first and writes the whole file in order.
  Reply early = other.Open("OUT/y", kFxfWrite | kFxfCreat);
  Reply late = client_.Open("OUT/y", kFxfWrite);
  ASSERT_EQ(late.type, kFxpHandle);
  ASSERT_EQ(client_.Write(late.handle, 0, "CCCC").code, kFxOk);
  ASSERT_EQ(other.Write(early.handle, 1, "D").code, kFxOk);
  ASSERT_EQ(client_.Close(late.handle).code, kFxOk);
  ASSERT_EQ(other.Close(early.handle).code, kFxOk);
  ups = events_.uploads();
  ASSERT_EQ(ups.size(), 4u);
  EXPECT_FALSE(ups[2].sha256.has_value());
  EXPECT_FALSE(ups[3].sha256.has_value());

  // One writer after the other is fine: the last wrote the whole file alone.
  ASSERT_EQ(client_.Put("OUT/y", "EEEE"), kFxOk);
  ups = events_.uploads();
  ASSERT_EQ(ups.size(), 5u);
  ASSERT_TRUE(ups[4].sha256.has_value());
  EXPECT_EQ(*ups[4].sha256, Sha256::Of("EEEE"));
}

// A path SETSTAT that truncates a file another handle is writing spoils that handle's digest.
TEST_F(SessionTest, SetstatTruncatingAnOpenUploadLeavesTheHashUnset) {
  Client other(&registry_, &events_, "acme");
  other.Init();
  Reply h = client_.Create("OUT/x");
  ASSERT_EQ(client_.Write(h.handle, 0, "AAAA").code, kFxOk);
  FileAttrs a;
  a.flags = kAttrSize;
  a.size = 2;
  EXPECT_EQ(other.Call(PacketBuilder(kFxpSetstat).U32(1).String("OUT/x").Attrs(a).Finish()).code,
            kFxOk);
  ASSERT_EQ(client_.Write(h.handle, 4, "CC").code, kFxOk);  // "AA\0\0CC" on disk
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_EQ(ups[0].how, UploadClosed::How::kChanged);  // the SETSTAT resized it
  EXPECT_EQ(ups[0].size, 2u);
  EXPECT_FALSE(ups[0].sha256.has_value());
  EXPECT_EQ(ups[1].how, UploadClosed::How::kClosed);
  EXPECT_EQ(ups[1].size, 6u);
  EXPECT_FALSE(ups[1].sha256.has_value());
}

// A data file closed, then resized by SETSTAT or rewritten by an upload that fails: its inode
// and perhaps its size stay, but the digest of the first close no longer describes it. Delivery
// is told (kChanged, no digest) before the handle lets go.
TEST_F(SessionTest, ChangesWithoutACompleteUploadAreAnnouncedWithoutADigest) {
  ASSERT_EQ(client_.Put("OUT/d.csv", "abcdef"), kFxOk);
  FileAttrs a;
  a.flags = kAttrSize;
  a.size = 6;  // the same size: only the bytes could differ (here they do not)
  ASSERT_EQ(client_.Setstat("OUT/d.csv", a).code, kFxOk);
  Reply h = client_.Open("OUT/d.csv", kFxfWrite);
  ASSERT_EQ(client_.Write(h.handle, 0, "XY").code, kFxOk);
  EXPECT_NE(client_.Write(h.handle, uint64_t{1} << 62, "z").code, kFxOk);  // too large
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 3u);
  EXPECT_EQ(ups[0].how, UploadClosed::How::kClosed);
  EXPECT_TRUE(ups[0].sha256.has_value());
  for (size_t i : {1u, 2u}) {
    EXPECT_EQ(ups[i].how, UploadClosed::How::kChanged) << i;
    EXPECT_EQ(ups[i].name, "d.csv");
    EXPECT_EQ(ups[i].size, 6u);
    EXPECT_EQ(ups[i].inode, ups[0].inode);
    EXPECT_FALSE(ups[i].sha256.has_value());
  }
  // Resizing a trigger announces nothing: a trigger is read, never hashed.
  ASSERT_EQ(client_.Put("OUT/d.csv.trigger", "<x/>"), kFxOk);
  ASSERT_EQ(client_.Setstat("OUT/d.csv.trigger", a).code, kFxOk);
  EXPECT_EQ(events_.uploads().size(), 4u);
}

TEST_F(SessionTest, EmptyUploadHasTheEmptyDigest) {
  ASSERT_EQ(client_.Put("OUT/empty", ""), kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].size, 0u);
  ASSERT_TRUE(ups[0].sha256.has_value());
  EXPECT_EQ(*ups[0].sha256, Sha256::Of(""));
}

TEST_F(SessionTest, FsetstatSizeAndTimesAsLftpDoes) {
  Reply h = client_.Create("OUT/lftp.csv");
  ASSERT_EQ(client_.Write(h.handle, 0, "0123456789").code, kFxOk);
  FileAttrs a;
  a.flags = kAttrSize | kAttrAcModTime;
  a.size = 10;  // the hashed length: the digest stays valid
  a.atime = a.mtime = 1600000000;
  EXPECT_EQ(
      client_.Call(PacketBuilder(kFxpFsetstat).U32(1).String(h.handle).Attrs(a).Finish()).code,
      kFxOk);
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  Reply st = client_.PathOp(kFxpStat, "OUT/lftp.csv");
  EXPECT_EQ(st.attrs.mtime, 1600000000u);
  ASSERT_TRUE(events_.uploads().at(0).sha256.has_value());

  h = client_.Open("OUT/lftp.csv", kFxfWrite);
  a.size = 4;  // truncation: no digest
  EXPECT_EQ(
      client_.Call(PacketBuilder(kFxpFsetstat).U32(1).String(h.handle).Attrs(a).Finish()).code,
      kFxOk);
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  EXPECT_EQ(events_.uploads().at(1).size, 4u);
  EXPECT_FALSE(events_.uploads().at(1).sha256.has_value());
}

TEST_F(SessionTest, WriteBeyondMaxFileSizeFails) {
  Reply h = client_.Create("OUT/big");
  Reply w = client_.Write(h.handle, (1 << 20) - 2, "abc");
  EXPECT_EQ(w.code, kFxFailure);
  EXPECT_EQ(w.message, "file too large");
  EXPECT_EQ(client_.Write(h.handle, (1 << 20) - 3, "abc").code, kFxOk);
  client_.Close(h.handle);
}

// An appending handle writes at the end of the file, whatever offset it sends: the limits count
// from there (a reopened file once grew past both, since the offset stood still).
TEST_F(SessionTest, AppendingCannotGrowAFilePastTheLimits) {
  ASSERT_EQ(client_.Put("OUT/grow", "x"), kFxOk);
  Reply h = client_.Open("OUT/grow", kFxfWrite | kFxfAppend);
  ASSERT_EQ(h.code, kFxOk);
  std::string chunk(200'000, 'a');
  int written = 0;
  for (int i = 0; i < 8; ++i) {
    Reply w = client_.Write(h.handle, 0, chunk);
    if (w.code != kFxOk) {
      EXPECT_EQ(w.message, "file too large");
      break;
    }
    ++written;
  }
  EXPECT_EQ(written, 5);  // 1 + 5 * 200,000 bytes fit in 1 MiB, a sixth would not
  client_.Close(h.handle);
  EXPECT_EQ(std::filesystem::file_size(Out() + "grow"), 1'000'001u);

  SftpSessionOptions o = Client::Options("acme", 64);
  o.out_quota = 100;
  Client c(&registry_, &events_, o);
  c.Init();
  ASSERT_EQ(c.PathOp(kFxpRemove, "OUT/grow").code, kFxOk);
  ASSERT_EQ(c.Put("OUT/q", std::string(60, 'q')), kFxOk);
  Reply a = c.Open("OUT/q", kFxfWrite | kFxfAppend);
  EXPECT_EQ(c.Write(a.handle, 0, std::string(40, 'q')).code, kFxOk);  // exactly 100
  Reply w = c.Write(a.handle, 0, "x");
  EXPECT_EQ(w.code, kFxFailure);
  EXPECT_TRUE(w.message.starts_with("quota exceeded")) << w.message;
  c.Close(a.handle);
}

// With an offload (the SSH transport's sync threads), the CLOSE of an upload written back while
// it arrived (1 MiB or more) is answered only once its sync (`work`) has run and `done` is called
// back on the session; it is announced at its close as any upload. A small upload's CLOSE is
// answered at once, and so are the requests that follow a deferred one.
TEST_F(SessionTest, ALargeUploadsCloseIsAnsweredOnceItIsOnDisk) {
  std::vector<std::pair<std::function<void()>, std::function<void()>>> queued;
  SftpSessionOptions o = Client::Options("acme", 64);
  o.max_file_size = 8 << 20;
  o.offload = [&queued](std::function<void()> work, std::function<void()> done) {
    queued.emplace_back(std::move(work), std::move(done));
  };
  Client c(&registry_, &events_, o);
  c.Init();
  EXPECT_EQ(c.Put("OUT/small", "abc"), kFxOk);
  EXPECT_TRUE(queued.empty());
  Reply h = c.Create("OUT/large");
  const std::string chunk(200'000, 'x');
  for (uint64_t i = 0; i < 6; ++i) {
    ASSERT_EQ(c.Write(h.handle, i * chunk.size(), chunk).code, kFxOk);
  }
  const uint32_t close_id = c.id();
  ASSERT_TRUE(c.Feed(PacketBuilder(kFxpClose).U32(close_id).String(h.handle).Finish()).ok());
  EXPECT_TRUE(c.session().output().empty()) << "answered before the sync";
  ASSERT_EQ(queued.size(), 1u);
  EXPECT_EQ(events_.uploads().back().name, "large");
  EXPECT_EQ(events_.uploads().back().how, UploadClosed::How::kClosed);
  EXPECT_EQ(c.PathOp(kFxpStat, "OUT/large").type, kFxpAttrs);  // answered meanwhile
  queued[0].first();                                           // on a sync thread in the server
  queued[0].second();                                          // back on the session's thread
  Reply closed = c.Next();
  EXPECT_EQ(closed.type, kFxpStatus);
  EXPECT_EQ(closed.id, close_id);
  EXPECT_EQ(closed.code, kFxOk);
  EXPECT_EQ(std::filesystem::file_size(Out() + "large"), 1'200'000u);
}

TEST_F(SessionTest, OutQuotaRefusesWritesAndTheUploadIsNotAnnounced) {
  SftpSessionOptions o = Client::Options("acme", 64);
  o.out_quota = 100;
  Client c(&registry_, &events_, o);
  c.Init();
  ASSERT_EQ(c.Put("OUT/a", std::string(60, 'a')), kFxOk);
  ASSERT_EQ(c.Put("OUT/a.trigger", std::string(500, 't')), kFxOk);  // triggers do not count
  Reply h = c.Create("OUT/b");
  EXPECT_EQ(c.Write(h.handle, 0, std::string(40, 'b')).code, kFxOk);  // exactly 100
  Reply w = c.Write(h.handle, 40, "x");
  EXPECT_EQ(w.code, kFxFailure);
  EXPECT_TRUE(w.message.starts_with("quota exceeded: /OUT may hold 100 bytes")) << w.message;
  EXPECT_EQ(c.Close(h.handle).code, kFxOk);
  std::vector<std::string> announced;
  for (const UploadClosed& u : events_.uploads()) {
    if (u.how != UploadClosed::How::kChanged) announced.push_back(u.name);
  }
  EXPECT_EQ(announced, (std::vector<std::string>{"a", "a.trigger"}));  // b failed: not routed
  EXPECT_EQ(events_.uploads().back().name, "b");                       // only said to have changed
  EXPECT_EQ(events_.uploads().back().how, UploadClosed::How::kChanged);
  int limits = 0;
  for (const SessionEvent& e : events_.sessions()) {
    if (e.kind == SessionEvent::Kind::kLimit) ++limits;
  }
  EXPECT_EQ(limits, 1);
  // Growing a file with SETSTAT counts too; rewriting a file in place within the quota works.
  FileAttrs a;
  a.flags = kAttrSize;
  a.size = 41;
  EXPECT_EQ(c.Setstat("OUT/b", a).code, kFxFailure);
  a.size = 40;
  EXPECT_EQ(c.Setstat("OUT/b", a).code, kFxOk);
  EXPECT_EQ(c.Put("OUT/a", std::string(60, 'A')), kFxOk);
  // Once files leave /OUT there is room again.
  EXPECT_EQ(c.PathOp(kFxpRemove, "OUT/a").code, kFxOk);
  EXPECT_EQ(c.Put("OUT/c", std::string(60, 'c')), kFxOk);
}

// A data file carries the sticky bit while an upload writes it, and keeps it when the upload
// does not finish (a refused write, a session that ends), so that delivery never takes it for
// complete, even after a restart; an upload that finishes clears it. Triggers are never marked.
TEST_F(SessionTest, AnUploadThatDoesNotFinishKeepsItsUnfinishedMark) {
  auto mode = [this](const std::string& name) {
    struct stat st;
    EXPECT_EQ(lstat((Out() + name).c_str(), &st), 0) << name;
    return st.st_mode & 07777;
  };
  Reply h = client_.Create("OUT/a.csv");
  ASSERT_EQ(client_.Write(h.handle, 0, "abc").code, kFxOk);
  EXPECT_EQ(mode("a.csv"), 01640u);  // being written
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  EXPECT_EQ(mode("a.csv"), 0640u);
  EXPECT_EQ(client_.PathOp(kFxpStat, "OUT/a.csv").attrs.permissions & 07777, 0640u);

  h = client_.Open("OUT/a.csv", kFxfWrite);  // written again in place: marked again
  EXPECT_EQ(mode("a.csv"), 01640u);
  EXPECT_EQ(client_.Write(h.handle, 1 << 20, "x").code, kFxFailure);  // past max_file_size
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  EXPECT_EQ(mode("a.csv"), 01640u);                    // its write was refused: unfinished
  ASSERT_EQ(client_.Put("OUT/a.csv", "abcd"), kFxOk);  // uploaded again, completely
  EXPECT_EQ(mode("a.csv"), 0640u);

  {
    Client gone(&registry_, &events_, "acme");
    gone.Init();
    Reply g = gone.Create("OUT/b.csv");
    ASSERT_EQ(gone.Write(g.handle, 0, "ab").code, kFxOk);
  }  // the session ends with the upload open
  EXPECT_EQ(mode("b.csv"), 01640u);
  EXPECT_EQ(events_.uploads().back().name, "b.csv");
  EXPECT_EQ(events_.uploads().back().how, UploadClosed::How::kChanged);

  h = client_.Create("OUT/b.csv.trigger");
  EXPECT_EQ(mode("b.csv.trigger"), 0640u);
  ASSERT_EQ(client_.Write(h.handle, 0, "<x/>").code, kFxOk);
  ASSERT_EQ(client_.Close(h.handle).code, kFxOk);
  EXPECT_EQ(mode("b.csv.trigger"), 0640u);
}

TEST_F(SessionTest, PacketOverMaxSizeEndsTheSession) {
  std::string header("\x00\x04\x00\x01", 4);  // 256 KiB + 1
  EXPECT_FALSE(client_.Feed(header).ok());
}

TEST_F(SessionTest, MaxSizePacketIsAccepted) {
  Reply h = client_.Create("OUT/max");
  std::string p = PacketBuilder(kFxpWrite).U32(1).String(h.handle).U64(0).String("").Finish();
  size_t room = kMaxPacketSize - (p.size() - 4);
  Reply w = client_.Write(h.handle, 0, std::string(room, 'm'));
  EXPECT_EQ(w.code, kFxOk);
}

TEST_F(SessionTest, MalformedPacketEndsTheSession) {
  EXPECT_FALSE(client_.Feed(PacketBuilder(kFxpOpen).U32(1).String("OUT/x").Finish()).ok());
}

TEST_F(SessionTest, PartialPacketsWaitForTheRest) {
  std::string p = PacketBuilder(kFxpRealpath).U32(77).String("OUT/../IN/./").Finish();
  for (char ch : p) ASSERT_TRUE(client_.Feed(std::string(1, ch)).ok());
  Reply r = client_.Next();
  ASSERT_EQ(r.type, kFxpName);
  EXPECT_EQ(r.id, 77u);
  EXPECT_EQ(r.names.at(0), "/IN");
}

TEST_F(SessionTest, UnknownTypeAndExtensionAreUnsupported) {
  Reply r = client_.Call(PacketBuilder(99).U32(5).String("junk").Finish());
  EXPECT_EQ(r.type, kFxpStatus);
  EXPECT_EQ(r.id, 5u);
  EXPECT_EQ(r.code, kFxOpUnsupported);
  r = client_.Call(PacketBuilder(kFxpExtended)
                       .U32(6)
                       .String("hardlink@openssh.com")
                       .String("OUT/a")
                       .String("OUT/b")
                       .Finish());
  EXPECT_EQ(r.code, kFxOpUnsupported);
  r = client_.PathOp(kFxpReadlink, "OUT/a");
  EXPECT_EQ(r.code, kFxOpUnsupported);
  r = client_.Call(
      PacketBuilder(kFxpSymlink).U32(1).String("OUT/l").String("/etc/passwd").Finish());
  EXPECT_EQ(r.code, kFxOpUnsupported);
  EXPECT_FALSE(Exists(Out() + "l"));
}

TEST_F(SessionTest, LimitsAndStatvfs) {
  Reply r = client_.Call(PacketBuilder(kFxpExtended).U32(1).String("limits@openssh.com").Finish());
  ASSERT_EQ(r.type, kFxpExtendedReply);
  ASSERT_EQ(r.u64s.size(), 4u);
  EXPECT_EQ(r.u64s[0], 256u * 1024);
  EXPECT_EQ(r.u64s[1], 255u * 1024);
  EXPECT_EQ(r.u64s[2], 255u * 1024);
  EXPECT_EQ(r.u64s[3], 64u);
  r = client_.Call(
      PacketBuilder(kFxpExtended).U32(2).String("statvfs@openssh.com").String("OUT").Finish());
  ASSERT_EQ(r.type, kFxpExtendedReply);
  EXPECT_EQ(r.u64s.size(), 11u);
}

TEST_F(SessionTest, FsyncOnAWriteHandle) {
  Reply h = client_.Create("OUT/f");
  client_.Write(h.handle, 0, "x");
  Reply r = client_.Call(
      PacketBuilder(kFxpExtended).U32(1).String("fsync@openssh.com").String(h.handle).Finish());
  EXPECT_EQ(r.code, kFxOk);
  client_.Close(h.handle);
}

TEST_F(SessionTest, RealpathNormalisesEvenMissingNames) {
  EXPECT_EQ(client_.PathOp(kFxpRealpath, ".").names.at(0), "/");
  EXPECT_EQ(client_.PathOp(kFxpRealpath, "").names.at(0), "/");
  EXPECT_EQ(client_.PathOp(kFxpRealpath, "OUT/not-yet.csv").names.at(0), "/OUT/not-yet.csv");
  EXPECT_EQ(client_.PathOp(kFxpRealpath, "/../../OUT").names.at(0), "/OUT");
  EXPECT_EQ(client_.PathOp(kFxpRealpath, "/etc").code, kFxNoSuchFile);
  EXPECT_EQ(client_.PathOp(kFxpRealpath, std::string("/OUT/a\0b", 8)).code, kFxBadMessage);
}

TEST_F(SessionTest, ListingShowsRegularFilesOnly) {
  ASSERT_EQ(client_.Put("OUT/b.csv", "b"), kFxOk);
  ASSERT_EQ(client_.Put("OUT/\xc3\xa6\xc3\xb8\xc3\xa5.csv", "danish"), kFxOk);
  WriteFile(Out() + ".hidden", "h");
  ASSERT_EQ(symlink("/etc/passwd", (Out() + "link").c_str()), 0);
  ASSERT_EQ(mkfifo((Out() + "fifo").c_str(), 0600), 0);
  std::vector<std::string> names = client_.List("OUT");
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"b.csv", "\xc3\xa6\xc3\xb8\xc3\xa5.csv"}));
  names = client_.List("/");
  EXPECT_EQ(names, (std::vector<std::string>{"IN", "OUT"}));
  EXPECT_TRUE(client_.List("IN").empty());
  Reply h = client_.PathOp(kFxpOpendir, "OUT");
  Reply r = client_.Call(PacketBuilder(kFxpReaddir).U32(1).String(h.handle).Finish());
  ASSERT_EQ(r.longnames.size(), 2u);
  EXPECT_EQ(r.longnames[0].substr(0, 1), "-");
  EXPECT_NE(r.longnames[0].find(" acme "), std::string::npos);
}

TEST_F(SessionTest, ManyFilesAreListedInBatches) {
  for (int i = 0; i < 250; ++i) WriteFile(Out() + "f" + std::to_string(i), "");
  EXPECT_EQ(client_.List("/OUT").size(), 250u);
}

TEST_F(SessionTest, HandleLimitRefusesCleanly) {
  Client c(&registry_, &events_, "acme", /*max_handles=*/8);
  c.Init();
  ASSERT_EQ(client_.Put("OUT/f", "x"), kFxOk);
  std::vector<std::string> open;
  for (int i = 0; i < 8; ++i) open.push_back(c.Open("OUT/f", kFxfRead).handle);
  int fds_before = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++fds_before;
    closedir(d);
  }
  for (int i = 0; i < 10000; ++i) {
    Reply r = c.Open("OUT/f", kFxfRead);
    ASSERT_EQ(r.code, kFxFailure);
    ASSERT_EQ(r.message, "too many open handles: max_handles_per_session (8) reached");
  }
  EXPECT_EQ(c.PathOp(kFxpOpendir, "OUT").message,
            "too many open handles: max_handles_per_session (8) reached");
  int limits = 0;  // reported (log line, audit event) once, not 10,001 times
  for (const SessionEvent& e : events_.sessions()) {
    if (e.kind != SessionEvent::Kind::kLimit) continue;
    ++limits;
    EXPECT_EQ(e.account, "acme");
    EXPECT_EQ(e.detail, "max_handles_per_session (8) reached");
  }
  EXPECT_EQ(limits, 1);
  int fds_after = 0;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (readdir(d)) ++fds_after;
    closedir(d);
  }
  EXPECT_EQ(fds_before, fds_after);
  EXPECT_EQ(c.Close(open[3]).code, kFxOk);
  EXPECT_EQ(c.Close(open[3]).code, kFxFailure);  // stale handle
  Reply again = c.Open("OUT/f", kFxfRead);
  EXPECT_EQ(again.type, kFxpHandle);
  EXPECT_NE(again.handle, open[3]);  // same slot, new generation
  EXPECT_EQ(c.Read(open[3], 0, 10).code, kFxFailure);
}

TEST_F(SessionTest, ForgedHandlesAreRefused) {
  for (const std::string& h : {std::string(""), std::string("abc"), std::string("\0\0\0\0", 4),
                               std::string("\xff\xff\0\0", 4), std::string(300, 'h')}) {
    EXPECT_EQ(client_.Read(h, 0, 10).code, kFxFailure);
    EXPECT_EQ(client_.Close(h).code, kFxFailure);
  }
}

TEST_F(SessionTest, BackPressureStopsConsumingWhenOutputIsFull) {
  ASSERT_EQ(client_.Put("OUT/r", std::string(200000, 'r')), kFxOk);
  Reply h = client_.Open("OUT/r", kFxfRead);
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    batch += PacketBuilder(kFxpRead).U32(100 + i).String(h.handle).U64(0).U32(200000).Finish();
  }
  SftpSession& s = client_.session();
  Result<size_t> used = s.Consume(reinterpret_cast<const uint8_t*>(batch.data()), batch.size());
  ASSERT_TRUE(used.ok());
  EXPECT_LT(*used, batch.size());
  EXPECT_FALSE(s.WantsInput());
  EXPECT_LT(s.output().size(), SftpSession::kOutputHighWater + 300000);
}

}  // namespace
}  // namespace fordeler
