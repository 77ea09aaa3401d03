#include "sftp/ssh_server.h"

#include <libssh/server.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <cerrno>
#include <chrono>
#include <thread>

#include "core/names.h"
#include "core/thread_name.h"
#include "sftp/host_keys.h"
#include "sftp/server_context.h"
#include "sftp/ssh_session.h"

namespace fordeler {

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

using WorkGuard = asio::executor_work_guard<asio::io_context::executor_type>;

constexpr int kSyncThreads = 2;

Result<tcp::endpoint> ParseListen(const std::string& text) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Status::InvalidArgument("bad listen address " + text);
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string::npos) return Status::InvalidArgument("bad listen address " + text);
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("bad listen address " + text + ": " + ec.message());
  int number = 0;
  try {
    number = std::stoi(port);
  } catch (...) {
    return Status::InvalidArgument("bad port in listen address " + text);
  }
  if (number < 0 || number > 65535) return Status::InvalidArgument("bad port in " + text);
  return tcp::endpoint(address, static_cast<unsigned short>(number));
}

// Out of descriptors or kernel memory: the connection stays queued and the listening socket
// readable, so accepting again at once would spin at full CPU until something is freed.
bool ResourceShortage(const boost::system::error_code& ec) {
  return ec == asio::error::no_descriptors || ec == asio::error::no_buffer_space ||
         ec == asio::error::no_memory || ec == boost::system::errc::too_many_files_open_in_system;
}

constexpr std::chrono::milliseconds kFirstAcceptPause{100};
constexpr std::chrono::milliseconds kLongestAcceptPause{1000};

