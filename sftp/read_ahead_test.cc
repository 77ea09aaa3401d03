#include "sftp/read_ahead.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

namespace fordeler {
namespace {

// A connected pair of non-blocking stream sockets: the test writes to `peer` and reads `fd`.
class ReadAheadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    fd_ = fds[0];
    peer_ = fds[1];
    int size = 1 << 20;
    ::setsockopt(peer_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (peer_ >= 0) ::close(peer_);
  }

  // Writes `n` bytes numbered from `first` (mod 251, so that 4 KiB pieces differ).
  void Send(size_t n, size_t first = 0) {
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>((first + i) % 251);
    ASSERT_EQ(::send(peer_, bytes.data(), n, 0), static_cast<ssize_t>(n));
  }

  // Bytes waiting in the kernel's queue of `fd_`.
  int Queued() {
    int n = -1;
    EXPECT_EQ(::ioctl(fd_, FIONREAD, &n), 0);
    return n;
  }

  bool Readable(int timeout_ms = 0) {
    pollfd pfd{fd_, POLLIN, 0};
    return ::poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN) != 0;
  }

  // Reads everything up to `n` bytes in 4 KiB calls, as libssh does, and checks the numbering.
  void ExpectStream(size_t n, size_t first) {
    std::vector<uint8_t> got;
    uint8_t piece[4096];
    for (int calls = 0; got.size() < n && calls < 10'000; ++calls) {
      ssize_t r = ::recv(fd_, piece, sizeof piece, 0);
      ASSERT_GT(r, 0) << "after " << got.size() << " bytes";
      got.insert(got.end(), piece, piece + r);
    }
    ASSERT_EQ(got.size(), n);
    for (size_t i = 0; i < n; ++i) {
      ASSERT_EQ(got[i], static_cast<uint8_t>((first + i) % 251)) << "byte " << i;
    }
  }

  int fd_ = -1;
  int peer_ = -1;
};

