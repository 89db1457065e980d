// EndTimeWait (ckpt/net_lock.h): a job's listener comes back to a node
// where connections it closed still wait in TIME_WAIT, and must bind its
// port again. Real sockets on 127.0.0.1; SOCK_DESTROY needs root.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

TEST(EndTimeWait, TheListenersPortCanBeBoundAgain) {
  if (geteuid() != 0) GTEST_SKIP() << "SOCK_DESTROY needs CAP_NET_ADMIN";
  // A server on 127.0.0.1 closes its side first: its connection waits in
  // TIME_WAIT, and its port cannot be bound without SO_REUSEADDR.
  UniqueFd l(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in at{};
  at.sin_family = AF_INET;
  at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(at);
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  ASSERT_EQ(listen(l.get(), 4), 0);
  ASSERT_EQ(getsockname(l.get(), reinterpret_cast<sockaddr*>(&at), &len), 0);
  const uint16_t port = ntohs(at.sin_port);
  {
    UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(connect(c.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
    UniqueFd a(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
    ASSERT_GE(a.get(), 0);
    a.reset();  // the server's side closes first
    usleep(20000);
  }
  l.reset();
  ASSERT_EQ(BindAny(port), EADDRINUSE) << "no connection in TIME_WAIT on port " << port;
  Result<int> ended = EndTimeWait("127.0.0.1");
  ASSERT_TRUE(ended.ok()) << ended.status().message();
  EXPECT_GE(*ended, 1);
  EXPECT_EQ(BindAny(port), 0);
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
