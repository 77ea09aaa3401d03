#include "sftp/codec.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace fordeler {

namespace {

inline uint32_t LoadU32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

inline void StoreU64(uint8_t* p, uint64_t v) {
  StoreU32(p, static_cast<uint32_t>(v >> 32));
  StoreU32(p + 4, static_cast<uint32_t>(v));
}

// Writes attrs through any writer with U32/U64 (ReplyWriter, PacketBuilder).
template <typename W>
void PutAttrs(W* w, const FileAttrs& a) {
  w->U32(a.flags & ~kAttrExtended);
  if (a.flags & kAttrSize) w->U64(a.size);
  if (a.flags & kAttrUidGid) w->U32(a.uid).U32(a.gid);
  if (a.flags & kAttrPermissions) w->U32(a.permissions);
  if (a.flags & kAttrAcModTime) w->U32(a.atime).U32(a.mtime);
}

}  // namespace

FileAttrs AttrsFromStat(const struct stat& st) {
  FileAttrs a;
  a.flags = kAttrSize | kAttrUidGid | kAttrPermissions | kAttrAcModTime;
  a.size = static_cast<uint64_t>(st.st_size);
  a.uid = st.st_uid;
  a.gid = st.st_gid;
  a.permissions = st.st_mode;
  a.atime = static_cast<uint32_t>(st.st_atime);
  a.mtime = static_cast<uint32_t>(st.st_mtime);
  return a;
}

bool WireReader::U8(uint8_t* v) {
  if (remaining() < 1) return false;
  *v = *p_++;
  return true;
}

bool WireReader::U32(uint32_t* v) {
  if (remaining() < 4) return false;
  *v = LoadU32(p_);
  p_ += 4;
  return true;
}

bool WireReader::U64(uint64_t* v) {
  if (remaining() < 8) return false;
  *v = (uint64_t{LoadU32(p_)} << 32) | LoadU32(p_ + 4);
  p_ += 8;
  return true;
}

bool WireReader::String(std::string_view* v) {
  if (remaining() < 4) return false;
  uint32_t n = LoadU32(p_);
  if (remaining() - 4 < n) return false;
  *v = std::string_view(reinterpret_cast<const char*>(p_ + 4), n);
  p_ += 4 + n;
  return true;
}

bool WireReader::Attrs(FileAttrs* v) {
  *v = FileAttrs();
  if (!U32(&v->flags)) return false;
  if ((v->flags & kAttrSize) && !U64(&v->size)) return false;
  if ((v->flags & kAttrUidGid) && !(U32(&v->uid) && U32(&v->gid))) return false;
  if ((v->flags & kAttrPermissions) && !U32(&v->permissions)) return false;
  if ((v->flags & kAttrAcModTime) && !(U32(&v->atime) && U32(&v->mtime))) return false;
  if (v->flags & kAttrExtended) {
    uint32_t count;
    if (!U32(&count)) return false;
    for (uint32_t i = 0; i < count; ++i) {
      std::string_view type, data;
      if (!String(&type) || !String(&data)) return false;
    }
  }
  return true;
}

ReplyWriter::ReplyWriter(OutputBuffer* out, uint8_t type) : out_(out), start_(out->size()) {
  uint8_t* p = out_->Append(5);
  p[4] = type;
}

ReplyWriter& ReplyWriter::U8(uint8_t v) {
  *out_->Append(1) = v;
  return *this;
}

ReplyWriter& ReplyWriter::U32(uint32_t v) {
  StoreU32(out_->Append(4), v);
  return *this;
}

ReplyWriter& ReplyWriter::U64(uint64_t v) {
  StoreU64(out_->Append(8), v);
  return *this;
}

ReplyWriter& ReplyWriter::String(std::string_view v) {
  uint8_t* p = out_->Append(4 + v.size());
  StoreU32(p, static_cast<uint32_t>(v.size()));
  if (!v.empty()) std::memcpy(p + 4, v.data(), v.size());
  return *this;
}

ReplyWriter& ReplyWriter::Attrs(const FileAttrs& v) {
  PutAttrs(this, v);
  return *this;
}

void ReplyWriter::PatchU32(size_t mark, uint32_t v) {
  StoreU32(const_cast<uint8_t*>(out_->data()) + mark, v);
}

void ReplyWriter::Finish() { PatchU32(start_, static_cast<uint32_t>(out_->size() - start_ - 4)); }

