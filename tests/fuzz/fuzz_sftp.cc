// libFuzzer target: the SFTP v3 engine (codec, policy, handlers) fed arbitrary client bytes over
// a real temporary jail (sftp/sftp_fuzz.h).
#include <cstdint>

#include "sftp/sftp_fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return fordeler::FuzzSftpSession(data, size);
}