std::string FormatLocal(const tcp::endpoint& ep) {
  if (ep.address().is_v6())
    return "[" + ep.address().to_string() + "]:" + std::to_string(ep.port());
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace

struct SshServer::Impl {
  Impl(Env* env, AccountRegistry* registry, FileEventListener* listener)
      : context(env, registry, listener) {}
  ~Impl() {
    if (bind != nullptr) ssh_bind_free(bind);
  }

  // One listening socket; its handlers run on the first io_context.
  struct Listener {
    explicit Listener(asio::io_context& io) : acceptor(io), retry(io) {}
    tcp::acceptor acceptor;
    asio::steady_timer retry;                       // accepting again after a resource shortage
    std::chrono::milliseconds pause{0};             // the last pause, doubled while shortages last
    std::chrono::steady_clock::time_point resumed;  // when the last pause ended
  };

  Status SetUpBind(const Config& config);
  Status Listen(const std::string& address);
  void Accept(Listener* listener);
  void PauseAccepting(Listener* listener, const boost::system::error_code& ec);

  ServerContext context;
  ssh_bind bind = nullptr;
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  std::vector<WorkGuard> guards;
  // Large uploads' syncs before their CLOSE is answered (SftpSessionOptions::offload), off the
  // io threads: two threads, running while Run() does.
  asio::io_context syncs;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::vector<std::string> bound;
  size_t next_context = 0;
  std::atomic<bool> stopping{false};
};

Status SshServer::Impl::SetUpBind(const Config& config) {
  bind = ssh_bind_new();
  if (bind == nullptr) return Status::Internal("libssh: cannot create bind");
  bool process_config = false;  // never read /etc/ssh/libssh_server_config
  int rsa_min = SshAlgorithms::kRsaMinBits;
  struct {
    ssh_bind_options_e option;
    const void* value;
    const char* name;
  } options[] = {
      {SSH_BIND_OPTIONS_PROCESS_CONFIG, &process_config, "process_config"},
      {SSH_BIND_OPTIONS_KEY_EXCHANGE, SshAlgorithms::kKeyExchange, "key exchange"},
      {SSH_BIND_OPTIONS_HOSTKEY_ALGORITHMS, SshAlgorithms::kHostKeys, "host key algorithms"},
      {SSH_BIND_OPTIONS_CIPHERS_C_S, SshAlgorithms::kCiphers, "ciphers"},
      {SSH_BIND_OPTIONS_CIPHERS_S_C, SshAlgorithms::kCiphers, "ciphers"},
      {SSH_BIND_OPTIONS_HMAC_C_S, SshAlgorithms::kMacs, "MACs"},
      {SSH_BIND_OPTIONS_HMAC_S_C, SshAlgorithms::kMacs, "MACs"},
      {SSH_BIND_OPTIONS_PUBKEY_ACCEPTED_KEY_TYPES, SshAlgorithms::kPublicKeys, "public keys"},
      {SSH_BIND_OPTIONS_RSA_MIN_SIZE, &rsa_min, "RSA minimum size"},
      {SSH_BIND_OPTIONS_BANNER, SshAlgorithms::kBanner, "banner"},
  };
  for (const auto& o : options) {
    if (ssh_bind_options_set(bind, o.option, o.value) != SSH_OK) {
      return Status::Internal(std::string("libssh refused the ") + o.name +
                              " setting: " + ssh_get_error(bind));
    }
  }
  if (config.server.host_keys.empty()) {
    return Status::InvalidArgument("no host_keys configured in [server]");
  }
  for (const auto& path : config.server.host_keys) {
    if (Status s = ImportHostKey(bind, path); !s.ok()) return s;
  }
  context.set_bind(bind);
  return Status::Ok();
}

Status SshServer::Impl::Listen(const std::string& address) {
  auto endpoint = ParseListen(address);
  if (!endpoint.ok()) return endpoint.status();
  auto listener = std::make_unique<Listener>(*contexts.front());
  tcp::acceptor* acceptor = &listener->acceptor;
  boost::system::error_code ec;
  acceptor->open(endpoint->protocol(), ec);
  if (!ec) acceptor->set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec && endpoint->address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(*endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::Unavailable("cannot listen on " + address + ": " + ec.message());
  bound.push_back(FormatLocal(acceptor->local_endpoint()));
  listeners.push_back(std::move(listener));
  return Status::Ok();
}

void SshServer::Impl::Accept(Listener* listener) {
  asio::io_context* target = contexts[next_context++ % contexts.size()].get();
  listener->acceptor.async_accept(
      *target, [this, listener, target](boost::system::error_code ec, tcp::socket s) {
        if (stopping || ec == asio::error::operation_aborted) return;
        int libssh_fd = -1;
        if (!ec) {
          libssh_fd = ::dup(s.native_handle());  // a session needs two descriptors
          if (libssh_fd < 0) {
            ec.assign(errno, boost::system::system_category());
            s.close();
          }
        }
        if (!ec) {
          auto session = std::make_shared<SshSession>(&context, std::move(s), libssh_fd);
          if (session->Admit()) {
            context.AddSession(session);
            asio::post(*target, [session] { session->Start(); });
          }
        } else if (ResourceShortage(ec)) {
          PauseAccepting(listener, ec);
          return;
        } else {
          spdlog::warn("event=accept_error error={}", LogValue(ec.message()));
        }
        Accept(listener);
      });
}

// Waiting 100 ms, doubling up to a second while the shortage lasts, lets sessions that end give
// their descriptors back; the connections meanwhile wait in the listen backlog. A shortage lasts
// while accepting fails again within a second of the last pause ending: with one descriptor to
// spare, accept() succeeds and the dup fails, so one accepted connection does not end it.
void SshServer::Impl::PauseAccepting(Listener* listener, const boost::system::error_code& ec) {
  auto now = std::chrono::steady_clock::now();
  bool lasting = listener->pause.count() != 0 && now - listener->resumed <= kLongestAcceptPause;
  listener->pause =
      lasting ? std::min(listener->pause * 2, kLongestAcceptPause) : kFirstAcceptPause;
  spdlog::warn("event=accept_paused error={} retry_in_ms={}", LogValue(ec.message()),
               listener->pause.count());
  listener->resumed = now + listener->pause;
  listener->retry.expires_after(listener->pause);
  listener->retry.async_wait([this, listener](boost::system::error_code e) {
    if (!e && !stopping) Accept(listener);
  });
}

SshServer::SshServer(Env* env, AccountRegistry* registry, FileEventListener* listener)
    : impl_(std::make_unique<Impl>(env, registry, listener)) {}

SshServer::~SshServer() = default;

Status SshServer::Start(std::shared_ptr<const Config> config) {
  unsigned threads = config->server.threads > 0 ? static_cast<unsigned>(config->server.threads)
                                                : std::max(1u, std::thread::hardware_concurrency());
  for (unsigned i = 0; i < threads; ++i) {
    impl_->contexts.push_back(std::make_unique<asio::io_context>(1));
    impl_->guards.emplace_back(impl_->contexts.back()->get_executor());
  }
  impl_->context.set_config(config);
  Status s = impl_->SetUpBind(*config);
  if (!s.ok()) return s;
  for (const auto& address : config->server.listen) {
    s = impl_->Listen(address);
    if (!s.ok()) return s;
  }
  for (auto& listener : impl_->listeners) impl_->Accept(listener.get());
  return Status::Ok();
}

std::vector<std::string> SshServer::ListeningAddresses() const { return impl_->bound; }

void SshServer::Run() {
  auto sync_guard = asio::make_work_guard(impl_->syncs);
  std::vector<std::thread> syncs;
  for (int i = 0; i < kSyncThreads; ++i) {
    syncs.emplace_back([this] {
      NameThisThread("sftp-sync");
      impl_->syncs.run();
    });
  }
  impl_->context.set_syncs(&impl_->syncs);
  std::vector<std::thread> threads;
  for (size_t i = 1; i < impl_->contexts.size(); ++i) {
    threads.emplace_back([this, i] {
      NameThisThread("sftp-io-" + std::to_string(i));
      impl_->contexts[i]->run();
    });
  }
  impl_->contexts.front()->run();
  for (auto& t : threads) t.join();
  // The sessions are gone; a sync still running posts its answer to an io_context that no longer
  // runs it, which is why the io_contexts outlive these threads.
  sync_guard.reset();
  for (auto& t : syncs) t.join();
}

void SshServer::Stop() {
  if (impl_->stopping.exchange(true)) return;
  asio::post(*impl_->contexts.front(), [this] {
    for (auto& listener : impl_->listeners) {
      boost::system::error_code ec;
      listener->acceptor.close(ec);
      listener->retry.cancel();
    }
    for (const auto& session : impl_->context.Sessions()) session->Shutdown("server shutting down");
    for (auto& guard : impl_->guards) guard.reset();  // run() returns once sessions are gone
  });
}

void SshServer::Reconfigure(std::shared_ptr<const Config> config) {
  impl_->context.set_config(std::move(config));
  for (const auto& session : impl_->context.Sessions()) session->Recheck();
}

size_t SshServer::session_count() const { return impl_->context.session_count(); }

}  // namespace fordeler
