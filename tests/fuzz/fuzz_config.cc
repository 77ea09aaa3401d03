// libFuzzer target: the TOML configuration loader on arbitrary file contents. It must report
// errors (never crash), and every error names a file.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string>

#include "config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string dir = [] {
    const char* tmp = std::getenv("TMPDIR");
    std::string d = std::string(tmp ? tmp : "/tmp") + "/fordeler-fuzz-config-XXXXXX";
    if (mkdtemp(d.data()) == nullptr) std::abort();
    return d;
  }();
  std::string path = dir + "/fordeler.toml";
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  fordeler::LoadResult result = fordeler::LoadConfig(path);
  for (const auto& e : result.errors) {
    if (e.where.file.empty() || e.message.empty()) std::abort();
  }
  if (result.config == nullptr && result.errors.empty()) std::abort();
  return 0;
}
