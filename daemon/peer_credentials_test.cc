#include "daemon/peer_credentials.h"

#include <grp.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/env.h"

namespace fordeler {
namespace {

constexpr uid_t kNobody = 65534;
constexpr gid_t kMember = 4242;  // a group the test process itself is not in

// Listens on a fresh abstract unix socket (no file, so no directory permissions in the way).
UniqueFd ListenAbstract(sockaddr_un* addr, socklen_t* len) {
  UniqueFd fd(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  *addr = {};
  addr->sun_family = AF_UNIX;
  std::string name = "fordeler-peer-test-" + std::to_string(getpid());
  std::memcpy(addr->sun_path + 1, name.data(), name.size());
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd.get(), reinterpret_cast<sockaddr*>(addr), *len) != 0 || listen(fd.get(), 1) != 0) {
    return UniqueFd();
  }
  return fd;
}

TEST(PeerCredentialsTest, ReportsUidGidPidAndGroupsOfThisProcess) {
  int pair[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
  UniqueFd a(pair[0]), b(pair[1]);
  auto peer = GetPeerCredentials(a.get());
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_EQ(peer->uid, geteuid());
  EXPECT_EQ(peer->gid, getegid());
  EXPECT_EQ(peer->pid, getpid());
  std::vector<gid_t> mine(static_cast<size_t>(getgroups(0, nullptr)));
  mine.resize(static_cast<size_t>(getgroups(static_cast<int>(mine.size()), mine.data())));
  std::sort(mine.begin(), mine.end());
  std::sort(peer->groups.begin(), peer->groups.end());
  EXPECT_EQ(peer->groups, mine);
}

TEST(PeerCredentialsTest, SupplementaryMembershipIsSeenWithoutProc) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to switch the child's user and groups";
  sockaddr_un addr;
  socklen_t len;
  UniqueFd listener = ListenAbstract(&addr, &len);
  ASSERT_TRUE(listener.valid());
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {  // nobody, primary group nobody, supplementary group kMember only
    gid_t groups[] = {kMember};
    if (setgroups(1, groups) != 0 || setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) _exit(3);
    char c;
    (void)read(fd, &c, 1);  // stay connected (and alive) until the parent has looked
    _exit(0);
  }
  UniqueFd conn(accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(conn.valid());
  auto peer = GetPeerCredentials(conn.get());
  conn.Reset();
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  ASSERT_TRUE(peer.ok()) << peer.status().ToString();
  EXPECT_EQ(peer->uid, kNobody);
  EXPECT_EQ(peer->groups, std::vector<gid_t>{kMember});
  EXPECT_TRUE(MayControl(*peer, /*daemon_uid=*/999, /*daemon_gid=*/kMember));
  EXPECT_FALSE(MayControl(*peer, /*daemon_uid=*/999, /*daemon_gid=*/4343));
}

TEST(PeerCredentialsTest, MayControlRules) {
  PeerCredentials root{0, 0, 1, {}};
  PeerCredentials self{999, 100, 1, {}};
  PeerCredentials primary{1000, 999, 1, {}};
  PeerCredentials member{1000, 1000, 1, {27, 999}};
  PeerCredentials stranger{1000, 1000, 1, {27}};
  EXPECT_TRUE(MayControl(root, 999, 999));
  EXPECT_TRUE(MayControl(self, 999, 999));
  EXPECT_TRUE(MayControl(primary, 999, 999));
  EXPECT_TRUE(MayControl(member, 999, 999));
  EXPECT_FALSE(MayControl(stranger, 999, 999));
}

}  // namespace
}  // namespace fordeler
