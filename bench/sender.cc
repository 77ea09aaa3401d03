// fordeler_bench_sender: the senders of bench/routing_throughput.py, in C++ on libssh's client API.
//
// The benchmark's asyncssh client spends some 0.8 CPU ms per data file and trigger, as much as the
// server under test, on the same two CPUs; this one spends about 0.15 ms, so the figures measure
// the server rather than the client (docs/performance.md, "A lighter client").
//
//   fordeler_bench_sender PORT KEY CIPHER DATA_FILE SHA256 DURATION START_AT SENDER...
//
// SENDER is USER:FOLDER:PREFIX:ACCOUNT:RECIPIENT. Each sender is a thread with an SFTP session of
// its own, logged in as USER with the private key file KEY over 127.0.0.1:PORT with CIPHER. From
// START_AT (Unix time, seconds) for DURATION seconds it uploads FOLDER/<PREFIX><ACCOUNT>_<n>.csv,
// the bytes of DATA_FILE, then its trigger (contract §3: Sender ACCOUNT, Recipients RECIPIENT,
// InfRef FLISOekonomiAflever_1, Sha256 SHA256), one pair after the other, as
// routing_common.trigger_xml writes them. Prints "PAIRS CPU_SECONDS" (all senders, the process's
// user and system time); exits 1 after any error (named on stderr), 2 on bad arguments.
#include <fcntl.h>
#include <libssh/libssh.h>
#include <libssh/sftp.h>
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Sender {
  std::string user, folder, prefix, account, recipient;
  long pairs = 0;
  std::string error;
};

struct Options {
  int port = 0;
  std::string key, cipher, data, sha256;
  double duration = 0, start_at = 0;
};

using Session = std::unique_ptr<ssh_session_struct, decltype(&ssh_free)>;
using Sftp = std::unique_ptr<sftp_session_struct, decltype(&sftp_free)>;
using Key = std::unique_ptr<ssh_key_struct, decltype(&ssh_key_free)>;

std::string TriggerXml(const std::string& name, size_t size, const Sender& s,
                       const std::string& sha256) {
  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       "<ns2:Trigger xmlns:ns2=\"http://serviceplatformen.dk/xml/wsdl/soap11/SFTP/1/types\">\n"
       "  <FileDescriptor>\n"
    << "    <FileName>" << name << "</FileName>\n"
    << "    <SizeInBytes>" << size << "</SizeInBytes>\n"
    << "    <Sender>" << s.account << "</Sender>\n"
    << "    <Recipients>" << s.recipient << "</Recipients>\n"
    << "    <Sha256>" << sha256 << "</Sha256>\n"
    << "  </FileDescriptor>\n"
       "  <FileContentDescriptor>\n"
       "    <SFTPDynamicRoutingInfo>\n"
       "      <InfRef>FLISOekonomiAflever_1</InfRef>\n"
       "    </SFTPDynamicRoutingInfo>\n"
       "  </FileContentDescriptor>\n"
       "</ns2:Trigger>\n";
  return x.str();
}

