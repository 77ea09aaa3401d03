#include "sftp/codec.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace fordeler {
namespace {

const uint8_t* U(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

// Frames `packet` and returns a reader positioned after the type byte.
WireReader Body(const std::string& packet, uint8_t* type) {
  const uint8_t* body;
  size_t len, total;
  EXPECT_EQ(NextFrame(U(packet), packet.size(), &body, &len, &total), Frame::kComplete);
  EXPECT_EQ(total, packet.size());
  WireReader r(body, len);
  EXPECT_TRUE(r.U8(type));
  return r;
}

// The fields after the first string, for the layouts that have more.
void CheckTail(uint8_t type, WireReader* r, const FileAttrs& a) {
  if (type == kFxpOpen) {
    uint32_t pflags;
    FileAttrs got;
    ASSERT_TRUE(r->U32(&pflags) && r->Attrs(&got));
    EXPECT_EQ(pflags, kFxfWrite | kFxfCreat);
    EXPECT_EQ(got.size, a.size);
    EXPECT_EQ(got.uid, a.uid);
    EXPECT_EQ(got.gid, a.gid);
    EXPECT_EQ(got.permissions, a.permissions);
    EXPECT_EQ(got.mtime, a.mtime);
  }
  if (type == kFxpRead) {
    uint64_t off;
    uint32_t len;
    ASSERT_TRUE(r->U64(&off) && r->U32(&len));
    EXPECT_EQ(off, 1ULL << 33);
    EXPECT_EQ(len, 32768u);
  }
  if (type == kFxpWrite) {
    uint64_t off;
    std::string_view data;
    ASSERT_TRUE(r->U64(&off) && r->String(&data));
    EXPECT_EQ(data, "data");
  }
}

TEST(Codec, EveryRequestLayoutRoundTrips) {
  FileAttrs a;
  a.flags = kAttrSize | kAttrUidGid | kAttrPermissions | kAttrAcModTime;
  a.size = 1ULL << 40;
  a.uid = 1000;
  a.gid = 1001;
  a.permissions = 0100644;
  a.atime = 1700000000;
  a.mtime = 1700000001;
  struct Case {
    uint8_t type;
    std::string packet;
  };
  std::string handle("\0\1\0\2", 4);
  Case cases[] = {
      {kFxpOpen,
       PacketBuilder(kFxpOpen).U32(7).String("OUT/x").U32(kFxfWrite | kFxfCreat).Attrs(a).Finish()},
      {kFxpClose, PacketBuilder(kFxpClose).U32(7).String(handle).Finish()},
      {kFxpRead, PacketBuilder(kFxpRead).U32(7).String(handle).U64(1ULL << 33).U32(32768).Finish()},
      {kFxpWrite, PacketBuilder(kFxpWrite).U32(7).String(handle).U64(5).String("data").Finish()},
      {kFxpLstat, PacketBuilder(kFxpLstat).U32(7).String("/IN").Finish()},
      {kFxpFstat, PacketBuilder(kFxpFstat).U32(7).String(handle).Finish()},
      {kFxpSetstat, PacketBuilder(kFxpSetstat).U32(7).String("OUT/x").Attrs(a).Finish()},
      {kFxpFsetstat, PacketBuilder(kFxpFsetstat).U32(7).String(handle).Attrs(a).Finish()},
      {kFxpOpendir, PacketBuilder(kFxpOpendir).U32(7).String("/").Finish()},
      {kFxpReaddir, PacketBuilder(kFxpReaddir).U32(7).String(handle).Finish()},
      {kFxpRemove, PacketBuilder(kFxpRemove).U32(7).String("IN/x").Finish()},
      {kFxpMkdir, PacketBuilder(kFxpMkdir).U32(7).String("OUT/d").Attrs(a).Finish()},
      {kFxpRmdir, PacketBuilder(kFxpRmdir).U32(7).String("OUT/d").Finish()},
      {kFxpRealpath, PacketBuilder(kFxpRealpath).U32(7).String(".").Finish()},
      {kFxpStat, PacketBuilder(kFxpStat).U32(7).String("OUT/x").Finish()},
      {kFxpRename, PacketBuilder(kFxpRename).U32(7).String("OUT/a").String("OUT/b").Finish()},
      {kFxpReadlink, PacketBuilder(kFxpReadlink).U32(7).String("OUT/l").Finish()},
      {kFxpSymlink, PacketBuilder(kFxpSymlink).U32(7).String("OUT/l").String("/etc").Finish()},
      {kFxpExtended, PacketBuilder(kFxpExtended).U32(7).String("limits@openssh.com").Finish()},
  };
  for (const Case& c : cases) {
    uint8_t type;
    WireReader r = Body(c.packet, &type);
    EXPECT_EQ(type, c.type);
    uint32_t id;
    ASSERT_TRUE(r.U32(&id));
    EXPECT_EQ(id, 7u);
    std::string_view s1;
    ASSERT_TRUE(r.String(&s1)) << int{c.type};
    CheckTail(c.type, &r, a);
  }
}

TEST(Codec, ExtendedAttributePairsAreSkipped) {
  FileAttrs a;
  std::string p = PacketBuilder(kFxpSetstat)
                      .U32(1)
                      .String("x")
                      .U32(kAttrSize | kAttrExtended)
                      .U64(9)
                      .U32(2)
                      .String("t1")
                      .String("d1")
                      .String("t2")
                      .String("d2")
                      .U32(0xdeadbeef)
                      .Finish();
  uint8_t type;
  WireReader r = Body(p, &type);
  uint32_t id;
  std::string_view path;
  ASSERT_TRUE(r.U32(&id) && r.String(&path) && r.Attrs(&a));
  EXPECT_EQ(a.size, 9u);
  uint32_t tail;
  ASSERT_TRUE(r.U32(&tail));
  EXPECT_EQ(tail, 0xdeadbeefu);
}

TEST(Codec, TruncatedFieldsAreMalformed) {
  std::string p = PacketBuilder(kFxpWrite).U32(1).String("hand").U64(0).String("payload").Finish();
  // Cut the packet body at every length and re-frame it: no read may succeed past the end.
  for (size_t cut = 5; cut < p.size(); ++cut) {
    std::string q = p.substr(0, cut);
    uint32_t n = static_cast<uint32_t>(q.size() - 4);
    q[0] = static_cast<char>(n >> 24);
    q[1] = static_cast<char>(n >> 16);
    q[2] = static_cast<char>(n >> 8);
    q[3] = static_cast<char>(n);
    uint8_t type;
    WireReader r = Body(q, &type);
    uint32_t id;
    std::string_view h, data;
    uint64_t off;
    EXPECT_FALSE(r.U32(&id) && r.String(&h) && r.U64(&off) && r.String(&data)) << cut;
  }
  // A string whose length runs past the packet.
  std::string bad = PacketBuilder(kFxpStat).U32(1).U32(0xffffffff).Finish();
  uint8_t type;
  WireReader r = Body(bad, &type);
  uint32_t id;
  std::string_view s;
  ASSERT_TRUE(r.U32(&id));
  EXPECT_FALSE(r.String(&s));
  // Attributes cut short.
  std::string attrs =
      PacketBuilder(kFxpSetstat).U32(1).String("x").U32(kAttrAcModTime).U32(5).Finish();
  WireReader ra = Body(attrs, &type);
  FileAttrs a;
  ASSERT_TRUE(ra.U32(&id) && ra.String(&s));
  EXPECT_FALSE(ra.Attrs(&a));
  // Extended count far beyond the data.
  std::string ext =
      PacketBuilder(kFxpSetstat).U32(1).String("x").U32(kAttrExtended).U32(1u << 30).Finish();
  WireReader re = Body(ext, &type);
  ASSERT_TRUE(re.U32(&id) && re.String(&s));
  EXPECT_FALSE(re.Attrs(&a));
}

TEST(Codec, Framing) {
  const uint8_t* body;
  size_t len, total;
  std::string p = PacketBuilder(kFxpInit).U32(3).Finish();
  for (size_t n = 0; n < p.size(); ++n) {
    EXPECT_EQ(NextFrame(U(p), n, &body, &len, &total), Frame::kIncomplete) << n;
  }
  EXPECT_EQ(NextFrame(U(p), p.size(), &body, &len, &total), Frame::kComplete);
  std::string zero("\0\0\0\0", 4);
  EXPECT_EQ(NextFrame(U(zero), 4, &body, &len, &total), Frame::kEmpty);
  // Oversized lengths are refused as soon as the length field is in, before any body.
  std::string max("\x00\x04\x00\x00", 4);  // exactly 256 KiB: allowed (incomplete)
  EXPECT_EQ(NextFrame(U(max), 4, &body, &len, &total), Frame::kIncomplete);
  std::string over("\x00\x04\x00\x01", 4);
  EXPECT_EQ(NextFrame(U(over), 4, &body, &len, &total), Frame::kTooLarge);
  std::string garbage("\xff\xff\xff\xff garbage", 12);
  EXPECT_EQ(NextFrame(U(garbage), garbage.size(), &body, &len, &total), Frame::kTooLarge);
}

TEST(Codec, ReplyWriterBuildsInPlace) {
  OutputBuffer out;
  out.Append("xx", 2);
  out.Consume(2);
  ReplyWriter w(&out, kFxpName);
  w.U32(9);
  size_t mark = w.Mark();
  w.U32(0).String("a").String("long").Attrs(FileAttrs());
  w.PatchU32(mark, 1);
  w.Finish();
  std::string got(reinterpret_cast<const char*>(out.data()), out.size());
  std::string want =
      PacketBuilder(kFxpName).U32(9).U32(1).String("a").String("long").U32(0).Finish();
  EXPECT_EQ(got, want);
}

TEST(Codec, OutputBufferAppendShrinkConsume) {
  OutputBuffer out;
  uint8_t* p = out.Append(100000);
  p[0] = 1;
  out.Shrink(99990);
  EXPECT_EQ(out.size(), 10u);
  out.Consume(4);
  EXPECT_EQ(out.size(), 6u);
  for (int i = 0; i < 100; ++i) out.Append("abcdefgh", 8);
  EXPECT_EQ(out.size(), 806u);
  out.Consume(806);
  EXPECT_TRUE(out.empty());
}

TEST(Codec, ErrnoMapping) {
  std::string_view msg;
  EXPECT_EQ(ToFxStatus(Status::FromErrno(ENOENT, "x"), &msg), kFxNoSuchFile);
  EXPECT_EQ(ToFxStatus(Status::FromErrno(ELOOP, "x"), &msg), kFxNoSuchFile);
  EXPECT_EQ(ToFxStatus(Status::FromErrno(EACCES, "x"), &msg), kFxPermissionDenied);
  EXPECT_EQ(ToFxStatus(Status::FromErrno(ENOSYS, "x"), &msg), kFxOpUnsupported);
  EXPECT_EQ(ToFxStatus(Status::FromErrno(ENOSPC, "x"), &msg), kFxFailure);
  EXPECT_EQ(ToFxStatus(Status::FromErrno(EEXIST, "x"), &msg), kFxFailure);
  Status gone = Status::NotFound("gone");
  EXPECT_EQ(ToFxStatus(gone, &msg), kFxNoSuchFile);
  EXPECT_EQ(msg, "gone");
  EXPECT_EQ(ToFxStatus(Status::PermissionDenied("no"), &msg), kFxPermissionDenied);
  EXPECT_EQ(ToFxStatus(Status::Unavailable("later"), &msg), kFxFailure);
}

TEST(Codec, LongNameLooksLikeLsL) {
  struct stat st = {};
  st.st_mode = S_IFREG | 0640;
  st.st_size = 1234;
  st.st_mtime = 1700000000;
  std::string line;
  FormatLongName(st, "acme", "data.csv", 1700000000 + 60, &line);
  EXPECT_EQ(line.substr(0, 10), "-rw-r-----");
  EXPECT_NE(line.find(" acme "), std::string::npos);
  EXPECT_NE(line.find(" 1234 "), std::string::npos);
  EXPECT_EQ(line.substr(line.size() - 9), " data.csv");
  FormatLongName(st, std::string(500, 'o'), "n", 1700000000, &line);
  EXPECT_EQ(line.substr(line.size() - 2), " n");
}

// docs/sending.md tells senders to look for the unfinished-upload mark as `ls -l` shows it.
TEST(Codec, LongNameShowsTheStickyBitAsLsDoes) {
  struct stat st = {};
  st.st_mode = S_IFREG | 01640;
  std::string line;
  FormatLongName(st, "acme", "data.csv", 0, &line);
  EXPECT_EQ(line.substr(0, 10), "-rw-r----T");
  st.st_mode = S_IFREG | 01641;
  FormatLongName(st, "acme", "data.csv", 0, &line);
  EXPECT_EQ(line.substr(0, 10), "-rw-r----t");
}

}  // namespace
}  // namespace fordeler
