// HandleTable: the open file and folder handles of one SFTP session.
//
// A handle is a slot in a vector, named to the client by 4 opaque bytes (16-bit slot index,
// 16-bit generation), so that a stale or forged handle never reaches another file and lookups
// cost no allocation or hashing. At most `max` handles are open at once (the session limit;
// at most 65535). Freed slots are reused, and with them their SHA-256 context and name buffer.
// Not thread-safe (one session).
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/file_events.h"
#include "core/sha256.h"

namespace fordeler {

struct FileTicket;

struct Handle {
  enum class Kind : uint8_t { kFree, kFile, kDir };
  Kind kind = Kind::kFree;
  uint16_t generation = 0;
  Folder folder = Folder::kRoot;
  bool readable = false;
  bool writable = false;
  bool append = false;
  bool hash_valid = false;         // every byte so far arrived in order from offset 0
  bool write_failed = false;       // a write was refused or failed: the upload is incomplete
  bool marked = false;             // the file carries kUnfinishedUploadMark, set or kept at open
  bool download_reported = false;  // kDownloaded published (read handles in /IN)
  bool root_listed = false;        // OPENDIR "/": the two folders were listed
  int fd = -1;
  DIR* dir = nullptr;
  dev_t dev = 0;
  ino_t ino = 0;
  uint64_t next_offset = 0;    // where the next in-order write starts
  uint64_t written_back = 0;   // write-back started up to here (uploads)
  uint64_t quota_room = 0;     // out_quota: the file may grow to here without a new check
  uint64_t overlaps_seen = 0;  // the ticket's overlapping_writers when this writer opened
  std::string name;
  std::shared_ptr<FileTicket> ticket;  // files in /OUT: revoked when delivery takes the file
  std::unique_ptr<Sha256> hash;        // write handles in /OUT; kept with the slot for reuse

  bool revoked() const;
  // Another writer had the file open at some time while this one had (see FileTicket).
  bool shared_with_another_writer() const;
};

class HandleTable {
 public:
  static constexpr size_t kIdSize = 4;

  // `shared`, when given, counts the handles of every table given it (the SFTP sessions of one
  // SSH connection, served on one thread), and `max` bounds that sum.
  explicit HandleTable(size_t max, std::shared_ptr<size_t> shared = nullptr);
  bool full() const { return *total_ >= max_; }
  size_t max() const { return max_; }

  // A free slot, marked in use as `kind`; null when full(). Pointers stay valid until the next
  // Allocate. *id receives the client's name for it.
  Handle* Allocate(Handle::Kind kind, char id[kIdSize]);
  // The handle named `id`, or null when it names no open handle.
  Handle* Find(std::string_view id);
  // Marks the handle free (the caller has closed its fd/DIR and released its ticket).
  void Free(Handle* h);

  // Calls fn(Handle*) for every open handle.
  template <typename Fn>
  void ForEachOpen(Fn fn) {
    for (Handle& h : slots_) {
      if (h.kind != Handle::Kind::kFree) fn(&h);
    }
  }

 private:
  std::vector<Handle> slots_;
  std::vector<uint16_t> free_;
  size_t max_;
  std::shared_ptr<size_t> total_;  // open handles of this table and of those sharing the count
};

}  // namespace fordeler
