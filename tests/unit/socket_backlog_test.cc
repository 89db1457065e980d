// SocketBacklogOf: what waits in the kernel for a live tree's sockets, which
// a move lets the tree take before it freezes (node/backlog_wait.h). Real
// sockets on loopback or in the abstract UNIX namespace, held by this
// process or a child.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/net_lock.h"
#include "common/unique_fd.h"

namespace roam {
namespace {

sockaddr_in Loopback() {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// A listener on 127.0.0.1 at a port of the kernel's choice; its address.
UniqueFd Listener(sockaddr_in* at) {
  UniqueFd s(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  *at = Loopback();
  socklen_t len = sizeof(*at);
  EXPECT_EQ(bind(s.get(), reinterpret_cast<sockaddr*>(at), sizeof(*at)), 0);
  EXPECT_EQ(listen(s.get(), 16), 0);
  EXPECT_EQ(getsockname(s.get(), reinterpret_cast<sockaddr*>(at), &len), 0);
  return s;
}

UniqueFd Connect(const sockaddr_in& to) {
  UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  EXPECT_EQ(connect(c.get(), reinterpret_cast<const sockaddr*>(&to), sizeof(to)), 0);
  return c;
}

// Looks every 5 ms, for at most 0.5 s, until `done` holds; the last look.
SocketBacklog BacklogUntil(pid_t root, const std::function<bool(const SocketBacklog&)>& done) {
  SocketBacklog b;
  for (int i = 0; i < 100; ++i) {
    Result<SocketBacklog> r = SocketBacklogOf(root);
    EXPECT_TRUE(r.ok()) << r.status().message();
    if (!r.ok()) return b;
    b = *r;
    if (done(b)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return b;
}

// Loopback handshakes complete at once; the kernel queues the connection
// a moment later at most.
SocketBacklog BacklogOf(pid_t root, uint32_t want_to_accept) {
  return BacklogUntil(root, [&](const SocketBacklog& b) { return b.to_accept == want_to_accept; });
}

TEST(SocketBacklog, ConnectionsWaitingToBeAccepted) {
  sockaddr_in at{};
  UniqueFd l = Listener(&at);
  EXPECT_TRUE(BacklogOf(getpid(), 0).empty());
  UniqueFd c1 = Connect(at), c2 = Connect(at);
  SocketBacklog b = BacklogOf(getpid(), 2);
  EXPECT_EQ(b.to_accept, 2u);
  EXPECT_EQ(b.handshakes, 0u);
  EXPECT_FALSE(b.empty());
  EXPECT_EQ(b.Text(), "2 connection(s) to accept");
  UniqueFd a1(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  EXPECT_EQ(BacklogOf(getpid(), 1).to_accept, 1u);
  UniqueFd a2(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  b = BacklogOf(getpid(), 0);
  EXPECT_TRUE(b.empty()) << b.Text();
}

// With TCP_DEFER_ACCEPT the kernel keeps a connection whose handshake is
// done as a request (SYN_RECV) until its first data: a handshake under way,
// for the listener of the tree, that a move waits for.
TEST(SocketBacklog, HandshakesUnderWay) {
  sockaddr_in at{};
  UniqueFd l = Listener(&at);
  const int secs = 5;
  ASSERT_EQ(setsockopt(l.get(), IPPROTO_TCP, TCP_DEFER_ACCEPT, &secs, sizeof(secs)), 0);
  UniqueFd c = Connect(at);
  SocketBacklog b = BacklogUntil(getpid(), [](const SocketBacklog& x) { return x.handshakes != 0; });
  EXPECT_EQ(b.handshakes, 1u);
  EXPECT_EQ(b.to_accept, 0u);
  EXPECT_EQ(b.Text(), "1 handshake(s) under way");
  // Its first data completes it: a connection to accept.
  ASSERT_EQ(send(c.get(), "x", 1, 0), 1);
  b = BacklogOf(getpid(), 1);
  EXPECT_EQ(b.to_accept, 1u);
  EXPECT_EQ(b.handshakes, 0u);
}

TEST(SocketBacklog, DatagramsWaitingToBeRead) {
  UniqueFd u(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in at = Loopback();
  socklen_t len = sizeof(at);
  ASSERT_EQ(bind(u.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  ASSERT_EQ(getsockname(u.get(), reinterpret_cast<sockaddr*>(&at), &len), 0);
  EXPECT_TRUE(BacklogOf(getpid(), 0).empty());
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(sendto(s.get(), "ping", 4, 0, reinterpret_cast<sockaddr*>(&at), sizeof(at)), 4);
  }
  SocketBacklog b = BacklogOf(getpid(), 0);
  EXPECT_EQ(b.udp_sockets, 1u);
  EXPECT_GT(b.udp_bytes, 0u);
  const uint64_t three = b.amount();
  char buf[8];
  ASSERT_EQ(recv(u.get(), buf, sizeof(buf), 0), 4);
  b = BacklogOf(getpid(), 0);
  EXPECT_EQ(b.udp_sockets, 1u);
  EXPECT_LT(b.amount(), three);  // what a move watches fall
  ASSERT_EQ(recv(u.get(), buf, sizeof(buf), 0), 4);
  ASSERT_EQ(recv(u.get(), buf, sizeof(buf), 0), 4);
  b = BacklogOf(getpid(), 0);
  EXPECT_TRUE(b.empty()) << b.Text();
}

// What waits for sockets outside the tree is not its business.
TEST(SocketBacklog, OnlyTheTreesSocketsCount) {
  UniqueFd own(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));  // the child holds a socket, with nothing waiting
  pid_t child = fork();
  if (child == 0) {
    pause();
    _exit(0);
  }
  ASSERT_GT(child, 0);
  sockaddr_in at{};
  UniqueFd l = Listener(&at);  // made after the fork: the child does not hold it
  UniqueFd c = Connect(at);
  EXPECT_EQ(BacklogOf(getpid(), 1).to_accept, 1u);
  Result<SocketBacklog> b = SocketBacklogOf(child);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_TRUE(b->empty()) << b->Text();
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
}

TEST(SocketBacklog, GoneProcessHasNothingWaiting) {
  Result<SocketBacklog> b = SocketBacklogOf(999999999);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->empty());
}

// The ports new clients come to, which a hold names (net_lock.h HoldPorts):
// the tree's listeners' and its bound UDP sockets', not a client's.
TEST(SocketBacklog, TheTreesListeningAndUdpPorts) {
  sockaddr_in at{};
  UniqueFd l = Listener(&at);
  UniqueFd c = Connect(at);  // its own ephemeral port is no listener's
  UniqueFd u(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in uat = Loopback();
  socklen_t len = sizeof(uat);
  ASSERT_EQ(bind(u.get(), reinterpret_cast<sockaddr*>(&uat), sizeof(uat)), 0);
  ASSERT_EQ(getsockname(u.get(), reinterpret_cast<sockaddr*>(&uat), &len), 0);
  SocketBacklog b = BacklogOf(getpid(), 1);
  EXPECT_TRUE(b.tcp_ports.count(ntohs(at.sin_port)));
  EXPECT_TRUE(b.udp_ports.count(ntohs(uat.sin_port)));
  sockaddr_in mine{};
  len = sizeof(mine);
  ASSERT_EQ(getsockname(c.get(), reinterpret_cast<sockaddr*>(&mine), &len), 0);
  EXPECT_FALSE(b.tcp_ports.count(ntohs(mine.sin_port)));
}

// BacklogDrain: freeze once nothing waits; wait while the tree takes what
// waits; give up when it stops taking them (300 ms) or after 2 s.
TEST(BacklogDrain, WaitsWhileTheTreeTakesWhatWaits) {
  using namespace std::chrono_literals;
  const auto t0 = std::chrono::steady_clock::now();
  SocketBacklog some;
  some.to_accept = 5;
  SocketBacklog fewer = some;
  fewer.to_accept = 3;
  {
    BacklogDrain d(t0);
    EXPECT_TRUE(d.MayFreeze(SocketBacklog{}, t0)) << "nothing waits";
    EXPECT_TRUE(d.MayFreeze(Status::Error("sock_diag failed"), t0)) << "the dump looks itself";
  }
  {
    BacklogDrain d(t0);
    EXPECT_FALSE(d.MayFreeze(some, t0 + 5ms));
    EXPECT_FALSE(d.MayFreeze(fewer, t0 + 250ms)) << "it takes them";
    EXPECT_FALSE(d.MayFreeze(fewer, t0 + 500ms)) << "250 ms since the last one taken";
    EXPECT_TRUE(d.MayFreeze(fewer, t0 + 560ms)) << "stopped taking them for more than 300 ms";
  }
  {
    BacklogDrain d(t0);
    SocketBacklog falling = some;
    bool froze = false;
    auto t = t0;
    for (int i = 0; i < 1000 && !froze; ++i) {
      falling.udp_bytes = 1000000 - i;  // always taking some
      t += 10ms;
      froze = d.MayFreeze(falling, t);
    }
    EXPECT_TRUE(froze);
    EXPECT_GT(t - t0, 2s - 20ms);
    EXPECT_LE(t - t0, 2s + 20ms) << "the limit";
  }
}

// A held port: SYNs and datagrams to it are dropped until let in, and a
// client's retransmitted SYN then gets through. As root (nftables).
TEST(HoldPorts, NewClientsWaitUntilLetIn) {
  if (geteuid() != 0) GTEST_SKIP() << "needs CAP_NET_ADMIN";
  sockaddr_in at{};
  UniqueFd l = Listener(&at);
  UniqueFd u(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  sockaddr_in uat = Loopback();
  socklen_t len = sizeof(uat);
  ASSERT_EQ(bind(u.get(), reinterpret_cast<sockaddr*>(&uat), sizeof(uat)), 0);
  ASSERT_EQ(getsockname(u.get(), reinterpret_cast<sockaddr*>(&uat), &len), 0);
  const std::set<uint16_t> tcp{ntohs(at.sin_port)}, udp{ntohs(uat.sin_port)};
  Status held = HoldPorts(tcp, udp);
  ASSERT_TRUE(held.ok()) << held.message();

  UniqueFd c(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_NE(connect(c.get(), reinterpret_cast<sockaddr*>(&at), sizeof(at)), 0);
  ASSERT_EQ(errno, EINPROGRESS);
  pollfd p{c.get(), POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 400), 0) << "the SYN got through a held port";
  UniqueFd s(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(sendto(s.get(), "held", 4, 0, reinterpret_cast<sockaddr*>(&uat), sizeof(uat)), 4);
  pollfd q{u.get(), POLLIN, 0};
  EXPECT_EQ(poll(&q, 1, 200), 0) << "a datagram got through a held port";

  ASSERT_TRUE(LetPortsIn(tcp, udp).ok());
  EXPECT_EQ(poll(&p, 1, 5000), 1) << "the retransmitted SYN did not get through once let in";
  int err = -1;
  len = sizeof(err);
  ASSERT_EQ(getsockopt(c.get(), SOL_SOCKET, SO_ERROR, &err, &len), 0);
  EXPECT_EQ(err, 0);
  ASSERT_EQ(sendto(s.get(), "free", 4, 0, reinterpret_cast<sockaddr*>(&uat), sizeof(uat)), 4);
  EXPECT_EQ(poll(&q, 1, 2000), 1);
  char buf[8];
  EXPECT_EQ(recv(u.get(), buf, sizeof(buf), 0), 4);
  EXPECT_EQ(std::string(buf, 4), "free") << "the held datagram was dropped, not queued";
  EXPECT_TRUE(LetPortsIn(tcp, udp).ok()) << "letting in what is not held is no error";
}

// A connection being closed (CLOSE_WAIT, FIN_WAIT) is carried: a move
// does not wait for it. One being opened (SYN sent, no answer yet) is
// refused for a moment: a move waits for its handshake.
TEST(SocketBacklog, ConnectionsBeingOpenedNotThoseBeingClosed) {
  sockaddr_in at{};
  UniqueFd l = Listener(&at);
  UniqueFd c = Connect(at);
  UniqueFd a(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_TRUE(a.get() >= 0);
  c.reset();  // the client is done: a is in CLOSE_WAIT
  UniqueFd c2 = Connect(at);
  UniqueFd a2(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));
  ASSERT_EQ(shutdown(a2.get(), SHUT_WR), 0);  // FIN_WAIT2, c2 in CLOSE_WAIT
  SocketBacklog b = BacklogOf(getpid(), 0);
  EXPECT_TRUE(b.empty()) << b.Text();

  // A listener with a backlog of 0 holds one connection; the SYN of the
  // next one is dropped while that one waits: it stays SYN_SENT.
  sockaddr_in full{};
  UniqueFd f(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  full = Loopback();
  socklen_t len = sizeof(full);
  ASSERT_EQ(bind(f.get(), reinterpret_cast<sockaddr*>(&full), sizeof(full)), 0);
  ASSERT_EQ(listen(f.get(), 0), 0);
  ASSERT_EQ(getsockname(f.get(), reinterpret_cast<sockaddr*>(&full), &len), 0);
  UniqueFd first = Connect(full);
  UniqueFd second(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  ASSERT_NE(connect(second.get(), reinterpret_cast<sockaddr*>(&full), sizeof(full)), 0);
  ASSERT_EQ(errno, EINPROGRESS);
  b = BacklogUntil(getpid(), [](const SocketBacklog& x) { return x.opening != 0; });
  EXPECT_EQ(b.opening, 1u) << b.Text();
  EXPECT_EQ(b.to_accept, 1u) << b.Text();
  EXPECT_EQ(b.Text(), "1 connection(s) to accept, 1 connection(s) being opened");
  UniqueFd taken(accept4(f.get(), nullptr, nullptr, SOCK_CLOEXEC));  // room: the SYN is sent again
  ASSERT_TRUE(taken.get() >= 0);
  pollfd p{second.get(), POLLOUT, 0};
  EXPECT_EQ(poll(&p, 1, 5000), 1) << "the retransmitted SYN did not get through";
  UniqueFd taken2(accept4(f.get(), nullptr, nullptr, SOCK_CLOEXEC));
  b = BacklogOf(getpid(), 0);
  EXPECT_TRUE(b.empty()) << b.Text();
}

// A UNIX listener's clients (a multiprocessing.Manager's workers) connect
// and wait to be accepted. The dump carries such a connection if both ends
// are the tree's and the client wrote nothing yet; the others are what a
// move waits for.
TEST(SocketBacklog, UnixConnectionsWaitingToBeAccepted) {
  // The child holds `shared` too, and no listener (it is made after).
  UniqueFd shared(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pause();
    _exit(0);
  }
  struct Reaped {
    pid_t pid;
    ~Reaped() {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
  } reaped{child};
  sockaddr_un at{};
  at.sun_family = AF_UNIX;
  const std::string name = "roam-backlog-test-" + std::to_string(getpid());
  memcpy(at.sun_path + 1, name.data(), name.size());  // abstract: nothing to remove
  const socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  UniqueFd l(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  ASSERT_EQ(bind(l.get(), reinterpret_cast<sockaddr*>(&at), len), 0);
  ASSERT_EQ(listen(l.get(), 8), 0);
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 2; ++i) {
    clients.emplace_back(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    ASSERT_EQ(connect(clients.back().get(), reinterpret_cast<sockaddr*>(&at), len), 0);
  }
  ASSERT_EQ(connect(shared.get(), reinterpret_cast<sockaddr*>(&at), len), 0);
  Result<std::map<uint64_t, UnixDiag>> diag = ReadUnixDiag();
  ASSERT_TRUE(diag.ok()) << diag.status().message();
  struct stat st {};
  ASSERT_EQ(fstat(l.get(), &st), 0);
  ASSERT_TRUE(diag->count(st.st_ino));
  EXPECT_EQ(diag->at(st.st_ino).pending.size(), 3u) << "sock_diag lists the clients waiting";

  SocketBacklog b = BacklogOf(getpid(), 0);
  EXPECT_TRUE(b.empty()) << "the tree's own clients, nothing written: carried; " << b.Text();
  Result<SocketBacklog> other = SocketBacklogOf(child);
  ASSERT_TRUE(other.ok()) << other.status().message();
  EXPECT_EQ(other->unix_to_accept, 1u) << "the child's connection waits for a listener outside its tree";
  EXPECT_EQ(other->Text(), "1 UNIX connection(s) waiting to be accepted");
  EXPECT_TRUE(other->tcp_ports.empty() && other->udp_ports.empty()) << "no port to hold off";

  ASSERT_EQ(write(clients[0].get(), "x", 1), 1);
  b = BacklogUntil(getpid(), [](const SocketBacklog& x) { return x.unix_to_accept == 1; });
  EXPECT_EQ(b.unix_to_accept, 1u) << "a client that wrote: what it wrote cannot be read before it is accepted";
  EXPECT_EQ(b.to_accept, 0u) << "not a TCP listener's";
  UniqueFd a(accept4(l.get(), nullptr, nullptr, SOCK_CLOEXEC));  // the first: the one that wrote
  ASSERT_TRUE(a.get() >= 0);
  b = BacklogUntil(getpid(), [](const SocketBacklog& x) { return x.empty(); });
  EXPECT_TRUE(b.empty()) << b.Text();
}

}  // namespace
}  // namespace roam
