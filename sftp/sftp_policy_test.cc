// The jail policy (contract §1) and the outbox gate (contract §2) as a client sees them through
// SftpSession.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "sftp/session_test_client.h"

namespace fordeler {
namespace {

using testing_util::Client;
using testing_util::Reply;
using testing_util::SessionTest;

TEST_F(SessionTest, NothingCanBeWrittenInIn) {
  Reply r = client_.Create("IN/x");
  EXPECT_EQ(r.code, kFxPermissionDenied);
  EXPECT_FALSE(Exists(In() + "x"));
  WriteFile(In() + "receipt", "r");
  EXPECT_EQ(client_.Open("IN/receipt", kFxfWrite).code, kFxPermissionDenied);
  EXPECT_EQ(client_.Open("IN/receipt", kFxfRead | kFxfTrunc).code, kFxPermissionDenied);
  EXPECT_EQ(client_.Open("IN/receipt", kFxfAppend).code, kFxPermissionDenied);
  FileAttrs a;
  a.flags = kAttrSize;
  EXPECT_EQ(client_.Setstat("IN/receipt", a).code, kFxPermissionDenied);
  a.flags = kAttrAcModTime;
  EXPECT_EQ(client_.Setstat("/IN/receipt", a).code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("IN/receipt", "IN/other").code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("IN/receipt", "OUT/stolen").code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("OUT/x", "IN/x").code, kFxPermissionDenied);
  Reply h = client_.Open("IN/receipt", kFxfRead);
  ASSERT_EQ(h.type, kFxpHandle);
  EXPECT_EQ(
      client_.Call(PacketBuilder(kFxpFsetstat).U32(1).String(h.handle).Attrs(a).Finish()).code,
      kFxPermissionDenied);
  EXPECT_EQ(client_.Write(h.handle, 0, "changed").code, kFxPermissionDenied);
  client_.Close(h.handle);
  struct stat st;
  ASSERT_EQ(stat((In() + "receipt").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 1);
}

TEST_F(SessionTest, ReadingInIgnoresAttributesAndReportsTheDownloadOnce) {
  WriteFile(In() + "data.csv", "delivered");
  FileAttrs a;
  a.flags = kAttrPermissions | kAttrAcModTime;
  a.permissions = 0777;
  Reply h = client_.Open("IN/data.csv", kFxfRead, a);
  ASSERT_EQ(h.type, kFxpHandle);
  EXPECT_EQ(client_.Read(h.handle, 0, 100).data, "delivered");
  EXPECT_EQ(client_.Read(h.handle, 9, 100).code, kFxEof);
  EXPECT_EQ(client_.Read(h.handle, 9, 100).code, kFxEof);
  client_.Close(h.handle);
  auto ev = events_.sessions();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, SessionEvent::Kind::kDownloaded);
  EXPECT_EQ(ev[0].folder, Folder::kIn);
  EXPECT_EQ(ev[0].name, "data.csv");
  EXPECT_EQ(ev[0].account, "acme");
  struct stat st;
  ASSERT_EQ(stat((In() + "data.csv").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // Closing a read handle in /IN without reaching EOF reports it too.
  h = client_.Open("IN/data.csv", kFxfRead);
  client_.Close(h.handle);
  EXPECT_EQ(events_.sessions().size(), 2u);
}

TEST_F(SessionTest, RemovingInIsAPickUp) {
  WriteFile(In() + "data.csv", "d");
  EXPECT_EQ(client_.PathOp(kFxpRemove, "IN/data.csv").code, kFxOk);
  EXPECT_FALSE(Exists(In() + "data.csv"));
  auto ev = events_.sessions();
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, SessionEvent::Kind::kRemoved);
  EXPECT_EQ(ev[0].name, "data.csv");
  EXPECT_EQ(client_.PathOp(kFxpRemove, "IN/data.csv").code, kFxNoSuchFile);
  EXPECT_EQ(client_.PathOp(kFxpRemove, "/IN").code, kFxPermissionDenied);
  EXPECT_EQ(client_.PathOp(kFxpRemove, "/").code, kFxPermissionDenied);
}

TEST_F(SessionTest, RootIsListAndStatOnly) {
  Reply r = client_.PathOp(kFxpStat, "/");
  ASSERT_EQ(r.type, kFxpAttrs);
  EXPECT_TRUE(S_ISDIR(r.attrs.permissions));
  EXPECT_TRUE(S_ISDIR(client_.PathOp(kFxpLstat, "OUT").attrs.permissions));
  EXPECT_EQ(client_.Create("/x").code, kFxNoSuchFile);
  EXPECT_EQ(client_.Create("x").code, kFxNoSuchFile);
  EXPECT_EQ(client_.Open("/OUT", kFxfRead).code, kFxPermissionDenied);
  EXPECT_EQ(client_.PathOp(kFxpOpendir, "/OUT/nothing").code, kFxNoSuchFile);
}

TEST_F(SessionTest, FoldersAndLinksAreRefused) {
  Reply r = client_.Call(PacketBuilder(kFxpMkdir).U32(1).String("OUT/sub").Attrs({}).Finish());
  EXPECT_EQ(r.code, kFxPermissionDenied);
  EXPECT_EQ(r.message, "sub-folders are not part of the protocol");
  EXPECT_EQ(client_.Call(PacketBuilder(kFxpMkdir).U32(1).String("/a/b/c").Attrs({}).Finish()).code,
            kFxPermissionDenied);
  EXPECT_EQ(client_.PathOp(kFxpRmdir, "OUT").code, kFxPermissionDenied);
  EXPECT_FALSE(Exists(Out() + "sub"));
  EXPECT_TRUE(Exists(Out()));
}

TEST_F(SessionTest, OnlyValidNamesCanBeCreated) {
  for (const std::string& bad : std::vector<std::string>{
           "OUT/.hidden", "OUT/a\nb", "OUT/tab\t", "OUT/" + std::string(244, 'n'),
           "OUT/bad\xc0\xaf", "OUT/.trigger", "OUT/" + std::string(244, 'n') + ".trigger"}) {
    EXPECT_EQ(client_.Create(bad).code, kFxPermissionDenied) << bad;
  }
  EXPECT_EQ(client_.Create("OUT/a/b").code, kFxNoSuchFile);
  EXPECT_TRUE(client_.List("OUT").empty());
  for (const std::string& good : std::vector<std::string>{
           "OUT/" + std::string(243, 'n'), "OUT/" + std::string(243, 'n') + ".trigger",
           "OUT/\xc3\x98konomi \xc3\xa6\xc3\xb8\xc3\xa5.csv", "OUT/x.csv.trigger"}) {
    EXPECT_EQ(client_.Put(good, "g"), kFxOk) << good;
  }
  EXPECT_EQ(client_.List("OUT").size(), 4u);
}

TEST_F(SessionTest, RenameWithinOutOnlyToValidNames) {
  ASSERT_EQ(client_.Put("OUT/x.tmp", "data"), kFxOk);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "OUT/.x").code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "OUT/a\x01").code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "OUT/sub/x").code, kFxNoSuchFile);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "/x").code, kFxNoSuchFile);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "OUT").code, kFxPermissionDenied);
  EXPECT_EQ(client_.Rename("OUT/x.tmp", "OUT/x.trigger").code, kFxOk);
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 2u);
  EXPECT_EQ(ups[1].name, "x.trigger");
  EXPECT_EQ(ups[1].how, UploadClosed::How::kRenamed);
  EXPECT_EQ(ups[1].size, 4u);
  // v3 rename never overwrites; posix-rename does.
  ASSERT_EQ(client_.Put("OUT/y", "yy"), kFxOk);
  Reply r = client_.Rename("OUT/y", "OUT/x.trigger");
  EXPECT_EQ(r.code, kFxFailure);
  EXPECT_EQ(client_.Rename("OUT/y", "OUT/x.trigger", /*posix=*/true).code, kFxOk);
  EXPECT_FALSE(Exists(Out() + "y"));
  EXPECT_EQ(client_.PathOp(kFxpStat, "OUT/x.trigger").attrs.size, 2u);
}

