#include "http/http_server.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <exception>
#include <optional>
#include <thread>

#include "core/mutex.h"
#include "core/names.h"
#include "core/thread_name.h"
#include "http/basic_auth.h"

namespace fordeler {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string_view View(boost::beast::string_view s) { return {s.data(), s.size()}; }

constexpr const char* kCsp =
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

Result<tcp::endpoint> ParseEndpoint(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return Status::InvalidArgument("no port in " + text);
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  boost::system::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) return Status::InvalidArgument("not an address: " + text);
  return tcp::endpoint(address, static_cast<unsigned short>(std::stoul(text.substr(colon + 1))));
}

std::string EndpointText(const tcp::endpoint& e) {
  std::string host = e.address().to_string();
  if (e.address().is_v6()) host = "[" + host + "]";
  return host + ":" + std::to_string(e.port());
}

struct Shared {
  const Router* router = nullptr;
  std::optional<BasicAuth> auth;
  std::atomic<int> connections{0};
};

using Response = bhttp::response<bhttp::string_body>;

Response MakeResponse(const HttpReply& reply, unsigned version, bool keep_alive, bool head) {
  Response res{static_cast<bhttp::status>(reply.status), version};
  res.set(bhttp::field::server, "fordeler");
  res.set(bhttp::field::content_type, reply.content_type);
  res.set(bhttp::field::cache_control, "no-store");
  res.set("Content-Security-Policy", kCsp);
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  for (const auto& [name, value] : reply.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.body() = reply.body;
  res.prepare_payload();
  if (head) res.body().clear();  // Content-Length stays that of the GET reply
  return res;
}

// One connection. Stream is beast::tcp_stream or beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
class Connection : public std::enable_shared_from_this<Connection<Stream>> {
 public:
  Connection(Shared* shared, tcp::socket socket) : shared_(shared), stream_(std::move(socket)) {}
  // A TLS connection keeps its context: a reload may replace the server's meanwhile.
  Connection(Shared* shared, tcp::socket socket, std::shared_ptr<asio::ssl::context> tls)
      : shared_(shared), tls_(std::move(tls)), stream_(std::move(socket), *tls_) {}
  ~Connection() { shared_->connections.fetch_sub(1); }

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
      Read();
    } else {
      beast::get_lowest_layer(stream_).expires_after(HttpServer::kTimeout);
      stream_.async_handshake(
          asio::ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
            if (ec) {
              spdlog::debug("event=http_tls_failed error={}", LogValue(ec.message()));
              return;
            }
            self->Read();
          });
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->header_limit(HttpServer::kHeaderLimit);
    parser_->body_limit(HttpServer::kBodyLimit);
    beast::get_lowest_layer(stream_).expires_after(HttpServer::kTimeout);
    bhttp::async_read(
        stream_, buffer_, *parser_,
        [self = this->shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == bhttp::error::header_limit) return Refuse(431, "the request's header is too large");
    if (ec == bhttp::error::body_limit) return Refuse(413, "the request's body is too large");
    if (ec) return Refuse(400, "a malformed request");
    const auto& req = parser_->get();
    bool head = req.method() == bhttp::verb::head;
    HttpReply reply;
    if (shared_->auth && !shared_->auth->Allows(View(req[bhttp::field::authorization]))) {
      reply.status = 401;
      reply.content_type = "text/plain; charset=utf-8";
      reply.body = "authentication required\n";
      reply.headers.emplace_back("WWW-Authenticate", "Basic realm=\"fordeler\", charset=\"UTF-8\"");
    } else {
      try {
        reply = shared_->router->Handle(View(req.method_string()), View(req.target()));
      } catch (const std::exception& e) {  // a page that cannot be made must not end the daemon
        spdlog::error("event=http_error target={} error={}", LogValue(View(req.target())),
                      LogValue(e.what()));
        return Refuse(500, "the page could not be made (see the daemon's log)");
      }
    }
    Write(MakeResponse(reply, req.version(), req.keep_alive(), head));
  }

  void Refuse(unsigned status, const char* why) {
    HttpReply reply;
    reply.status = status;
    reply.content_type = "text/plain; charset=utf-8";
    reply.body = std::string(why) + "\n";
    Write(MakeResponse(reply, 11, false, false));
  }

  void Write(Response res) {
    response_ = std::move(res);
    beast::get_lowest_layer(stream_).expires_after(HttpServer::kTimeout);
    bhttp::async_write(stream_, response_,
                       [self = this->shared_from_this()](beast::error_code ec, size_t) {
                         if (ec || !self->response_.keep_alive()) return self->Close();
                         self->Read();
                       });
  }

  void Close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  Shared* shared_;
  std::shared_ptr<asio::ssl::context> tls_;  // before stream_, which refers to it
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  Response response_;
};

}  // namespace

