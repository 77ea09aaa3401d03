#include "monitor/alerter.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "audit/audit_testing.h"

namespace fordeler {
namespace {

using testing::FakeEnv;
using testing::OpenOrDie;
using testing::ReadFile;
using testing::TempDir;

// Polls `path` until it holds `needle`, for at most 10 s.
bool WaitForText(const std::string& path, const std::string& needle) {
  for (int i = 0; i < 1000; ++i) {
    if (ReadFile(path).find(needle) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
}

size_t CountOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

Alert Late(const std::string& route) {
  Alert a;
  a.kind = "late";
  a.route = route;
  a.authority = "*";
  a.state = "LATE";
  a.due = testing::At(1'795'000'000'000);
  a.message = "Route " + route + " is late.";
  a.account = "vendor-a";
  a.key = "kind=late route=" + route + " authority=* due=x";
  return a;
}

// What spdlog's default logger writes (messages only, a line each) while it lives. Read Text()
// only when no other thread logs (after WaitIdle).
class LogCapture {
 public:
  LogCapture() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    sink->set_pattern("%v");
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  std::string Text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
};

class AlerterTest : public ::testing::Test {
 protected:
  // A command that appends its environment (sorted) and a start and end line to `out_`, after
  // sleeping `sleep` seconds.
  Alerter::Options Command(const std::string& sleep = "0") {
    std::string script = dir_.File("alert.sh");
    std::ofstream(script)
        << "echo \"start $FORDELER_ALERT_ROUTE $FORDELER_ALERT_COUNT\" >> \"$1\"\n"
        << "env | sort >> \"$1\"\n"
        << "sleep " << sleep << "\n"
        << "echo end >> \"$1\"\n";
    Alerter::Options o;
    o.command = {"/bin/sh", script, out_};
    o.timeout = std::chrono::milliseconds(10'000);
    return o;
  }

  // Runs the shell script `text` (with `args`) as the command of one late alert, and returns
  // what was logged meanwhile; fails the test if the command is not done within 30 s.
  std::string LogOfOneRun(const std::string& text, const std::vector<std::string>& args = {}) {
    std::string script = dir_.File("script.sh");
    std::ofstream(script) << text;
    Alerter::Options o;
    o.command = {"/bin/sh", script};
    o.command.insert(o.command.end(), args.begin(), args.end());
    LogCapture log;
    {
      Alerter alerter(o, &env_, nullptr);
      alerter.Raise(Late("r1"));
      EXPECT_TRUE(alerter.WaitIdle(std::chrono::seconds(30)));
    }
    return log.Text();
  }

  TempDir dir_;
  std::string out_ = dir_.File("out.txt");
  FakeEnv env_;
};

TEST(AlerterSanitizeTest, ReplacesControlCharactersAndCutsAtCharacterBoundary) {
  EXPECT_EQ(Alerter::Sanitize("a\nb\tc\x7f"
                              "d\x01"),
            "a?b?c?d?");
  EXPECT_EQ(Alerter::Sanitize(std::string(300, 'x')).size(), 256u);
  // "ø" is two bytes; 255 x's and "ø" would cut it in half at 256: it is dropped whole.
  EXPECT_EQ(Alerter::Sanitize(std::string(255, 'x') + "øø"), std::string(255, 'x'));
  EXPECT_EQ(Alerter::Sanitize("blåbær"), "blåbær");
  // C1 (CSI), bidirectional controls and bytes that are not UTF-8 too.
  EXPECT_EQ(Alerter::Sanitize("a\xc2\x9b"
                              "2Jb\xe2\x80\xae"
                              "c\xff"),
            "a?2Jb?c?");
}

TEST(AlerterEnvironmentTest, HoldsOnlyTheAlertAndPath) {
  Alert a = Late("r1");
  a.file = "evil\nname.xml";
  a.error_code = 1006;
  auto env = Alerter::Environment(a, testing::At(1'795'000'000'000), 3);
  auto has = [&](const std::string& line) {
    return std::find(env.begin(), env.end(), line) != env.end();
  };
  EXPECT_TRUE(has("PATH=/usr/local/bin:/usr/bin:/bin"));
  EXPECT_TRUE(has("FORDELER_ALERT_KIND=late"));
  EXPECT_TRUE(has("FORDELER_ALERT_FILE=evil?name.xml"));
  EXPECT_TRUE(has("FORDELER_ALERT_ERROR_CODE=1006"));
  EXPECT_TRUE(has("FORDELER_ALERT_COUNT=3"));
  EXPECT_TRUE(has("FORDELER_ALERT_DUE=2026-11-18T11:06:40.000Z"));
  for (const std::string& line : env) {
    EXPECT_TRUE(line.starts_with("FORDELER_ALERT_") || line.starts_with("PATH=")) << line;
  }
}

TEST_F(AlerterTest, RunsTheCommandWithSanitisedEnvironmentOnly) {
  setenv("FORDELER_TEST_SECRET", "do-not-pass", 1);
  Alerter alerter(Command(), &env_, nullptr);
  Alert a = Late("r1");
  a.file = "x\x1b[31mred\n.xml";
  a.message = std::string(1000, 'm');
  alerter.Raise(a);
  ASSERT_TRUE(alerter.WaitIdle(std::chrono::seconds(20)));
  std::string out = ReadFile(out_);
  EXPECT_NE(out.find("FORDELER_ALERT_KIND=late\n"), std::string::npos) << out;
  EXPECT_NE(out.find("FORDELER_ALERT_ROUTE=r1\n"), std::string::npos);
  EXPECT_NE(out.find("FORDELER_ALERT_FILE=x?[31mred?.xml\n"), std::string::npos) << out;
  EXPECT_NE(out.find("FORDELER_ALERT_MESSAGE=" + std::string(256, 'm') + "\n"), std::string::npos);
  EXPECT_EQ(out.find("FORDELER_TEST_SECRET"), std::string::npos);
  EXPECT_EQ(out.find("HOME="), std::string::npos);
  EXPECT_EQ(CountOf(out, "start "), 1u);
}

TEST_F(AlerterTest, KillsACommandThatOutlivesItsTimeoutAndGoesOn) {
  std::string script = dir_.File("hang.sh");
  std::ofstream(script) << "echo \"run $FORDELER_ALERT_ROUTE\" >> \"$1\"\n"
                        << "[ \"$FORDELER_ALERT_ROUTE\" = hang ] && sleep 60\n"
                        << "echo \"done $FORDELER_ALERT_ROUTE\" >> \"$1\"\n";
  Alerter::Options o;
  o.command = {"/bin/sh", script, out_};
  o.timeout = std::chrono::milliseconds(300);
  Alerter alerter(o, &env_, nullptr);
  auto started = std::chrono::steady_clock::now();
  alerter.Raise(Late("hang"));
  alerter.Raise(Late("next"));
  ASSERT_TRUE(alerter.WaitIdle(std::chrono::seconds(30)));
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(30));
  std::string out = ReadFile(out_);
  EXPECT_NE(out.find("run hang\n"), std::string::npos) << out;
  EXPECT_EQ(out.find("done hang"), std::string::npos) << out;  // killed before it finished
  EXPECT_NE(out.find("done next\n"), std::string::npos) << out;
}

// The command's output is not fordelerd's to vouch for: each line of it is logged as an event
// of its own, its text one escaped value, so that it can forge neither a line nor a field.
TEST_F(AlerterTest, LogsEachLineOfTheCommandsOutputAsAnEvent) {
  std::string text = LogOfOneRun(
      "echo 'sent to ops'\n"
      "printf 'x\" event=login user=root\\r\\nfordeler: forged line\\n'\n"
      "printf 'bad \\033[31mred\\n' >&2\n"
      "printf 'no end of line' >&2\n");
  EXPECT_NE(text.find("event=alert_output kind=late stream=stdout line=\"sent to ops\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(
      text.find(
          "event=alert_output kind=late stream=stdout line=\"x\\x22 event=login user=root\"\n"),
      std::string::npos)
      << text;
  EXPECT_NE(
      text.find("event=alert_output kind=late stream=stdout line=\"fordeler: forged line\"\n"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert_output kind=late stream=stderr line=\"bad \\x1b[31mred\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert_output kind=late stream=stderr line=\"no end of line\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert_command_done kind=late count=1\n"), std::string::npos) << text;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(line.starts_with("event=alert")) << line;  // nothing copied raw
  }
}

// A talkative command neither floods the log nor blocks on a full pipe: 20 lines per run are
// logged, each cut to 512 bytes (never inside a character), and the rest counted.
TEST_F(AlerterTest, LogsAtMostTwentyLinesOfOutputPerRunEachCut) {
  std::string text = LogOfOneRun(
      "printf 'a%.0s' $(seq 1 511); printf '\\303\\270 and more\\n'\n"
      "seq 1 50000\n");
  EXPECT_EQ(CountOf(text, "event=alert_output "), 20u) << text.substr(0, 2000);
  EXPECT_NE(text.find("stream=stdout line=" + std::string(511, 'a') + "\n"), std::string::npos)
      << text.substr(0, 2000);
  EXPECT_NE(text.find("stream=stdout line=19\n"), std::string::npos);
  EXPECT_EQ(text.find("stream=stdout line=20\n"), std::string::npos);
  EXPECT_NE(text.find("event=alert_output_dropped kind=late lines=49981\n"), std::string::npos)
      << text.substr(text.size() > 2000 ? text.size() - 2000 : 0);
  EXPECT_NE(text.find("event=alert_command_done kind=late"), std::string::npos);
}

// A command that starts something in the background and exits is done when it exits, although
// what it started still holds its stdout open.
TEST_F(AlerterTest, ACommandIsDoneWhenItExitsThoughItsChildHoldsItsOutput) {
  std::string pid_file = dir_.File("background.pid");
  // The child sleeps longer than LogOfOneRun waits: the command must be done without it.
  std::string text = LogOfOneRun("sleep 60 &\necho $! > \"$1\"\necho started\n", {pid_file});
  std::string pid = ReadFile(pid_file);
  if (!pid.empty()) kill(std::stoi(pid), SIGKILL);  // the sleep this test started
  EXPECT_NE(text.find("event=alert_output kind=late stream=stdout line=started\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert_command_done kind=late"), std::string::npos) << text;
}

TEST_F(AlerterTest, RunsOneAtATimeAndCoalescesQueuedRepeats) {
  Alerter alerter(Command("1"), &env_, nullptr);  // long enough to queue the rest behind r1
  alerter.Raise(Late("r1"));
  ASSERT_TRUE(WaitForText(out_, "start r1"));  // r1 runs now; the rest queue behind it
  alerter.Raise(Late("r2"));
  alerter.Raise(Late("r2"));
  alerter.Raise(Late("r2"));
  alerter.Raise(Late("r1"));
  ASSERT_TRUE(alerter.WaitIdle(std::chrono::seconds(30)));
  std::string out = ReadFile(out_);
  EXPECT_EQ(CountOf(out, "start "), 3u) << out;
  EXPECT_NE(out.find("start r2 3\n"), std::string::npos) << out;
  EXPECT_EQ(CountOf(out, "start r1 1\n"), 2u) << out;
  // Never two at once: every start is followed by its end before the next start.
  std::istringstream lines(out);
  int open = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("start ")) {
      EXPECT_EQ(++open, 1) << out;
    }
    if (line == "end") --open;
  }
  EXPECT_EQ(open, 0);
}

// The `event=alert` line writes a value an alert does not have as `-` (docs/operations.md,
// "Logs"): a `not_picked_up` alert has no code, a `late` one no transfer.
TEST_F(AlerterTest, LogsAnAlertsAbsentValuesAsDash) {
  LogCapture log;
  Alerter alerter(Alerter::Options{}, &env_, nullptr);
  Alert a;
  a.kind = "not_picked_up";
  a.route = "daily";
  a.authority = "urn:a";
  a.state = "NOT_PICKED_UP";
  a.transfer = "t-1";
  a.sender = "vendor-a";
  a.recipient = "lis";
  a.message = "Not picked up.";
  alerter.Raise(a);
  a.kind = "rejected";
  a.state = "REJECTED";
  a.recipient.clear();
  a.error_code = 1006;
  alerter.Raise(a);
  alerter.Raise(Late("r1"));
  std::string text = log.Text();
  EXPECT_NE(text.find("event=alert kind=not_picked_up route=daily authority=urn:a "
                      "state=NOT_PICKED_UP due=- transfer=t-1 sender=vendor-a recipient=lis "
                      "code=- message=\"Not picked up.\"\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert kind=rejected route=daily authority=urn:a state=REJECTED due=- "
                      "transfer=t-1 sender=vendor-a recipient=- code=1006 "),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("event=alert kind=late route=r1 authority=* state=LATE "
                      "due=2026-11-18T11:06:40.000Z transfer=- sender=- recipient=- code=- "),
            std::string::npos)
      << text;
}

TEST_F(AlerterTest, RecordsAnAuditEventWithoutACommand) {
  auto store = OpenOrDie(dir_.File("audit.db"), &env_);
  Alerter alerter(Alerter::Options{}, &env_, store.get());
  Alert a = Late("r1");
  alerter.Raise(a);
  ASSERT_TRUE(store->Commit(Batch()).ok());
  bool recorded = false;
  for (int i = 0; i < 500 && !recorded; ++i) {
    auto r = store->AlertRecorded("vendor-a", env_.Now() - std::chrono::hours(1), a.key);
    ASSERT_TRUE(r.ok());
    recorded = *r;
    if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(recorded);
  auto other = store->AlertRecorded("vendor-a", env_.Now() - std::chrono::hours(1),
                                    "kind=late route=r authority=* due=x");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(*other);  // a prefix of another route's key is not that key
}

}  // namespace
}  // namespace fordeler
