// Names the calling thread (at most 15 bytes, longer names are cut), so that `ps -L`, `top -H`,
// perf and gdb tell fordelerd's threads apart. Never called on the main thread: its name is the
// process's.
#pragma once

#include <string_view>

namespace fordeler {

void NameThisThread(std::string_view name);

}  // namespace fordeler
