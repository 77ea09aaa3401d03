// The log's line format: fordelerd's lines are `key=value` fields, one event a line. Values a
// client or a file system chooses are quoted or escaped where they are logged (PrintableName,
// LogValue in core/names.h); as a last guard, whatever else a message holds that could end the
// line or steer a terminal (line breaks, escape sequences, C1 and bidirectional controls, bytes
// that are not UTF-8) is written as "\xNN" (ShowableText), so that no value can forge a line.
#pragma once

#include <spdlog/pattern_formatter.h>

#include <memory>
#include <string>

namespace fordeler {

// "%l %v" with the message made safe (under systemd, whose journal adds the time), or the same
// after an RFC 3339 UTC time with milliseconds.
std::unique_ptr<spdlog::formatter> MakeLogFormatter(bool with_time);

}  // namespace fordeler
