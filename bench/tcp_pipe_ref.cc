// tcp_pipe_ref: the raw TCP reference of bench/run_bench.sh. Sends a file
// over one TCP connection between two processes and writes what arrives to
// stdout, the way `roam run --on NODE -- cat FILE` brings a file home: the
// sender reads the file and writes it to the socket, the receiver reads the
// socket and writes to its stdout, both with plain read()/write() of 128 KiB
// (cat's buffer size; no sendfile or splice, which roam does not use either).
// Uses only the C++ standard library and POSIX.
//
// Usage:
//   tcp_pipe_ref pipe FILE             one connection over 127.0.0.1 between
//                                      this process (receiver, -> stdout)
//                                      and a forked child (sender)
//   tcp_pipe_ref recv ADDR PORT        accept one connection on ADDR:PORT,
//                                      copy it to stdout
//   tcp_pipe_ref send ADDR PORT FILE   connect to ADDR:PORT (retrying for up
//                                      to 10 s) and send FILE
// Options (any mode): --buf BYTES (default 131072).
// On stderr, at the end (pipe and recv): "bytes=N ns=N mib_s=X", ns from the
// connection's accept to EOF. Exit status 0 if every byte went through.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

size_t g_buf = 128 * 1024;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "tcp_pipe_ref: %s: %s\n", what.c_str(), std::strerror(errno));
  std::exit(1);
}

[[noreturn]] void Usage() {
  std::fprintf(stderr,
               "usage: tcp_pipe_ref pipe FILE | recv ADDR PORT | send ADDR PORT FILE"
               " [--buf BYTES]\n");
  std::exit(2);
}

uint64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool WriteAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Copies from `in` to `out` until EOF; returns the bytes copied or -1.
int64_t Copy(int in, int out) {
  std::vector<char> buf(g_buf);
  int64_t total = 0;
  while (true) {
    ssize_t r = ::read(in, buf.data(), buf.size());
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) return total;
    if (!WriteAll(out, buf.data(), static_cast<size_t>(r))) return -1;
    total += r;
  }
}

sockaddr_in Addr(const std::string& ip, int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (::inet_pton(AF_INET, ip.c_str(), &a.sin_addr) != 1) {
    errno = EINVAL;
    Die("bad address " + ip);
  }
  return a;
}

int Listen(const sockaddr_in& a) {
  int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s < 0) Die("socket");
  int one = 1;
  ::setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0) Die("bind");
  if (::listen(s, 1) != 0) Die("listen");
  return s;
}

// Connects to `a`, retrying for up to 10 s while nobody listens yet.
int Connect(const sockaddr_in& a) {
  uint64_t deadline = NowNs() + 10'000'000'000ULL;
  while (true) {
    int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0) Die("socket");
    if (::connect(s, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0) return s;
    int e = errno;
    ::close(s);
    if ((e != ECONNREFUSED && e != ENETUNREACH && e != EHOSTUNREACH) || NowNs() > deadline) {
      errno = e;
      Die("connect");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

int64_t FileSize(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) Die("stat " + path);
  return st.st_size;
}

// Sends `path` over `sock`, then closes it. Returns true if all was sent.
bool SendFile(int sock, const std::string& path) {
  int f = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f < 0) Die("open " + path);
  int64_t n = Copy(f, sock);
  ::close(f);
  bool ok = n >= 0 && n == FileSize(path);
  if (::close(sock) != 0) ok = false;
  return ok;
}

// Accepts one connection on `ls`, copies it to stdout, reports on stderr.
int64_t Receive(int ls) {
  int c = ::accept4(ls, nullptr, nullptr, SOCK_CLOEXEC);
  if (c < 0) Die("accept");
  ::close(ls);
  uint64_t t0 = NowNs();
  int64_t n = Copy(c, STDOUT_FILENO);
  uint64_t ns = NowNs() - t0;
  if (n < 0) Die("copy to stdout");
  ::close(c);
  std::fprintf(stderr, "bytes=%lld ns=%llu mib_s=%.1f\n", static_cast<long long>(n),
               static_cast<unsigned long long>(ns),
               ns ? static_cast<double>(n) / 1048576.0 / (static_cast<double>(ns) / 1e9) : 0.0);
  return n;
}

int ModePipe(const std::string& path) {
  int64_t size = FileSize(path);
  int ls = Listen(Addr("127.0.0.1", 0));
  sockaddr_in bound{};
  socklen_t len = sizeof bound;
  if (::getsockname(ls, reinterpret_cast<sockaddr*>(&bound), &len) != 0) Die("getsockname");
  pid_t child = ::fork();
  if (child < 0) Die("fork");
  if (child == 0) {
    ::close(ls);
    ::close(STDOUT_FILENO);
    int s = Connect(bound);
    ::_exit(SendFile(s, path) ? 0 : 1);
  }
  int64_t n = Receive(ls);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0 && n == size;
  if (!ok) std::fprintf(stderr, "tcp_pipe_ref: received %lld of %lld bytes\n",
                        static_cast<long long>(n), static_cast<long long>(size));
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  ::signal(SIGPIPE, SIG_IGN);  // a closed stdout or peer is an EPIPE error
  std::vector<std::string> args;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--buf" && i + 1 < argc) {
      g_buf = std::strtoull(argv[++i], nullptr, 10);
      if (g_buf == 0) Usage();
    } else {
      args.push_back(a);
    }
  }
  if (args.empty()) Usage();
  const std::string& mode = args[0];
  if (mode == "pipe" && args.size() == 2) return ModePipe(args[1]);
  if (mode == "recv" && args.size() == 3) {
    return Receive(Listen(Addr(args[1], std::atoi(args[2].c_str())))) >= 0 ? 0 : 1;
  }
  if (mode == "send" && args.size() == 4) {
    int s = Connect(Addr(args[1], std::atoi(args[2].c_str())));
    return SendFile(s, args[3]) ? 0 : 1;
  }
  Usage();
}
