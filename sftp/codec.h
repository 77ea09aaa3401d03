// The SFTP version 3 wire format (draft-ietf-secsh-filexfer-02): packet types, status codes,
// bounds-checked readers and writers of its types, framing, and the one mapping from an error
// Status (errno) to an SFTP status.
//
// Readers never read past the packet they were given: a false return means the packet is
// malformed, which ends the session (sftp_session.cc). ReplyWriter builds a packet in place at
// the end of an OutputBuffer (no intermediate copy); PacketBuilder builds one in a std::string
// (client side: tests and fuzzing). Not thread-safe; no I/O.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "sftp/sftp_session.h"

namespace fordeler {

enum FxpType : uint8_t {
  kFxpInit = 1,
  kFxpVersion = 2,
  kFxpOpen = 3,
  kFxpClose = 4,
  kFxpRead = 5,
  kFxpWrite = 6,
  kFxpLstat = 7,
  kFxpFstat = 8,
  kFxpSetstat = 9,
  kFxpFsetstat = 10,
  kFxpOpendir = 11,
  kFxpReaddir = 12,
  kFxpRemove = 13,
  kFxpMkdir = 14,
  kFxpRmdir = 15,
  kFxpRealpath = 16,
  kFxpStat = 17,
  kFxpRename = 18,
  kFxpReadlink = 19,
  kFxpSymlink = 20,
  kFxpStatus = 101,
  kFxpHandle = 102,
  kFxpData = 103,
  kFxpName = 104,
  kFxpAttrs = 105,
  kFxpExtended = 200,
  kFxpExtendedReply = 201,
};

enum FxStatusCode : uint32_t {
  kFxOk = 0,
  kFxEof = 1,
  kFxNoSuchFile = 2,
  kFxPermissionDenied = 3,
  kFxFailure = 4,
  kFxBadMessage = 5,
  kFxNoConnection = 6,
  kFxConnectionLost = 7,
  kFxOpUnsupported = 8,
};

// SSH_FXF_* open flags.
enum : uint32_t {
  kFxfRead = 0x01,
  kFxfWrite = 0x02,
  kFxfAppend = 0x04,
  kFxfCreat = 0x08,
  kFxfTrunc = 0x10,
  kFxfExcl = 0x20,
};

// SSH_FILEXFER_ATTR_* flags.
enum : uint32_t {
  kAttrSize = 0x01,
  kAttrUidGid = 0x02,
  kAttrPermissions = 0x04,
  kAttrAcModTime = 0x08,
  kAttrExtended = 0x80000000u,
};

inline constexpr uint32_t kSftpVersion = 3;
// Largest READ answered and WRITE accepted (limits@openssh.com): a packet minus room for headers.
inline constexpr size_t kMaxReadWrite = kMaxPacketSize - 1024;

struct FileAttrs {
  uint32_t flags = 0;
  uint64_t size = 0;
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t permissions = 0;
  uint32_t atime = 0;
  uint32_t mtime = 0;
};

FileAttrs AttrsFromStat(const struct stat& st);

// Big-endian uint32 at p (for replies built in place, such as DATA).
inline void StoreU32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// Reads SFTP wire types from one packet. Each getter returns false (and reads nothing) when the
// packet is too short; strings are views into the packet.
class WireReader {
 public:
  WireReader(const uint8_t* data, size_t len) : p_(data), end_(data + len) {}
  bool U8(uint8_t* v);
  bool U32(uint32_t* v);
  bool U64(uint64_t* v);
  bool String(std::string_view* v);
  // Attributes; extended pairs are read and dropped.
  bool Attrs(FileAttrs* v);
  size_t remaining() const { return static_cast<size_t>(end_ - p_); }

 private:
  const uint8_t* p_;
  const uint8_t* end_;
};

// Writes one reply packet at the end of `out`: the constructor reserves the length field and
// writes the type, Finish() fills in the length. Offsets are relative to out->data(), so they
// stay valid when the buffer grows.
class ReplyWriter {
 public:
  ReplyWriter(OutputBuffer* out, uint8_t type);
  ReplyWriter& U8(uint8_t v);
  ReplyWriter& U32(uint32_t v);
  ReplyWriter& U64(uint64_t v);
  ReplyWriter& String(std::string_view v);
  ReplyWriter& Attrs(const FileAttrs& v);
  // Offset of the next byte written, for PatchU32 (e.g. a count known only at the end).
  size_t Mark() const { return out_->size(); }
  void PatchU32(size_t mark, uint32_t v);
  void Finish();

 private:
  OutputBuffer* out_;
  size_t start_;
};

// Builds one packet (length field included) in a string: the client side, for tests and fuzz.
class PacketBuilder {
 public:
  explicit PacketBuilder(uint8_t type);
  PacketBuilder& U8(uint8_t v);
  PacketBuilder& U32(uint32_t v);
  PacketBuilder& U64(uint64_t v);
  PacketBuilder& String(std::string_view v);
  PacketBuilder& Attrs(const FileAttrs& v);
  std::string Finish() const;

 private:
  std::string buf_;
};

// Framing of the input: looks at the front of [data, data+len).
enum class Frame { kIncomplete, kComplete, kTooLarge, kEmpty };
// On kComplete, *body/*body_len are the packet after its length field and *total the bytes it
// occupies. kTooLarge and kEmpty (length 0) are malformed and end the session.
Frame NextFrame(const uint8_t* data, size_t len, const uint8_t** body, size_t* body_len,
                size_t* total);

// The one mapping from an error to an SFTP status: errno when the Status carries one (as
// OpenSSH's errno_to_portable), else its code. *message (a view into `status`) is what the
// client is told.
uint32_t ToFxStatus(const Status& status, std::string_view* message);

// An `ls -l` line as OpenSSH's ls_file() writes it (clients such as lftp parse it):
// "-rw-r----- 1 owner group size Mon DD HH:MM name". `now` decides the date form.
void FormatLongName(const struct stat& st, std::string_view owner, std::string_view name,
                    time_t now, std::string* out);

}  // namespace fordeler