TEST_F(SessionTest, RenameOfAFileOpenForWritingIsRefused) {
  Reply h = client_.Create("OUT/busy");
  EXPECT_EQ(client_.Rename("OUT/busy", "OUT/busy.trigger").code, kFxFailure);
  ASSERT_EQ(client_.Put("OUT/other", "o"), kFxOk);
  EXPECT_EQ(client_.Rename("OUT/other", "OUT/busy", true).code, kFxFailure);
  client_.Close(h.handle);
}

TEST_F(SessionTest, OneAccountCannotReachAnother) {
  WriteFile(Out("other") + "secret", "theirs");
  WriteFile(In("other") + "secret", "theirs");
  for (const char* p :
       {"../other/OUT/secret", "/../other/OUT/secret", "../../accounts/other/OUT/secret",
        "/accounts/other/IN/secret", "OUT/../../other/IN/secret"}) {
    EXPECT_EQ(client_.Open(p, kFxfRead).code, kFxNoSuchFile) << p;
    EXPECT_EQ(client_.PathOp(kFxpStat, p).code, kFxNoSuchFile) << p;
    EXPECT_EQ(client_.PathOp(kFxpRemove, p).code, kFxNoSuchFile) << p;
    EXPECT_NE(client_.Create(p).type, kFxpHandle) << p;
  }
  EXPECT_EQ(client_.Open("../other/OUT/../../OUT/secret", kFxfRead).code, kFxNoSuchFile);
  EXPECT_TRUE(Exists(Out("other") + "secret"));
  EXPECT_TRUE(Exists(In("other") + "secret"));
}

