// CommandOutput: what an alert command (monitor/alerter.h) writes to its stdout and stderr, read
// through two pipes while it runs and logged a line at a time (docs/operations.md, "Logs"):
//
//   event=alert_output kind=late stream=stdout line="sent to ops@example.org"
//
// The command's output is text fordeler does not control (it may echo a sender's file name), so
// each line is one value written by LogValue: it can forge neither a log line nor a field. At
// most kMaxLines lines per run are logged (stdout and stderr together), each cut to
// kMaxLineBytes; the rest is read (the command never blocks on a full pipe) and dropped, and
// counted in one `event=alert_output_dropped kind=late lines=N` once the run ends.
//
// Use: Open(); PrepareSpawn() on the spawn's file actions; Spawned() after posix_spawn; Read()
// while the command runs; Finish() once it has ended. Not thread-safe: the alerter's thread
// alone uses it.
#pragma once

#include <spawn.h>

#include <chrono>
#include <string>
#include <string_view>

#include "core/status.h"

namespace fordeler {

class CommandOutput {
 public:
  static constexpr size_t kMaxLines = 20;
  static constexpr size_t kMaxLineBytes = 512;

  // `kind`: the alert's kind, logged with each line.
  explicit CommandOutput(std::string kind);
  ~CommandOutput();  // closes what is still open
  CommandOutput(const CommandOutput&) = delete;
  CommandOutput& operator=(const CommandOutput&) = delete;

  // Makes the two pipes (close-on-exec; the ends read here non-blocking).
  Status Open();
  // Adds to `actions`: the child's stdout and stderr are the pipes' write ends.
  // REQUIRES: Open() succeeded.
  void PrepareSpawn(posix_spawn_file_actions_t* actions) const;
  // Closes this process's copies of the write ends (after posix_spawn, whether it worked), so
  // that the pipes end when the command and whatever it started have closed theirs.
  void Spawned();
  // Waits at most `wait` for output, and logs each complete line read.
  void Read(std::chrono::milliseconds wait);
  // Reads what is left without waiting (a process the command left running may keep the pipes
  // open; it is not waited for), logs an unfinished last line and how many lines were dropped,
  // and closes the pipes.
  void Finish();

 private:
  struct Stream {
    const char* name;
    int read_fd = -1;
    int write_fd = -1;
    std::string line;    // the unfinished line read so far, at most kMaxLineBytes
    bool cut = false;    // the unfinished line was longer: the rest of it is skipped
    bool ended = false;  // end of file or a read error: nothing more to read
  };
  // Reads what `s` holds now (without waiting; a bounded amount) and logs its complete lines.
  void Drain(Stream& s);
  // Adds `bytes` read from `s` to its line, and logs each line they complete.
  void Take(Stream& s, std::string_view bytes);
  // Logs `s`'s line (or counts it dropped, past kMaxLines) and starts the next.
  void Emit(Stream& s);

  std::string kind_;
  Stream streams_[2] = {{"stdout", -1, -1, {}, false, false}, {"stderr", -1, -1, {}, false, false}};
  size_t logged_ = 0;
  size_t dropped_ = 0;
};

}  // namespace fordeler
