// EndTimeWait (ckpt/net_lock.h): a job's listener comes back to a node
// where connections it closed still wait in TIME_WAIT, and must bind its
// port again. Real sockets on loopback; SOCK_DESTROY needs root. Each test
// has an address of its own (127.0.0.51, .52): ctest runs them at once,
// and EndTimeWait ends every connection of its address, another test's
// too.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

#include "ckpt/net_lock.h"
#include "common/unique_fd.h"

namespace roam {
namespace {

// Binds a new TCP socket (no SO_REUSEADDR) to 0.0.0.0:port: 0 or errno.
int BindAny(uint16_t port) {
  UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  return bind(s.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0 ? 0 : errno;
}

// A listener `l` (bound already) on port `port` takes one connection to
// `ipv4` and closes its side first, then goes: the connection waits in
// TIME_WAIT, and the port cannot be bound without SO_REUSEADDR until
// EndTimeWait(ipv4) ends it.
void CheckTimeWaitEnded(UniqueFd l, uint16_t port, const char* ipv4) {
  ASSERT_EQ(listen(l.get(), 4), 0);
  {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    ASSERT_EQ(inet_pton(AF_INET, ipv4, &to.sin_addr), 1);
    UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    UniqueFd a(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(a.get(), 0);
    a.reset();  // the server's side closes first
    usleep(20000);
  }
  l.reset();
  ASSERT_EQ(BindAny(port), EADDRINUSE) << "no connection in TIME_WAIT on port " << port;
  Result<int> ended = EndTimeWait(ipv4);
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_GE(*ended, 1);
  EXPECT_EQ(BindAny(port), 0);
}

TEST(EndTimeWait, TheListenersPortCanBeBoundAgain) {
  if (geteuid() != 0) GTEST_SKIP() << "SOCK_DESTROY needs CAP_NET_ADMIN";
  UniqueFd l(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  ASSERT_EQ(inet_pton(AF_INET, "127.0.0.51", &at.sin_addr), 1);
  socklen_t len = sizeof(at);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  ASSERT_EQ(getsockname(l.get(), reinterpret_cast<sockaddr*>(&at), &len), 0);
  CheckTimeWaitEnded(std::move(l), ntohs(at.sin_port), "127.0.0.51");
}

// A dual-stack listener (bound to ::, as Python's http.server and Go's
// net/http are) holds IPv4 connections as IPv6 sockets with the address
// mapped (::ffff:127.0.0.52): theirs too.
TEST(EndTimeWait, ThoseOfADualStackListener) {
  if (geteuid() != 0) GTEST_SKIP() << "SOCK_DESTROY needs CAP_NET_ADMIN";
  UniqueFd l(socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0));
  const int zero = 0;
  ASSERT_EQ(setsockopt(l.get(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)), 0);
  sockaddr_in6 any{};
  any.sin6_family = AF_INET6;
  socklen_t len = sizeof(any);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&any), sizeof(any)), 0);
  ASSERT_EQ(getsockname(l.get(), reinterpret_cast<sockaddr*>(&any), &len), 0);
  CheckTimeWaitEnded(std::move(l), ntohs(any.sin6_port), "127.0.0.52");
}

TEST(EndTimeWait, OnlyThatAddress) {
  if (geteuid() != 0) GTEST_SKIP() << "SOCK_DESTROY needs CAP_NET_ADMIN";
  Result<int> ended = EndTimeWait("127.0.0.254");  // nothing ever used it
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_EQ(*ended, 0);
  EXPECT_FALSE(EndTimeWait("not an address").ok());
}

}  // namespace
}  // namespace roam
