// Helpers for the config unit tests only: a real temporary directory (mkdtemp) to write
// configuration and key files into, and ssh-keygen run at test time (keys are never committed).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "config/config.h"

namespace fordeler::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "fordeler-config-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) ADD_FAILURE() << "mkdtemp failed";
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  std::string operator/(const std::string& rel) const { return path_ + "/" + rel; }

  // Writes `content` to `rel` (creating folders) and returns the absolute path.
  std::string Write(const std::string& rel, const std::string& content) const {
    std::filesystem::path p = *this / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p.string();
  }

 private:
  std::string path_;
};

// Runs a shell command; returns its stdout. *exit_code receives its exit status.
inline std::string RunCommand(const std::string& command, int* exit_code = nullptr) {
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  int status = pclose(pipe);
  if (exit_code != nullptr) *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// Generates a key pair with ssh-keygen at `dir/name` (+ ".pub"); returns the private key path.
inline std::string GenerateKey(const TempDir& dir, const std::string& name, const std::string& type,
                               int bits = 0) {
  std::string path = dir / name;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::string command = "ssh-keygen -q -t " + type +
                        (bits > 0 ? " -b " + std::to_string(bits) : "") + " -N '' -C test-" + name +
                        " -f '" + path + "' </dev/null >/dev/null 2>&1";
  int rc = 0;
  RunCommand(command, &rc);
  EXPECT_EQ(rc, 0) << command;
  return path;
}

inline std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first line of a file, without its newline.
inline std::string FirstLine(const std::string& path) {
  std::string text = ReadText(path);
  return text.substr(0, text.find('\n'));
}

// All errors as "file:line: message" lines, for failure output.
inline std::string Describe(const std::vector<ConfigError>& errors) {
  std::string out;
  for (const auto& e : errors) out += e.ToString() + "\n";
  return out;
}

// A main file at <tmp>/etc/fordeler.toml, written and loaded by Load().
class LoadConfigTest : public ::testing::Test {
 protected:
  // Writes the main file (etc/fordeler.toml) and loads it.
  LoadResult Load(const std::string& main) {
    main_ = dir_.Write("etc/fordeler.toml", main);
    return LoadConfig(main_);
  }
  std::string Etc(const std::string& rel) const { return dir_ / ("etc/" + rel); }

  // The load failed with exactly these "file:line: message" errors, in this order.
  static void ExpectErrors(const LoadResult& r, const std::vector<std::string>& expected) {
    EXPECT_EQ(r.config, nullptr);
    std::vector<std::string> got;
    for (const ConfigError& e : r.errors) got.push_back(e.ToString());
    EXPECT_EQ(got, expected);
  }

  TempDir dir_;
  std::string main_;
};

}  // namespace fordeler::testing