PacketBuilder::PacketBuilder(uint8_t type) : buf_(4, '\0') {
  buf_.push_back(static_cast<char>(type));
}

PacketBuilder& PacketBuilder::U8(uint8_t v) {
  buf_.push_back(static_cast<char>(v));
  return *this;
}

PacketBuilder& PacketBuilder::U32(uint32_t v) {
  uint8_t b[4];
  StoreU32(b, v);
  buf_.append(reinterpret_cast<char*>(b), 4);
  return *this;
}

PacketBuilder& PacketBuilder::U64(uint64_t v) {
  uint8_t b[8];
  StoreU64(b, v);
  buf_.append(reinterpret_cast<char*>(b), 8);
  return *this;
}

PacketBuilder& PacketBuilder::String(std::string_view v) {
  U32(static_cast<uint32_t>(v.size()));
  buf_.append(v);
  return *this;
}

PacketBuilder& PacketBuilder::Attrs(const FileAttrs& v) {
  PutAttrs(this, v);
  return *this;
}

std::string PacketBuilder::Finish() const {
  std::string out = buf_;
  StoreU32(reinterpret_cast<uint8_t*>(out.data()), static_cast<uint32_t>(out.size() - 4));
  return out;
}

Frame NextFrame(const uint8_t* data, size_t len, const uint8_t** body, size_t* body_len,
                size_t* total) {
  if (len < 4) return Frame::kIncomplete;
  uint32_t n = LoadU32(data);
  if (n > kMaxPacketSize) return Frame::kTooLarge;
  if (n == 0) return Frame::kEmpty;
  if (len - 4 < n) return Frame::kIncomplete;
  *body = data + 4;
  *body_len = n;
  *total = 4 + size_t{n};
  return Frame::kComplete;
}

uint32_t ToFxStatus(const Status& status, std::string_view* message) {
  *message = status.message();
  switch (status.os_errno()) {
    case 0:
      break;
    case ENOENT:
    case ENOTDIR:
    case EBADF:
    case ELOOP:
      return kFxNoSuchFile;
    case EPERM:
    case EACCES:
    case EFAULT:
    case EROFS:
      return kFxPermissionDenied;
    case ENAMETOOLONG:
    case EINVAL:
      return kFxBadMessage;
    case ENOSYS:
      return kFxOpUnsupported;
    default:
      return kFxFailure;
  }
  switch (status.code()) {
    case Status::Code::kOk:
      return kFxOk;
    case Status::Code::kNotFound:
      return kFxNoSuchFile;
    case Status::Code::kPermissionDenied:
      return kFxPermissionDenied;
    case Status::Code::kInvalidArgument:
      return kFxBadMessage;
    default:
      return kFxFailure;
  }
}

void FormatLongName(const struct stat& st, std::string_view owner, std::string_view name,
                    time_t now, std::string* out) {
  char mode[11] = "----------";
  if (S_ISDIR(st.st_mode)) mode[0] = 'd';
  static constexpr char kRwx[] = "rwxrwxrwx";
  for (int i = 0; i < 9; ++i) {
    if (st.st_mode & (0400 >> i)) mode[1 + i] = kRwx[i];
  }
  // As ls(1): the sticky bit shows where others' x does (the unfinished-upload mark, 01640, is
  // -rw-r----T); set-user and set-group ID bits never appear in a jail.
  if (st.st_mode & S_ISVTX) mode[9] = (st.st_mode & S_IXOTH) ? 't' : 'T';
  struct tm tm;
  time_t t = st.st_mtime;
  localtime_r(&t, &tm);
  char date[32];
  const time_t kHalfYear = 182 * 86400;
  const char* fmt = (t + kHalfYear > now && t < now + kHalfYear) ? "%b %e %H:%M" : "%b %e  %Y";
  if (strftime(date, sizeof(date), fmt, &tm) == 0) date[0] = '\0';
  // The link count is always shown as 1: delivery's hard links are nobody's business.
  char size[24];
  snprintf(size, sizeof(size), " %8llu ", static_cast<unsigned long long>(st.st_size));
  out->assign(mode, 10).append("   1 ");
  for (int i = 0; i < 2; ++i) {
    out->append(owner).append(owner.size() < 8 ? 8 - owner.size() : 0, ' ');
    if (i == 0) out->push_back(' ');
  }
  out->append(size).append(date).push_back(' ');
  out->append(name);
}

}  // namespace fordeler
