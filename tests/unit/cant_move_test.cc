// CantMoveReason: the one word `roam ps` shows in CANTMOVE, read from /proc
// of real child processes holding what the engine refuses (and one that
// holds nothing of the kind).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/auxv.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <functional>
#include <set>
#include <vector>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>

#include "ckpt/checkpoint.h"

namespace roam {
namespace {

// Closes every fd above stdio but those in `keep`: what the test runner
// inherited (a CI harness's pipes, held open outside) would be pipes to
// outside the child's tree, and CANTMOVE would rightly say "pipe".
void CloseInheritedFds(const std::set<int>& keep) {
  std::vector<int> fds;
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      const int fd = atoi(e->d_name);
      if (fd > 2 && fd != dirfd(d) && !keep.count(fd)) fds.push_back(fd);
    }
    closedir(d);
  }
  for (int fd : fds) close(fd);
}

// Forks a child that runs `setup` with only stdio and the fds in `keep`
// open, then waits to be killed; returns the reason seen for it (the
// child's setup is done when it writes a byte).
std::string ReasonFor(const std::function<void()>& setup, const std::string& own_address = "",
                      std::set<int> keep = {}) {
  int ready[2];
  if (pipe(ready) != 0) return "pipe failed";
  pid_t pid = fork();
  if (pid == 0) {
    keep.insert(ready[1]);
    CloseInheritedFds(keep);
    setup();
    (void)!write(ready[1], "x", 1);
    for (;;) pause();
  }
  close(ready[1]);
  char c;
  (void)!read(ready[0], &c, 1);
  close(ready[0]);
  std::string why = CantMoveReason(pid, own_address);
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
  return why;
}

TEST(CantMoveReason, NothingInSight) {
  EXPECT_EQ(ReasonFor([] {
              int p[2];
              (void)!pipe(p);
              (void)eventfd(0, 0);
            }),
            "");
}

// A pipe whose other end a process outside the tree holds (here the
// test itself, the parent), at an fd above stdio: the dump refuses it.
TEST(CantMoveReason, PipeToOutside) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(ReasonFor([&] { close(p[1]); }, "", {p[0], p[1]}), "pipe");
  close(p[0]);
  close(p[1]);
}

// The same pipe at its stdout too (a remote job's stdout, which the
// program copied: `exec 3>&1`, valgrind's log fd): inherited stdio, with
// the copy; it moves.
TEST(CantMoveReason, PipeAtStdoutAndACopyOfIt) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  EXPECT_EQ(ReasonFor(
                [&] {
                  close(p[0]);
                  dup2(p[1], 1);
                },
                "", {p[0], p[1]}),
            "");
  close(p[0]);
  close(p[1]);
}

// Only its read end, and nobody holds the write end: a pipe of its own.
TEST(CantMoveReason, PipeWithItsOtherEndClosed) {
  EXPECT_EQ(ReasonFor([] {
              int p[2];
              (void)!pipe(p);
              close(p[1]);
            }),
            "");
}

// A TCP connection on `ip` (here both ends: a client and the accepted
// socket), over IPv4 or IPv6 (`ip` v4-mapped).
void ConnectionTo(const char* ip, int family) {
  int l = socket(family, SOCK_STREAM, 0);
  sockaddr_storage a{};
  socklen_t len = family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
  if (family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, ip, &in->sin_addr);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, (std::string("::ffff:") + ip).c_str(), &in6->sin6_addr);
  }
  (void)bind(l, reinterpret_cast<sockaddr*>(&a), len);
  (void)listen(l, 1);
  (void)getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
  int c = socket(family, SOCK_STREAM, 0);
  sockaddr_storage from = a;  // the client's end on `ip` too
  reinterpret_cast<sockaddr_in*>(&from)->sin_port = 0;  // the same place in sockaddr_in6
  (void)bind(c, reinterpret_cast<sockaddr*>(&from), len);
  (void)connect(c, reinterpret_cast<sockaddr*>(&a), len);
  (void)accept(l, nullptr, nullptr);
}

TEST(CantMoveReason, Socket) {
  EXPECT_EQ(ReasonFor([] { ConnectionTo("127.0.0.1", AF_INET); }), "socket");
}

// Both ends of these connections are on the tree's own address (which
// moves with it: node/job_address.h), so they move; on another address
// they do not.
TEST(CantMoveReason, ConnectionsOnItsOwnAddressMove) {
  EXPECT_EQ(ReasonFor([] { ConnectionTo("127.0.0.2", AF_INET); }, "127.0.0.2"), "");
  EXPECT_EQ(ReasonFor([] { ConnectionTo("127.0.0.2", AF_INET6); }, "127.0.0.2"), "");
  EXPECT_EQ(ReasonFor([] { ConnectionTo("127.0.0.2", AF_INET); }, "127.0.0.3"), "socket");
}