TEST_F(SessionTest, PlantedSymlinkIsNotFollowed) {
  WriteFile(Out("other") + "secret", "theirs");
  ASSERT_EQ(symlink((Out("other") + "secret").c_str(), (Out() + "link").c_str()), 0);
  EXPECT_EQ(client_.Open("OUT/link", kFxfRead).code, kFxNoSuchFile);
  EXPECT_EQ(client_.Create("OUT/link").code, kFxNoSuchFile);
  EXPECT_EQ(client_.PathOp(kFxpStat, "OUT/link").code, kFxNoSuchFile);
  EXPECT_EQ(client_.PathOp(kFxpLstat, "OUT/link").code, kFxNoSuchFile);
  FileAttrs a;
  a.flags = kAttrSize;
  EXPECT_EQ(client_.Setstat("OUT/link", a).code, kFxNoSuchFile);
  struct stat st;
  ASSERT_EQ(stat((Out("other") + "secret").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 6);
}

TEST_F(SessionTest, BeginTakeWaitsForWriters) {
  Client other(&registry_, &events_, "acme");
  other.Init();
  Reply h = other.Create("OUT/d.csv");
  other.Write(h.handle, 0, "part");
  EXPECT_TRUE(registry_.IsOpenForWriting("acme", "d.csv"));
  EXPECT_FALSE(registry_.IsOpenForWriting("other", "d.csv"));
  EXPECT_FALSE(registry_.BeginTake("acme", "d.csv"));
  other.Close(h.handle);
  EXPECT_TRUE(registry_.BeginTake("acme", "d.csv"));
  EXPECT_FALSE(registry_.BeginTake("acme", "d.csv"));  // already being taken
  // While taken: no new opens, not listed, not removable.
  EXPECT_EQ(client_.Open("OUT/d.csv", kFxfRead).code, kFxNoSuchFile);
  EXPECT_EQ(client_.Create("OUT/d.csv").code, kFxFailure);
  EXPECT_TRUE(client_.List("OUT").empty());
  EXPECT_EQ(client_.PathOp(kFxpRemove, "OUT/d.csv").code, kFxNoSuchFile);
  registry_.EndTake("acme", "d.csv", /*taken=*/false);
  Reply r = client_.Open("OUT/d.csv", kFxfRead);
  EXPECT_EQ(r.type, kFxpHandle);
  client_.Close(r.handle);
}

TEST_F(SessionTest, TakenFileShowsItsAttributesForTenSeconds) {
  ASSERT_EQ(client_.Put("OUT/d.csv", "12345"), kFxOk);
  FileAttrs times;
  times.flags = kAttrAcModTime;
  times.atime = times.mtime = 1500000000;
  ASSERT_EQ(client_.Setstat("OUT/d.csv", times).code, kFxOk);  // as rclone does
  ASSERT_TRUE(registry_.BeginTake("acme", "d.csv"));
  ASSERT_EQ(unlink((Out() + "d.csv").c_str()), 0);  // delivery moved it away
  registry_.EndTake("acme", "d.csv", /*taken=*/true);

  Client pooled(&registry_, &events_, "acme");  // another session of the same account
  pooled.Init();
  for (Client* c : {&client_, &pooled}) {
    Reply st = c->PathOp(kFxpStat, "OUT/d.csv");
    ASSERT_EQ(st.type, kFxpAttrs);
    EXPECT_EQ(st.attrs.size, 5u);
    EXPECT_EQ(st.attrs.mtime, 1500000000u);
    EXPECT_EQ(c->PathOp(kFxpLstat, "/OUT/./d.csv").attrs.size, 5u);
    EXPECT_EQ(c->Setstat("OUT/d.csv", times).code, kFxOk);  // without effect
    EXPECT_EQ(c->Open("OUT/d.csv", kFxfRead).code, kFxNoSuchFile);
    // An open for writing that creates nothing (no CREAT) changes nothing either.
    EXPECT_EQ(c->Open("OUT/d.csv", kFxfWrite).code, kFxNoSuchFile);
    EXPECT_EQ(c->PathOp(kFxpStat, "OUT/d.csv").attrs.size, 5u);
    EXPECT_TRUE(c->List("OUT").empty());
  }
  Client stranger(&registry_, &events_, "other");
  stranger.Init();
  EXPECT_EQ(stranger.PathOp(kFxpStat, "OUT/d.csv").code, kFxNoSuchFile);
  EXPECT_FALSE(Exists(Out() + "d.csv"));

  env_.Advance(std::chrono::milliseconds(9999));
  EXPECT_EQ(client_.PathOp(kFxpStat, "OUT/d.csv").type, kFxpAttrs);
  env_.Advance(std::chrono::milliseconds(1));
  EXPECT_EQ(client_.PathOp(kFxpStat, "OUT/d.csv").code, kFxNoSuchFile);
  EXPECT_EQ(client_.Setstat("OUT/d.csv", times).code, kFxNoSuchFile);
  // The same name can be sent again.
  EXPECT_EQ(client_.Put("OUT/d.csv", "again"), kFxOk);
}

TEST_F(SessionTest, HandleOpenedBeforeTheTakeLosesAccess) {
  ASSERT_EQ(client_.Put("OUT/d.csv", "content"), kFxOk);
  Reply h = client_.Open("OUT/d.csv", kFxfRead);
  ASSERT_EQ(client_.Read(h.handle, 0, 3).data, "con");
  ASSERT_TRUE(registry_.BeginTake("acme", "d.csv"));
  EXPECT_EQ(client_.Read(h.handle, 3, 10).code, kFxNoSuchFile);
  EXPECT_EQ(client_.Call(PacketBuilder(kFxpFstat).U32(1).String(h.handle).Finish()).code,
            kFxNoSuchFile);
  registry_.EndTake("acme", "d.csv", /*taken=*/true);
  EXPECT_EQ(client_.Read(h.handle, 3, 10).code, kFxNoSuchFile);
  EXPECT_EQ(client_.Close(h.handle).code, kFxOk);
}

TEST_F(SessionTest, AbortRemovesAHalfWrittenTrigger) {
  Reply data = client_.Create("OUT/d.csv");
  client_.Write(data.handle, 0, "half");
  Reply trig = client_.Create("OUT/d.csv.trigger");
  client_.Write(trig.handle, 0, "<ns2:Trigger");
  client_.session().Abort();
  EXPECT_FALSE(Exists(Out() + "d.csv.trigger"));
  EXPECT_TRUE(Exists(Out() + "d.csv"));  // data files stay: the sender may resume
  auto ups = events_.uploads();  // the data file only said to have changed; the trigger nothing
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_EQ(ups[0].name, "d.csv");
  EXPECT_EQ(ups[0].how, UploadClosed::How::kChanged);
  EXPECT_FALSE(registry_.IsOpenForWriting("acme", "d.csv"));
  EXPECT_FALSE(registry_.IsOpenForWriting("acme", "d.csv.trigger"));
}

// A client retrying while its old session lives: the old session's half-written trigger shares
// the file with the new session's complete one. The old session's abort keeps it and announces
// it (delivery reads what is there), instead of removing what the new session completed.
TEST_F(SessionTest, AbortKeepsATriggerAnotherSessionWroteMeanwhile) {
  Client retry(&registry_, &events_, "acme");
  retry.Init();
  Reply old = client_.Create("OUT/r.csv.trigger");
  client_.Write(old.handle, 0, "<ns2:Trig");
  ASSERT_EQ(retry.Put("OUT/r.csv.trigger", "<ns2:Trigger/>"), kFxOk);
  client_.session().Abort();
  struct stat st;
  ASSERT_EQ(stat((Out() + "r.csv.trigger").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, 14);  // "<ns2:Trigger/>", the old session's bytes overwritten
  auto ups = events_.uploads();
  ASSERT_EQ(ups.size(), 2u);
  for (const UploadClosed& u : ups) {
    EXPECT_EQ(u.name, "r.csv.trigger");
    EXPECT_EQ(u.how, UploadClosed::How::kClosed);
  }
  EXPECT_FALSE(registry_.IsOpenForWriting("acme", "r.csv.trigger"));
}

TEST_F(SessionTest, DestroyingASessionIsAnAbort) {
  {
    Client c(&registry_, &events_, "acme");
    c.Init();
    Reply trig = c.Create("OUT/x.trigger");
    c.Write(trig.handle, 0, "<");
  }
  EXPECT_FALSE(Exists(Out() + "x.trigger"));
  EXPECT_TRUE(events_.uploads().empty());
  EXPECT_FALSE(registry_.IsOpenForWriting("acme", "x.trigger"));
}

TEST_F(SessionTest, ReconfigureDropsRemovedAccountsForNewLogins) {
  EXPECT_NE(registry_.JailOf("other"), nullptr);
  Config config;
  config.storage.root = dir_.path();
  config.accounts.emplace_back();
  config.accounts.back().id = "acme";
  ASSERT_TRUE(registry_.Configure(config).ok());
  EXPECT_EQ(registry_.JailOf("other"), nullptr);
  EXPECT_NE(registry_.JailOf("acme"), nullptr);
  Client gone(&registry_, &events_, "other");
  EXPECT_FALSE(gone.Feed(PacketBuilder(kFxpInit).U32(3).Finish()).ok());
  EXPECT_EQ(client_.Put("OUT/still", "works"), kFxOk);  // existing sessions go on
}

TEST_F(SessionTest, ARemovedAccountsFilesCanBeTakenOnceItsSessionsEnd) {
  auto writer = std::make_unique<Client>(&registry_, &events_, "other");
  writer->Init();
  Reply h = writer->Create("OUT/d.csv");
  writer->Write(h.handle, 0, "part");
  Config config;
  config.storage.root = dir_.path();
  config.accounts.emplace_back();
  config.accounts.back().id = "acme";
  ASSERT_TRUE(registry_.Configure(config).ok());
  // Its session is still writing (being ended): the gate still knows.
  EXPECT_TRUE(registry_.IsOpenForWriting("other", "d.csv"));
  EXPECT_FALSE(registry_.BeginTake("other", "d.csv"));
  writer.reset();
  // No session of it is left: nothing can hold its files open, so a transfer it started before
  // the reload can take them (and does not wait for ever).
  EXPECT_FALSE(registry_.IsOpenForWriting("other", "d.csv"));
  EXPECT_TRUE(registry_.BeginTake("other", "d.csv"));
  registry_.EndTake("other", "d.csv", /*taken=*/true);
}

TEST_F(SessionTest, SessionsSeeAFolderTheOperatorReplaced) {
  WriteFile(In() + "old.csv", "o");
  std::string in = In();
  in.pop_back();
  ASSERT_EQ(rename(in.c_str(), (in + ".old").c_str()), 0);
  ASSERT_EQ(mkdir(in.c_str(), 0750), 0);
  WriteFile(In() + "new.csv", "n");
  Client later(&registry_, &events_, "acme");
  later.Init();
  EXPECT_EQ(later.List("IN"), std::vector<std::string>{"new.csv"});
  EXPECT_EQ(client_.List("IN"), std::vector<std::string>{"new.csv"});  // started before
  // An upload in a session started before lands where delivery looks for it.
  std::string out = Out();
  out.pop_back();
  ASSERT_EQ(rename(out.c_str(), (out + ".old").c_str()), 0);
  ASSERT_EQ(mkdir(out.c_str(), 0770), 0);
  ASSERT_EQ(client_.Put("OUT/up.csv", "u"), kFxOk);
  EXPECT_TRUE(Exists(Out() + "up.csv"));
  EXPECT_FALSE(Exists(out + ".old/up.csv"));
  // Removed: the next session makes it again.
  ASSERT_EQ(unlink((In() + "new.csv").c_str()), 0);
  ASSERT_EQ(rmdir(in.c_str()), 0);
  Client again(&registry_, &events_, "acme");
  again.Init();
  EXPECT_TRUE(again.List("IN").empty());
  EXPECT_TRUE(Exists(in));
}

}  // namespace
}  // namespace fordeler
