// A fuzz-friendly entry point for the SFTP engine: feeds arbitrary bytes to a fresh SftpSession
// over a real temporary jail, as the transport would. For libFuzzer targets (tests/); not used
// by the server. Not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>

namespace fordeler {

// Creates (once per process) a storage root under $TMPDIR with one account "fuzz", then runs
// one session from the same jail each time (an empty /OUT, a delivery in /IN): an INIT packet,
// then `data` (in one call to Consume, and again in 7-byte pieces to exercise partial packets),
// then Abort. Aborts when the jail afterwards holds what no client may make (a folder, a
// symlink, a file over max_file_size, /OUT over its quota); otherwise returns 0.
int FuzzSftpSession(const uint8_t* data, size_t size);

}  // namespace fordeler