// A connection being closed moves too (refused until 2026-12-07): the
// client shut down its side (FIN_WAIT2), the server has not (CLOSE_WAIT).
TEST(CantMoveReason, HalfClosedConnectionsOnItsOwnAddressMove) {
  auto half_closed = [] {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.2", &a.sin_addr);
    socklen_t len = sizeof(a);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    (void)bind(l, reinterpret_cast<sockaddr*>(&a), len);
    (void)listen(l, 1);
    (void)getsockname(l, reinterpret_cast<sockaddr*>(&a), &len);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in from = a;  // the client's end on 127.0.0.2 too
    from.sin_port = 0;
    (void)bind(c, reinterpret_cast<sockaddr*>(&from), len);
    (void)connect(c, reinterpret_cast<sockaddr*>(&a), len);
    (void)accept(l, nullptr, nullptr);
    (void)shutdown(c, SHUT_WR);
    usleep(50000);  // the FIN arrives, and its ACK
  };
  EXPECT_EQ(ReasonFor(half_closed, "127.0.0.2"), "");
  EXPECT_EQ(ReasonFor(half_closed, "127.0.0.3"), "socket");
}

TEST(CantMoveReason, ListenerAndUdpSocketMove) {  // refused until the engine carried them
  EXPECT_EQ(ReasonFor([] {
              sockaddr_in a{};
              a.sin_family = AF_INET;
              a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
              int l = socket(AF_INET, SOCK_STREAM, 0);
              (void)bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a));
              (void)listen(l, 1);
              int u = socket(AF_INET6, SOCK_DGRAM, 0);
              sockaddr_in6 a6{};
              a6.sin6_family = AF_INET6;
              (void)bind(u, reinterpret_cast<sockaddr*>(&a6), sizeof(a6));
            }),
            "");
}

TEST(CantMoveReason, PseudoTerminalPairMoves) {  // refused until the engine carried it (file_pty.cc)
  EXPECT_EQ(ReasonFor([] { (void)posix_openpt(O_RDWR | O_NOCTTY); }), "");
}

TEST(CantMoveReason, UnmappedVdsoMoves) {  // the engine works through its own code then
  EXPECT_EQ(ReasonFor([] {
              unsigned long base = getauxval(AT_SYSINFO_EHDR);
              FILE* f = fopen("/proc/self/maps", "r");
              char line[512];
              unsigned long lo = 0, hi = 0;
              while (f && fgets(line, sizeof line, f)) {
                if (strstr(line, "[vdso]")) sscanf(line, "%lx-%lx", &lo, &hi);
              }
              if (f) fclose(f);
              if (lo == base && lo != 0) syscall(SYS_munmap, lo, hi - lo);
            }),
            "");
}

TEST(CantMoveReason, PidfdMoves) {  // refused until the engine carried it (file_pidfd.cc)
  EXPECT_EQ(ReasonFor([] { (void)syscall(SYS_pidfd_open, getpid(), 0); }), "");
}

TEST(CantMoveReason, AnonymousInodeNamed) {  // what the engine does not carry
  EXPECT_EQ(ReasonFor([] { (void)syscall(SYS_userfaultfd, O_CLOEXEC); }), "userfaultfd");
}

TEST(CantMoveReason, NamespaceFile) {
  EXPECT_EQ(ReasonFor([] { (void)open("/proc/self/ns/uts", O_RDONLY); }), "namespace");
}

TEST(CantMoveReason, UnixSocketsMove) {  // a TCP connection does not (above)
  EXPECT_EQ(ReasonFor([] {
              int sv[2];
              (void)socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
              (void)socket(AF_UNIX, SOCK_DGRAM, 0);
              int l = socket(AF_UNIX, SOCK_STREAM, 0);
              sockaddr_un a{};
              a.sun_family = AF_UNIX;
              memcpy(a.sun_path, "\0roam-cant-move-test", 21);
              (void)bind(l, reinterpret_cast<sockaddr*>(&a), offsetof(sockaddr_un, sun_path) + 21);
              (void)listen(l, 1);
            }),
            "");
}

TEST(CantMoveReason, MemfdMoves) {  // refused until the engine carried it
  EXPECT_EQ(ReasonFor([] { (void)memfd_create("x", 0); }), "");
}

TEST(CantMoveReason, ChildWithASocketCountsForTheTree) {
  EXPECT_EQ(ReasonFor([] {
              int done[2];
              (void)!pipe(done);
              if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);  // goes with its parent
                (void)open("/proc/self/ns/uts", O_RDONLY);
                (void)!write(done[1], "x", 1);
                for (;;) pause();
              }
              char c;
              (void)!read(done[0], &c, 1);
            }),
            "namespace");
}

TEST(CantMoveReason, ThreadsMove) {  // refused until the engine carried them
  EXPECT_EQ(ReasonFor([] {
              pthread_t t;
              pthread_create(&t, nullptr, [](void*) -> void* { for (;;) pause(); }, nullptr);
            }),
            "");
}

// A tracer in the tree (strace -f, gdb): a traced process cannot be
// frozen by the engine, which traces what it freezes. Only the engine's
// own tracing (this process's: roamd's) is not counted.
TEST(CantMoveReason, TracedByAProcessOfItsTree) {
  EXPECT_EQ(ReasonFor([] {
              int p[2];
              (void)!pipe(p);
              if (fork() == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                ptrace(PTRACE_TRACEME, 0, nullptr, nullptr);
                (void)!write(p[1], "x", 1);
                for (;;) pause();
              }
              char c;
              (void)!read(p[0], &c, 1);
            }),
            "traced");
}

TEST(CantMoveReason, GoneProcessIsNotRefused) { EXPECT_EQ(CantMoveReason(999999999), ""); }

}  // namespace
}  // namespace roam