TEST_F(ReadAheadTest, OutsideAScopeCallsGoToTheKernel) {
  Send(10'000);
  uint8_t piece[4096];
  ASSERT_EQ(::recv(fd_, piece, sizeof piece, 0), 4096);
  EXPECT_EQ(Queued(), 10'000 - 4096);
  ReadAhead ahead;
  {
    ReadAhead::Scope scope(ahead, peer_);  // another descriptor's scope changes nothing here
    ASSERT_EQ(::recv(fd_, piece, 100, 0), 100);
    EXPECT_EQ(Queued(), 10'000 - 4196);
  }
  EXPECT_EQ(ahead.leftover(), 0u);
}

TEST_F(ReadAheadTest, OneSystemReadServesManySmallOnes) {
  Send(200'000);
  ReadAhead ahead;
  ReadAhead::Scope scope(ahead, fd_);
  uint8_t piece[4096];
  ASSERT_EQ(::recv(fd_, piece, sizeof piece, 0), 4096);
  EXPECT_EQ(Queued(), 200'000 - static_cast<int>(ReadAhead::kCapacity));
  EXPECT_EQ(ahead.leftover(), ReadAhead::kCapacity - 4096);
  ExpectStream(200'000 - 4096, 4096);
  EXPECT_EQ(Queued(), 0);
  EXPECT_EQ(ahead.leftover(), 0u);
  EXPECT_EQ(::recv(fd_, piece, sizeof piece, 0), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST_F(ReadAheadTest, PollSeesBufferedInputTheKernelNoLongerHas) {
  Send(10'000);
  ReadAhead ahead;
  {
    ReadAhead::Scope scope(ahead, fd_);
    uint8_t piece[4096];
    ASSERT_EQ(::recv(fd_, piece, sizeof piece, 0), 4096);
    EXPECT_EQ(Queued(), 0);
    EXPECT_TRUE(Readable());

    // Writability waits until the buffer is empty: libssh asks for it on every round.
    pollfd both{fd_, POLLIN | POLLOUT, 0};
    ASSERT_EQ(::poll(&both, 1, 0), 1);
    EXPECT_EQ(both.revents, POLLIN);

    pollfd idle[2] = {{-1, POLLIN, POLLHUP}, {fd_, POLLIN, POLLHUP}};  // stale revents
    ASSERT_EQ(::poll(idle, 2, 0), 1);
    EXPECT_EQ(idle[0].revents, 0);
    EXPECT_EQ(idle[1].revents, POLLIN);

    pollfd write_only{fd_, POLLOUT, 0};  // without POLLIN the kernel answers
    ASSERT_EQ(::poll(&write_only, 1, 0), 1);
    EXPECT_EQ(write_only.revents, POLLOUT);

    Send(1, 10'000);  // other descriptors are asked about, without waiting
    pollfd three[3] = {{peer_, POLLIN, 0}, {fd_, POLLIN, 0}, {peer_, POLLOUT, 0}};
    ASSERT_EQ(::poll(three, 3, 1000), 2);
    EXPECT_EQ(three[0].revents, 0);
    EXPECT_EQ(three[1].revents, POLLIN);
    EXPECT_EQ(three[2].revents, POLLOUT);
    pollfd asked[2] = {{peer_, POLLIN, 0}, {fd_, POLLIN | POLLOUT, 0}};  // the kernel's answer kept
    ASSERT_EQ(::poll(asked, 2, 0), 1);
    EXPECT_EQ(asked[1].revents, POLLIN | POLLOUT);

    ExpectStream(10'000 + 1 - 4096, 4096);
    EXPECT_FALSE(Readable());
    ASSERT_EQ(::poll(&both, 1, 0), 1);  // and once it is empty, the kernel answers again
    EXPECT_EQ(both.revents, POLLOUT);
  }
  EXPECT_FALSE(Readable());
}

TEST_F(ReadAheadTest, InputLeftAtTheEndOfAScopeIsServedFirstByTheNext) {
  Send(30'000);
  ReadAhead ahead;
  uint8_t piece[4096];
  {
    ReadAhead::Scope scope(ahead, fd_);
    ASSERT_EQ(::recv(fd_, piece, sizeof piece, 0), 4096);
  }
  EXPECT_EQ(ahead.leftover(), 30'000u - 4096);
  EXPECT_FALSE(Readable());  // the socket itself is empty: the owner must come back by itself
  Send(5'000, 30'000);
  {
    ReadAhead::Scope scope(ahead, fd_);
    ExpectStream(35'000 - 4096, 4096);
  }
  EXPECT_EQ(ahead.leftover(), 0u);
}

TEST_F(ReadAheadTest, EndOfStreamAndErrorsPassThrough) {
  Send(5);
  ::close(peer_);
  peer_ = -1;
  ReadAhead ahead;
  ReadAhead::Scope scope(ahead, fd_);
  uint8_t piece[4096];
  EXPECT_EQ(::recv(fd_, piece, sizeof piece, 0), 5);
  EXPECT_EQ(::recv(fd_, piece, sizeof piece, 0), 0);

  int file = ::open("/dev/null", O_RDONLY);
  ASSERT_GE(file, 0);
  EXPECT_EQ(::recv(file, piece, sizeof piece, 0), -1);
  EXPECT_EQ(errno, ENOTSOCK);
  ::close(file);
}

TEST_F(ReadAheadTest, PeekingPastBufferedInputIsRefused) {
  Send(10'000);
  ReadAhead ahead;
  ReadAhead::Scope scope(ahead, fd_);
  uint8_t piece[4096];
  ASSERT_EQ(::recv(fd_, piece, 100, 0), 100);
  EXPECT_EQ(::recv(fd_, piece, sizeof piece, MSG_PEEK), -1);
  EXPECT_EQ(errno, EINVAL);
  ExpectStream(10'000 - 100, 100);
}

TEST_F(ReadAheadTest, AScopeIsOnlyItsThreads) {
  Send(10'000);
  ReadAhead ahead;
  ReadAhead::Scope scope(ahead, fd_);
  uint8_t piece[4096];
  ASSERT_EQ(::recv(fd_, piece, 100, 0), 100);
  ssize_t other = 0;
  std::thread([&] { other = ::recv(fd_, piece, sizeof piece, 0); }).join();
  EXPECT_EQ(other, -1);  // the kernel's queue is empty: all of it is in this thread's buffer
  EXPECT_EQ(ahead.leftover(), 10'000u - 100);
}

// libssh finds these definitions, not libc's: the executable exports them.
TEST(ReadAheadLinkage, SharedLibrariesBindToTheseDefinitions) {
  EXPECT_EQ(::dlsym(RTLD_DEFAULT, "recv"), reinterpret_cast<void*>(&::recv));
  EXPECT_EQ(::dlsym(RTLD_DEFAULT, "poll"), reinterpret_cast<void*>(&::poll));
  EXPECT_NE(::dlsym(RTLD_NEXT, "recv"), reinterpret_cast<void*>(&::recv));
}

}  // namespace
}  // namespace fordeler