struct HttpServer::Impl {
  Shared shared;
  HttpConfig config;  // as started: the TLS files' paths
  Mutex tls_mu;       // ReloadTls on the caller's thread, Accept on the server's
  std::shared_ptr<asio::ssl::context> tls GUARDED_BY(tls_mu);
  std::unique_ptr<asio::io_context> io = std::make_unique<asio::io_context>(1);
  std::vector<std::unique_ptr<tcp::acceptor>> acceptors;
  std::vector<std::string> addresses;
  std::thread thread;

  Status Bind(const std::string& text);
  void Accept(tcp::acceptor* acceptor);
  // The TLS context for a new connection; null without TLS.
  std::shared_ptr<asio::ssl::context> TlsContext() {
    MutexLock lock(&tls_mu);
    return tls;
  }
};

namespace {

// A server context with the certificate chain and key of `config`.
Result<std::shared_ptr<asio::ssl::context>> LoadTls(const HttpConfig& config) {
  auto tls = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_server);
  boost::system::error_code ec;
  tls->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                       asio::ssl::context::no_tlsv1_1 | asio::ssl::context::single_dh_use,
                   ec);
  if (!ec) tls->use_certificate_chain_file(config.tls_certificate, ec);
  if (ec) {
    return Status::InvalidArgument("tls_certificate " + config.tls_certificate + ": " +
                                   ec.message());
  }
  tls->use_private_key_file(config.tls_key, asio::ssl::context::pem, ec);
  if (ec) return Status::InvalidArgument("tls_key " + config.tls_key + ": " + ec.message());
  return tls;
}

}  // namespace

Status HttpServer::Impl::Bind(const std::string& text) {
  auto endpoint = ParseEndpoint(text);
  if (!endpoint.ok()) return endpoint.status();
  auto acceptor = std::make_unique<tcp::acceptor>(*io);
  boost::system::error_code ec;
  acceptor->open(endpoint->protocol(), ec);
  if (!ec) acceptor->set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec && endpoint->address().is_v6()) acceptor->set_option(asio::ip::v6_only(true), ec);
  if (!ec) acceptor->bind(*endpoint, ec);
  if (!ec) acceptor->listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return Status::FromErrno(ec.value(), "http listen " + text);
  addresses.push_back(EndpointText(acceptor->local_endpoint()));
  acceptors.push_back(std::move(acceptor));
  return Status::Ok();
}

void HttpServer::Impl::Accept(tcp::acceptor* acceptor) {
  acceptor->async_accept([this, acceptor](boost::system::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      if (shared.connections.fetch_add(1) >= kMaxConnections) {
        shared.connections.fetch_sub(1);
        spdlog::warn("event=http_connection_refused reason=\"{} connections open\"",
                     kMaxConnections);
        socket.close(ec);
      } else if (auto context = TlsContext()) {
        std::make_shared<Connection<beast::ssl_stream<beast::tcp_stream>>>(
            &shared, std::move(socket), std::move(context))
            ->Start();
      } else {
        std::make_shared<Connection<beast::tcp_stream>>(&shared, std::move(socket))->Start();
      }
    }
    Accept(acceptor);
  });
}

HttpServer::HttpServer(const Router* router) : impl_(std::make_unique<Impl>()) {
  impl_->shared.router = router;
}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start(const HttpConfig& config) {
  Impl& d = *impl_;
  if (config.listen.empty()) return Status::Ok();
  if (!config.user.empty()) d.shared.auth.emplace(config.user, config.password_hash);
  d.config = config;
  if (!config.tls_certificate.empty()) {
    auto tls = LoadTls(config);
    if (!tls.ok()) return tls.status();
    MutexLock lock(&d.tls_mu);
    d.tls = std::move(*tls);
  }
  for (const auto& address : config.listen) {
    if (Status s = d.Bind(address); !s.ok()) {
      d.acceptors.clear();
      d.addresses.clear();
      return s;
    }
  }
  for (auto& acceptor : d.acceptors) d.Accept(acceptor.get());
  d.thread = std::thread([&d] {
    NameThisThread("http");
    d.io->run();
  });
  return Status::Ok();
}

Status HttpServer::ReloadTls() {
  Impl& d = *impl_;
  if (d.config.tls_certificate.empty() || d.acceptors.empty()) return Status::Ok();
  auto tls = LoadTls(d.config);
  if (!tls.ok()) return tls.status();
  MutexLock lock(&d.tls_mu);
  d.tls = std::move(*tls);
  return Status::Ok();
}

std::vector<std::string> HttpServer::ListeningAddresses() const { return impl_->addresses; }

void HttpServer::Stop() {
  Impl& d = *impl_;
  if (d.io == nullptr) return;
  asio::post(*d.io, [&d] {
    for (auto& acceptor : d.acceptors) {
      boost::system::error_code ignored;
      acceptor->close(ignored);
    }
  });
  d.io->stop();
  if (d.thread.joinable()) d.thread.join();
  d.acceptors.clear();
  d.io.reset();  // destroys the connections' pending handlers, closing their sockets
}

}  // namespace fordeler
