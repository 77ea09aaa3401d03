// libFuzzer target: client path normalisation and name validation. Whatever a client sends, the
// result is one of the five places of the jail layout, and a name that passes validation is
// valid UTF-8 without '/', NUL or control characters.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "core/names.h"
#include "sftp/path.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace fordeler;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto vp = NormalizePath(input);
  if (vp.ok() && vp->name.find('/') != std::string::npos) std::abort();
  if (vp.ok() && vp->folder == Folder::kRoot && !vp->name.empty()) std::abort();
  if (IsValidName(input)) {
    if (!IsValidUtf8(input) || input.find('/') != std::string_view::npos ||
        input.find('\0') != std::string_view::npos || input.empty() || input[0] == '.') {
      std::abort();
    }
  }
  if (!IsValidUtf8(PrintableName(input))) std::abort();
  return 0;
}
