// The filesystem steps of a delivery, each idempotent so that recovery can simply run them again
// after a crash at any instant. All go through Env (the fault seam) and work beneath directory
// fds; none follows a symlink. Thread-safe (no shared state).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/env.h"
#include "core/mutex.h"
#include "core/sha256.h"
#include "core/status.h"

namespace fordeler {

struct FileFacts {
  uint64_t size = 0;
  uint64_t inode = 0;
  // A regular file with exactly one link: a file in /OUT with another hard link may be another
  // account's or the host's (contract §1), so it is never taken, read or routed.
  bool regular = false;
  // Marked by fordeler's server as an upload that did not finish (kUnfinishedUploadMark).
  bool unfinished = false;
  uid_t owner = 0;  // st_uid
};

// lstat of dir/name. kNotFound when absent.
Result<FileFacts> StatAt(int dir, const std::string& name);

// When the directory (or file) `fd` was created: its birth time (statx STATX_BTIME); nullopt when
// the file system does not record one.
std::optional<std::chrono::system_clock::time_point> BirthTimeOf(int fd);

// SHA-256 of the whole of dir/name.
Result<Digest> HashFileAt(Env* env, int dir, const std::string& name);

// Copies from_dir/from to to_dir/to (through to_dir/<to>.part: written, fsynced, renamed without
// replacing, directory fsynced), hashing in the same pass; the source is left alone. For files
// that arrived by other means than fordeler's server (contract §2: copied, not moved).
Result<Digest> CopyAndHash(Env* env, int from_dir, const std::string& from, int to_dir,
                           const std::string& to, mode_t mode);

// Reads at most `limit` bytes of dir/name (a trigger: the caller detects "too large" by getting
// more than it allows).
Result<std::string> ReadSmallFile(Env* env, int dir, const std::string& name, size_t limit);

// The names in directory `dir`, "." and ".." left out.
Result<std::vector<std::string>> ListNames(int dir);

// Removes parent/name — a folder of files, such as quarantine/<uuid> — with everything in it.
// An absent folder is fine.
Status RemoveFolder(Env* env, int parent, const std::string& name);

// What a file in an account's /IN is. A <name> may itself end in ".metadata" or ".sftpreceipt"
// (contract §2), so the suffix alone cannot tell: the one rule, used by the quota check and the
// retention sweep alike, is that a file the audit log has as a delivered data file of this
// account (`delivered`: AuditStore::FindDelivered found it) is data; any other file is metadata
// or a receipt by its suffix, and data (a leftover) without one.
enum class InFileKind { kData, kMetadata, kReceipt };
InFileKind KindOfInFile(std::string_view name, bool delivered);

// Whether the audit log has `name` as a delivered data file of the folder's account.
using IsDeliveredFn = std::function<Result<bool>(const std::string& name)>;

// What a recipient's /IN holds against its quota (contract §7, 3002): data files only (by
// KindOfInFile; `delivered` is asked only about names ending in ".sftpreceipt", and in
// ".metadata" without the file it would describe beside it) —
// metadata and receipts are not counted, nor links to the inode `except` (a transfer's own copy,
// placed before a crash, when that transfer is examined again).
struct FolderUsage {
  uint64_t files = 0;
  uint64_t bytes = 0;
};
Result<FolderUsage> UsageOf(int in_dir, const IsDeliveredFn& delivered,
                            std::optional<uint64_t> except = std::nullopt);

// The name a recipient gets for <name> of transfer `uuid` when <name> is taken:
// "<name>.<uuid>", with <name> first cut at a UTF-8 character boundary so that
// "<name>.<uuid>.metadata" fits 255 bytes (contract §5).
std::string CollisionName(const std::string& name, const std::string& uuid);

// The sender's receipt for <name> of transfer `uuid`: "<name>.sftpreceipt" (contract §5). When
// that would pass 255 bytes — a trigger put into /OUT by other means than fordeler's server may
// be called up to 255 bytes, so its <name> up to 247, which is no valid <name> and is rejected
// with 1003 — "<name>.<uuid>.sftpreceipt" instead, <name> cut at a UTF-8 character boundary so
// that it fits: the receipt is still sent, and never replaces the receipt of the valid <name>
// the cut might equal. `distinct` asks for the second form whatever the length (a delivered file
// of the first name is in the way).
std::string ReceiptName(const std::string& name, const std::string& uuid, bool distinct = false);

// Places spool/<uuid> in `in_dir` as <name> or, when that (or its .metadata, or for a name
// "<x>.metadata" the data file <x>) is taken, as CollisionName(): a hard link made in staging
// and renamed in without replacing anything. Placements for one `recipient` choose their names
// one at a time (thread-safe).
// Idempotent: if the spool file's inode is already in `in_dir` under either name, returns that
// name. Returns the name used. The caller fsyncs `in_dir` before anything refers to the name.
// `placed`, when given, runs under PlacementLock(recipient) once the data is in `in_dir` (the
// quota check's promise is kept from then on by the file itself).
Result<std::string> PlaceData(Env* env, int spool_dir, int staging_dir, int in_dir,
                              const std::string& uuid, const std::string& recipient,
                              const std::string& name, const std::function<void()>& placed = {});

// Held while a name is chosen and renamed into `recipient`'s /IN, and while the quota check
// counts what that /IN holds, so that each sees the other's work whole. One of 16 stripes:
// placements for different recipients seldom wait for each other.
Mutex& PlacementLock(const std::string& recipient);

// Writes `data` to dir/name (created or truncated, with `mode`) and returns the open file, not
// yet synced: the caller fsyncs it (with others, Env::FsyncAll) before renaming it into place.
// On failure the file is removed.
Result<UniqueFd> WriteTempFile(Env* env, int dir, const std::string& name, std::string_view data,
                               mode_t mode);

}  // namespace fordeler
