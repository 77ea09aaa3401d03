#include "http/http_server.h"

#include <arpa/inet.h>
#include <crypt.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http/router_testing.h"

namespace fordeler {
namespace {

// Sends `request` on a fresh connection to 127.0.0.1:port and returns all the server sent
// until it closed (every request here asks for Connection: close). Bounded by a 10 s timeout.
std::string Exchange(int port, const std::string& request) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    size_t sent = 0;
    while (sent < request.size()) {
      ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }
    char buf[4096];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0) reply.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  return reply;
}

std::string Get(const std::string& path, const std::string& extra = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" + extra + "\r\n";
}

class HttpServerTest : public testing::StatusFixture {
 protected:
  int Start(HttpConfig config) {
    config.listen = {"127.0.0.1:0"};
    server_ = std::make_unique<HttpServer>(&router());
    Status s = server_->Start(config);
    EXPECT_TRUE(s.ok()) << s.message();
    auto addresses = server_->ListeningAddresses();
    EXPECT_EQ(addresses.size(), 1u);
    return std::stoi(addresses[0].substr(addresses[0].rfind(':') + 1));
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, ServesPagesWithSecurityHeaders) {
  int port = Start({});
  std::string reply = Exchange(port, Get("/"));
  EXPECT_EQ(reply.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << reply.substr(0, 200);
  EXPECT_NE(reply.find("Content-Security-Policy: default-src 'none'"), std::string::npos);
  EXPECT_NE(reply.find("X-Content-Type-Options: nosniff"), std::string::npos);
  EXPECT_NE(reply.find("Cache-Control: no-store"), std::string::npos);
  EXPECT_NE(reply.find("route-a"), std::string::npos);
  std::string head = Exchange(port, "HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_EQ(head.find("route-a"), std::string::npos);  // no body
}

TEST_F(HttpServerTest, BadRequestsGetTheirStatusAndTheServerGoesOn) {
  int port = Start({});
  std::string post = Exchange(port,
                              "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                              "Connection: close\r\n\r\n");
  EXPECT_EQ(post.rfind("HTTP/1.1 405", 0), 0u) << post.substr(0, 200);
  EXPECT_NE(post.find("Allow: GET, HEAD"), std::string::npos);
  EXPECT_EQ(Exchange(port, Get("/missing")).rfind("HTTP/1.1 404", 0), 0u);
  std::string big = Exchange(port, Get("/", "X-Big: " + std::string(64 * 1024, 'a') + "\r\n"));
  EXPECT_EQ(big.rfind("HTTP/1.1 431", 0), 0u) << big.substr(0, 200);
  EXPECT_EQ(Exchange(port, "NONSENSE\r\n\r\n").rfind("HTTP/1.1 400", 0), 0u);
  EXPECT_EQ(Exchange(port, Get("/")).rfind("HTTP/1.1 200", 0), 0u);
}

TEST_F(HttpServerTest, BasicAuthGuardsEveryPath) {
  auto data = std::make_unique<crypt_data>();
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  ASSERT_NE(crypt_gensalt_rn("$6$", 0, nullptr, 0, salt, sizeof salt), nullptr);
  HttpConfig config;
  config.user = "ops";
  config.password_hash = crypt_r("pw", salt, data.get());
  int port = Start(config);
  std::string denied = Exchange(port, Get("/metrics"));
  EXPECT_EQ(denied.rfind("HTTP/1.1 401", 0), 0u) << denied.substr(0, 200);
  EXPECT_NE(denied.find("WWW-Authenticate: Basic realm=\"fordeler\""), std::string::npos);
  EXPECT_EQ(Exchange(port, Get("/", "Authorization: Basic b3BzOnd4\r\n")).rfind("HTTP/1.1 401", 0),
            0u);  // ops:wx
  EXPECT_EQ(Exchange(port, Get("/", "Authorization: Basic b3BzOnB3\r\n")).rfind("HTTP/1.1 200", 0),
            0u);  // ops:pw
}

TEST_F(HttpServerTest, StartFailsOnAMissingCertificate) {
  HttpConfig config;
  config.listen = {"127.0.0.1:0"};
  config.tls_certificate = dir_.File("none.crt");
  config.tls_key = dir_.File("none.key");
  HttpServer server(&router());
  EXPECT_FALSE(server.Start(config).ok());
  EXPECT_TRUE(server.ListeningAddresses().empty());
}

}  // namespace
}  // namespace fordeler