bool Put(sftp_session sftp, const std::string& path, const std::string& bytes) {
  sftp_file f = sftp_open(sftp, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (f == nullptr) return false;
  bool written = sftp_write(f, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
  return sftp_close(f) == SSH_OK && written;
}

// Logs in; on failure returns null with s->error set.
Session Connect(const Options& o, Sender* s) {
  Session session(ssh_new(), &ssh_free);
  int yes = 1, no = 0;
  ssh_options_set(session.get(), SSH_OPTIONS_HOST, "127.0.0.1");
  ssh_options_set(session.get(), SSH_OPTIONS_PORT, &o.port);
  ssh_options_set(session.get(), SSH_OPTIONS_USER, s->user.c_str());
  ssh_options_set(session.get(), SSH_OPTIONS_CIPHERS_C_S, o.cipher.c_str());
  ssh_options_set(session.get(), SSH_OPTIONS_CIPHERS_S_C, o.cipher.c_str());
  ssh_options_set(session.get(), SSH_OPTIONS_NODELAY, &yes);
  ssh_options_set(session.get(), SSH_OPTIONS_PROCESS_CONFIG, &no);  // no ~/.ssh/config
  if (ssh_connect(session.get()) != SSH_OK) {
    s->error = std::string("connect: ") + ssh_get_error(session.get());
    return Session(nullptr, &ssh_free);
  }
  ssh_key raw = nullptr;
  if (ssh_pki_import_privkey_file(o.key.c_str(), nullptr, nullptr, nullptr, &raw) != SSH_OK) {
    s->error = "cannot read the private key " + o.key;
    return Session(nullptr, &ssh_free);
  }
  Key key(raw, &ssh_key_free);
  if (ssh_userauth_publickey(session.get(), nullptr, key.get()) != SSH_AUTH_SUCCESS) {
    s->error = std::string("login: ") + ssh_get_error(session.get());
    return Session(nullptr, &ssh_free);
  }
  return session;
}

void Send(const Options& o, Sender* s) {
  Session session = Connect(o, s);
  if (!session) return;
  Sftp sftp(sftp_new(session.get()), &sftp_free);
  if (!sftp || sftp_init(sftp.get()) != SSH_OK) {
    s->error = std::string("sftp: ") + ssh_get_error(session.get());
    return;
  }
  using Clock = std::chrono::system_clock;
  auto at = [](double unix_seconds) {
    return Clock::time_point(
        std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(unix_seconds)));
  };
  std::this_thread::sleep_until(at(o.start_at));
  const auto deadline = at(o.start_at + o.duration);
  while (Clock::now() < deadline) {
    char number[16];
    std::snprintf(number, sizeof number, "%07ld", s->pairs);
    std::string name = s->prefix + s->account + "_" + number + ".csv";
    std::string path = s->folder + "/" + name;
    if (!Put(sftp.get(), path, o.data) ||
        !Put(sftp.get(), path + ".trigger", TriggerXml(name, o.data.size(), *s, o.sha256))) {
      s->error = path + ": " + ssh_get_error(session.get()) + " (SFTP status " +
                 std::to_string(sftp_get_error(sftp.get())) + ")";
      break;
    }
    ++s->pairs;
  }
  sftp.reset();
  ssh_disconnect(session.get());
}

bool ParseSender(const std::string& spec, Sender* s) {
  std::string* fields[] = {&s->user, &s->folder, &s->prefix, &s->account, &s->recipient};
  std::istringstream in(spec);
  for (std::string* f : fields) {
    if (!std::getline(in, *f, ':')) return false;
  }
  return in.peek() == std::char_traits<char>::eof() && !s->user.empty() && !s->folder.empty();
}

double CpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& t) { return t.tv_sec + t.tv_usec / 1e6; };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 9) {
    std::fprintf(stderr,
                 "usage: %s PORT KEY CIPHER DATA_FILE SHA256 DURATION START_AT "
                 "USER:FOLDER:PREFIX:ACCOUNT:RECIPIENT...\n",
                 argv[0]);
    return 2;
  }
  Options o;
  o.port = std::atoi(argv[1]);
  o.key = argv[2];
  o.cipher = argv[3];
  std::ifstream data(argv[4], std::ios::binary);
  o.data.assign(std::istreambuf_iterator<char>(data), std::istreambuf_iterator<char>());
  o.sha256 = argv[5];
  o.duration = std::atof(argv[6]);
  o.start_at = std::atof(argv[7]);
  if (!data || o.port <= 0 || o.duration <= 0) {
    std::fprintf(stderr, "%s: bad port, data file or duration\n", argv[0]);
    return 2;
  }
  std::vector<Sender> senders(static_cast<size_t>(argc - 8));
  for (size_t i = 0; i < senders.size(); ++i) {
    if (!ParseSender(argv[8 + i], &senders[i])) {
      std::fprintf(stderr, "%s: bad sender %s\n", argv[0], argv[8 + i]);
      return 2;
    }
  }
  ssh_init();
  std::vector<std::thread> threads;
  for (Sender& s : senders) threads.emplace_back(Send, std::cref(o), &s);
  for (std::thread& t : threads) t.join();
  long pairs = 0;
  int status = 0;
  for (const Sender& s : senders) {
    pairs += s.pairs;
    if (!s.error.empty()) {
      std::fprintf(stderr, "%s: %s\n", s.user.c_str(), s.error.c_str());
      status = 1;
    }
  }
  std::printf("%ld %.3f\n", pairs, CpuSeconds());
  ssh_finalize();
  return status;
}
