// The small interfaces through which the SFTP server reports what happens in the jails, and
// through which the delivery pipeline takes files out of them. Declared here, in core, so that
// sftp/ and delivery/ never depend on each other; daemon/ wires them together.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

#include "core/sha256.h"

namespace fordeler {

enum class Folder { kRoot, kIn, kOut };

// fordeler's SFTP server marks a data file in /OUT with the sticky bit (mode 01640, "T" in
// `ls -l`) while an upload writes it, and clears the mark when an upload of it finishes. A file
// still marked is not complete: its upload did not finish (the connection was lost, a write was
// refused, fordelerd stopped), and delivery does not take it. The mark is in the file, so it
// outlives a restart and follows a rename; files put in /OUT by other means never have it.
inline constexpr mode_t kUnfinishedUploadMark = S_ISVTX;
// The mode of a file created in a jail (owner read-write, the daemon's group read).
inline constexpr mode_t kUploadMode = 0640;

// A file in an account's /OUT was closed after writing (kClosed), or renamed to its current
// name (kRenamed; the interesting case is a rename to "<name>.trigger"), or its bytes changed
// without a complete upload (kChanged: a SETSTAT that resized it, an upload whose writes failed
// or whose session ended; never announces a trigger, only tells delivery that what an earlier
// close said about the file, its digest above all, no longer holds).
struct UploadClosed {
  enum class How { kClosed, kRenamed, kChanged };
  std::string account;
  std::string name;  // file name in /OUT, no folder
  uint64_t size = 0;
  uint64_t inode = 0;  // of the file at close: lets delivery recognise the file it is told about
  // SHA-256 of the whole file, when every byte arrived in order through one handle that
  // started at offset 0 and no other writer had the file open meanwhile (another handle, or a
  // SETSTAT that resized it); unset otherwise (out-of-order writes, a shared file, a rename).
  std::optional<Digest> sha256;
  How how = How::kClosed;
};

// Session-level happenings the audit log records (contract §10 event kinds login, login_failed,
// picked_up, downloaded).
struct SessionEvent {
  enum class Kind { kLogin, kLoginFailed, kRemoved, kDownloaded, kLimit };
  Kind kind;
  std::string account;      // as claimed by the client for kLoginFailed
  std::string address;      // peer address, "ip:port"
  std::string fingerprint;  // "SHA256:…" of the key used, when one was
  Folder folder = Folder::kRoot;
  std::string name;  // file name for kRemoved / kDownloaded
  std::string detail;
};

// Receives what the SFTP server reports. Called from session threads, possibly concurrently:
// implementations must be thread-safe and must not block for long (queue and return).
class FileEventListener {
 public:
  virtual ~FileEventListener() = default;
  virtual void OnUploadClosed(const UploadClosed& event) = 0;
  virtual void OnSessionEvent(const SessionEvent& event) = 0;
};

// Implemented by the SFTP server; used by delivery to take a file out of an account's /OUT.
//
// BeginTake(account, name) answers false while any session has /OUT/<name> open for writing.
// Otherwise it returns true, and from then on no session can open that name, and handles opened
// on it before lose access to it (their operations fail), until EndTake. EndTake(taken=true)
// means the file is gone: for the next 10 s the account still sees its attributes at close
// through stat/lstat, and setstat on it succeeds without effect (contract §2). Thread-safe.
class OutboxGate {
 public:
  virtual ~OutboxGate() = default;
  virtual bool IsOpenForWriting(const std::string& account, const std::string& name) const = 0;
  virtual bool BeginTake(const std::string& account, const std::string& name) = 0;
  virtual void EndTake(const std::string& account, const std::string& name, bool taken) = 0;
};

}  // namespace fordeler
