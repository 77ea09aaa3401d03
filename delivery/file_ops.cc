#include "delivery/file_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <functional>
#include <iterator>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/file_events.h"
#include "core/mutex.h"
#include "core/names.h"

namespace fordeler {
namespace {

constexpr size_t kChunk = 1 << 20;

Result<size_t> ReadSome(int fd, uint8_t* buf, size_t len) {
  for (;;) {
    ssize_t n = ::read(fd, buf, len);
    if (n >= 0) return static_cast<size_t>(n);
    if (errno != EINTR) return Status::FromErrno(errno, "read");
  }
}

// `name` cut to at most `max` bytes, at a UTF-8 character boundary.
std::string CutToFit(const std::string& name, size_t max) {
  size_t keep = name.size();
  if (keep > max) {
    keep = max;
    while (keep > 0 && (static_cast<uint8_t>(name[keep]) & 0xC0) == 0x80) --keep;
  }
  return name.substr(0, keep);
}

bool Taken(int dir, const std::string& name) {
  struct stat st;
  return fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 || errno != ENOENT;
}

// Whether <name> in `in_dir` is spoken for: a file of that name, its metadata's name
// ("<name>.metadata"), or, for a name that is itself "<x>.metadata", a data file <x> whose
// metadata is still to come (revealed later, and renamed in over whatever has that name).
bool SpokenFor(int in_dir, const std::string& name) {
  constexpr std::string_view kMetadata = ".metadata";
  if (Taken(in_dir, name) || Taken(in_dir, name + std::string(kMetadata))) return true;
  return name.size() > kMetadata.size() && name.ends_with(kMetadata) &&
         Taken(in_dir, name.substr(0, name.size() - kMetadata.size()));
}

}  // namespace

// Two transfers placing "<x>" and "<x>.metadata" at once must not both see the other's name free.
Mutex& PlacementLock(const std::string& recipient) {
  static Mutex stripes[16];
  return stripes[std::hash<std::string>{}(recipient) % std::size(stripes)];
}

Result<FileFacts> StatAt(int dir, const std::string& name) {
  struct stat st;
  if (fstatat(dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
    return Status::FromErrno(errno, "stat " + name);
  }
  return FileFacts{static_cast<uint64_t>(st.st_size), static_cast<uint64_t>(st.st_ino),
                   S_ISREG(st.st_mode) && st.st_nlink == 1,
                   (st.st_mode & kUnfinishedUploadMark) != 0, st.st_uid};
}

std::optional<std::chrono::system_clock::time_point> BirthTimeOf(int fd) {
  struct statx stx;
  if (statx(fd, "", AT_EMPTY_PATH, STATX_BTIME, &stx) != 0 || (stx.stx_mask & STATX_BTIME) == 0 ||
      stx.stx_btime.tv_sec == 0) {
    return std::nullopt;
  }
  auto since_epoch =
      std::chrono::seconds(stx.stx_btime.tv_sec) + std::chrono::nanoseconds(stx.stx_btime.tv_nsec);
  return std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(since_epoch));
}

Result<Digest> HashFileAt(Env* env, int dir, const std::string& name) {
  auto fd = env->OpenAt(dir, name, O_RDONLY, 0);
  if (!fd.ok()) return fd.status();
  UniqueFd file(*fd);
  std::vector<uint8_t> buf(kChunk);
  Sha256 hash;
  for (;;) {
    auto n = ReadSome(file.get(), buf.data(), buf.size());
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    hash.Update(buf.data(), *n);
  }
  return hash.Finish();
}

Result<Digest> CopyAndHash(Env* env, int from_dir, const std::string& from, int to_dir,
                           const std::string& to, mode_t mode) {
  auto in = env->OpenAt(from_dir, from, O_RDONLY | O_NONBLOCK, 0);
  if (!in.ok()) return in.status();
  UniqueFd src(*in);
  struct stat st;
  if (fstat(src.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return Status::InvalidArgument(from + " is not a regular file");
  }
  std::string part = to + ".part";
  auto out = CreateReplacing(env, to_dir, part, mode);
  if (!out.ok()) return out.status();
  UniqueFd dst(*out);
  std::vector<uint8_t> buf(kChunk);
  Sha256 hash;
  Status s;
  for (;;) {
    auto n = ReadSome(src.get(), buf.data(), buf.size());
    if (!n.ok()) {
      s = n.status();
      break;
    }
    if (*n == 0) break;
    hash.Update(buf.data(), *n);
    s = env->Write(dst.get(), buf.data(), *n);
    if (!s.ok()) break;
  }
  if (s.ok()) s = env->Fsync(dst.get());
  if (s.ok()) s = env->Close(dst.Release());
  if (s.ok()) s = env->RenameAt(to_dir, part, to_dir, to, /*no_replace=*/true);
  if (s.ok()) s = FsyncDir(env, to_dir);
  if (!s.ok()) {
    env->UnlinkAt(to_dir, part);
    return s;
  }
  return hash.Finish();
}

Result<std::string> ReadSmallFile(Env* env, int dir, const std::string& name, size_t limit) {
  auto fd = env->OpenAt(dir, name, O_RDONLY | O_NONBLOCK, 0);
  if (!fd.ok()) return fd.status();
  UniqueFd file(*fd);
  std::string out(limit, '\0');
  size_t got = 0;
  while (got < limit) {
    auto n = ReadSome(file.get(), reinterpret_cast<uint8_t*>(out.data()) + got, limit - got);
    if (!n.ok()) return n.status();
    if (*n == 0) break;
    got += *n;
  }
  out.resize(got);
  return out;
}

Result<std::vector<std::string>> ListNames(int dir) {
  int fd = dup(dir);
  DIR* d = fd >= 0 ? fdopendir(fd) : nullptr;
  if (d == nullptr) {
    int err = errno;
    if (fd >= 0) close(fd);
    return Status::FromErrno(err, "list folder");
  }
  rewinddir(d);  // the dup shares its offset with `dir`
  std::vector<std::string> names;
  while (dirent* e = readdir(d)) {
    std::string_view n = e->d_name;
    if (n != "." && n != "..") names.emplace_back(n);
  }
  closedir(d);
  return names;
}

Status RemoveFolder(Env* env, int parent, const std::string& name) {
  auto fd = env->OpenAt(parent, name, O_RDONLY | O_DIRECTORY, 0);
  if (!fd.ok()) return fd.status().code() == Status::Code::kNotFound ? Status::Ok() : fd.status();
  UniqueFd folder(*fd);
  auto names = ListNames(folder.get());
  if (!names.ok()) return names.status();
  for (const std::string& n : *names) {
    Status s = env->UnlinkAt(folder.get(), n);
    if (!s.ok() && s.code() != Status::Code::kNotFound) return s;
  }
  if (unlinkat(parent, name.c_str(), AT_REMOVEDIR) != 0 && errno != ENOENT) {
    return Status::FromErrno(errno, "remove folder " + name);
  }
  return Status::Ok();
}

InFileKind KindOfInFile(std::string_view name, bool delivered) {
  if (delivered) return InFileKind::kData;
  if (name.ends_with(".sftpreceipt")) return InFileKind::kReceipt;
  if (name.ends_with(".metadata")) return InFileKind::kMetadata;
  return InFileKind::kData;
}

Result<FolderUsage> UsageOf(int in_dir, const IsDeliveredFn& delivered,
                            std::optional<uint64_t> except) {
  auto names = ListNames(in_dir);
  if (!names.ok()) return names.status();
  // Every delivered file has "<name>.metadata" beside it; asking the audit log about each of those
  // would cost a query per delivery waiting in /IN on every transfer. Placement never lets a data
  // file take the name of another's metadata (collisions get "<name>.<uuid>"), so "x.metadata"
  // beside "x" is metadata, and only the others are asked about.
  std::unordered_set<std::string_view> present(names->begin(), names->end());
  auto beside_its_data = [&](std::string_view name) {
    return name.ends_with(".metadata") &&
           present.contains(name.substr(0, name.size() - std::string_view(".metadata").size()));
  };
  FolderUsage usage;
  for (const std::string& name : *names) {
    if (name[0] == '.' || beside_its_data(name)) continue;
    if (KindOfInFile(name, false) != InFileKind::kData) {  // the audit log decides
      auto is_data = delivered(name);
      if (!is_data.ok()) return is_data.status();
      if (KindOfInFile(name, *is_data) != InFileKind::kData) continue;
    }
    struct stat st;
    if (fstatat(in_dir, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode) ||
        static_cast<uint64_t>(st.st_ino) == except) {
      continue;
    }
    ++usage.files;
    usage.bytes += static_cast<uint64_t>(st.st_size);
  }
  return usage;
}

std::string CollisionName(const std::string& name, const std::string& uuid) {
  constexpr size_t kSuffix = 1 + 36 + 9;  // ".<uuid>" and ".metadata"
  return CutToFit(name, kMaxFileNameBytes - kSuffix) + "." + uuid;
}

std::string ReceiptName(const std::string& name, const std::string& uuid, bool distinct) {
  constexpr std::string_view kReceipt = ".sftpreceipt";
  if (!distinct && name.size() + kReceipt.size() <= kMaxFileNameBytes) {
    return name + std::string(kReceipt);
  }
  constexpr size_t kSuffix = 1 + 36 + kReceipt.size();  // ".<uuid>.sftpreceipt"
  return CutToFit(name, kMaxFileNameBytes - kSuffix) + "." + uuid + std::string(kReceipt);
}

Result<std::string> PlaceData(Env* env, int spool_dir, int staging_dir, int in_dir,
                              const std::string& uuid, const std::string& recipient,
                              const std::string& name, const std::function<void()>& placed) {
  auto spooled = StatAt(spool_dir, uuid);
  if (!spooled.ok()) return spooled.status();
  std::string alternative = CollisionName(name, uuid);
  for (const std::string& candidate : {name, alternative}) {  // placed before a crash?
    auto there = StatAt(in_dir, candidate);
    if (there.ok() && there->inode == spooled->inode) {
      if (placed) {
        MutexLock lock(&PlacementLock(recipient));
        placed();
      }
      return candidate;
    }
  }
  std::string staged = uuid + "." + recipient;
  Status s = env->LinkAt(spool_dir, uuid, staging_dir, staged);
  if (!s.ok() && s.code() != Status::Code::kAlreadyExists) return s;
  MutexLock lock(&PlacementLock(recipient));
  std::string target = SpokenFor(in_dir, name) ? alternative : name;
  s = env->RenameAt(staging_dir, staged, in_dir, target, /*no_replace=*/true);
  if (s.code() == Status::Code::kAlreadyExists && target == name) {  // lost a race for <name>
    target = alternative;
    s = env->RenameAt(staging_dir, staged, in_dir, target, /*no_replace=*/true);
  }
  if (!s.ok()) return s;
  if (placed) placed();
  return target;
}

Result<UniqueFd> WriteTempFile(Env* env, int dir, const std::string& name, std::string_view data,
                               mode_t mode) {
  auto fd = CreateReplacing(env, dir, name, mode);
  if (!fd.ok()) return fd.status();
  UniqueFd file(*fd);
  if (Status s = env->Write(file.get(), data.data(), data.size()); !s.ok()) {
    file.Reset();
    env->UnlinkAt(dir, name);  // best effort
    return s;
  }
  return file;
}

}  // namespace fordeler
