#include "monitor/command_output.h"

#include <fcntl.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "core/names.h"

namespace fordeler {
namespace {

// Reads of one pipe per Drain: a command that writes without pause cannot keep the alerter from
// looking at the clock (Read), and what is left once it has ended is at most a pipe's capacity
// (Finish), unless something it left running goes on writing.
constexpr int kReadsPerDrain = 16;
constexpr size_t kReadSize = 4096;

void CloseFd(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

// Drops a UTF-8 sequence cut off at the end of `s` (a line cut to kMaxLineBytes).
void DropCutCharacter(std::string* s) {
  size_t i = s->size();
  size_t continuation = 0;
  while (i > 0 && continuation < 3 && (static_cast<unsigned char>((*s)[i - 1]) & 0xC0) == 0x80) {
    --i;
    ++continuation;
  }
  if (i == 0) return;
  auto lead = static_cast<unsigned char>((*s)[i - 1]);
  size_t length = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  if (length > continuation + 1) s->resize(i - 1);
}

}  // namespace

CommandOutput::CommandOutput(std::string kind) : kind_(std::move(kind)) {}

CommandOutput::~CommandOutput() {
  for (Stream& s : streams_) {
    CloseFd(&s.read_fd);
    CloseFd(&s.write_fd);
  }
}

Status CommandOutput::Open() {
  for (Stream& s : streams_) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      return Status::FromErrno(errno, std::string("pipe for the command's ") + s.name);
    }
    s.read_fd = fds[0];
    s.write_fd = fds[1];
    // Only this end: the command writes to a blocking pipe, as it would to a terminal.
    fcntl(s.read_fd, F_SETFL, fcntl(s.read_fd, F_GETFL) | O_NONBLOCK);
  }
  return Status::Ok();
}

void CommandOutput::PrepareSpawn(posix_spawn_file_actions_t* actions) const {
  posix_spawn_file_actions_adddup2(actions, streams_[0].write_fd, 1);
  posix_spawn_file_actions_adddup2(actions, streams_[1].write_fd, 2);
}

void CommandOutput::Spawned() {
  for (Stream& s : streams_) CloseFd(&s.write_fd);
}

void CommandOutput::Read(std::chrono::milliseconds wait) {
  pollfd fds[2];
  Stream* open[2];
  nfds_t n = 0;
  for (Stream& s : streams_) {
    if (s.ended || s.read_fd < 0) continue;
    fds[n] = pollfd{s.read_fd, POLLIN, 0};
    open[n++] = &s;
  }
  if (n == 0) {  // both pipes ended: the command runs on without output
    std::this_thread::sleep_for(wait);
    return;
  }
  if (poll(fds, n, static_cast<int>(wait.count())) <= 0) return;
  for (nfds_t i = 0; i < n; ++i) {
    if (fds[i].revents != 0) Drain(*open[i]);
  }
}

void CommandOutput::Finish() {
  for (Stream& s : streams_) {
    if (s.read_fd >= 0) Drain(s);
    if (!s.line.empty() || s.cut) Emit(s);  // a last line without its '\n'
    CloseFd(&s.read_fd);
    CloseFd(&s.write_fd);
  }
  if (dropped_ > 0) {
    spdlog::warn("event=alert_output_dropped kind={} lines={}", kind_, dropped_);
    dropped_ = 0;
  }
}

void CommandOutput::Drain(Stream& s) {
  char buffer[kReadSize];
  for (int reads = 0; reads < kReadsPerDrain && !s.ended;) {
    ssize_t r = read(s.read_fd, buffer, sizeof buffer);
    if (r > 0) {
      Take(s, std::string_view(buffer, static_cast<size_t>(r)));
      ++reads;
    } else if (r < 0 && errno == EINTR) {
      continue;
    } else if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      return;
    } else {
      s.ended = true;  // end of file, or an error: nothing more comes
    }
  }
}

void CommandOutput::Take(Stream& s, std::string_view bytes) {
  while (!bytes.empty()) {
    size_t end = bytes.find('\n');
    std::string_view part = bytes.substr(0, end);
    if (!s.cut) {
      size_t room = kMaxLineBytes - s.line.size();
      s.cut = part.size() > room;
      s.line.append(part.substr(0, room));
    }
    if (end == std::string_view::npos) return;
    Emit(s);
    bytes.remove_prefix(end + 1);
  }
}

void CommandOutput::Emit(Stream& s) {
  std::string line = std::move(s.line);
  s.line.clear();
  if (s.cut) DropCutCharacter(&line);
  s.cut = false;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (logged_ >= kMaxLines) {
    ++dropped_;
    return;
  }
  ++logged_;
  bool err = &s == &streams_[1];
  spdlog::log(err ? spdlog::level::warn : spdlog::level::info,
              "event=alert_output kind={} stream={} line={}", kind_, s.name, LogValue(line));
}

}  // namespace fordeler
