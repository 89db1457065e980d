// tcp_conn_bench: latency and throughput of one TCP connection, measured
// in phases on the same connection, for bench/tcp_move_bench.sh (a server
// moved between nodes with its own address: is the connection as good
// after the move as before, and how long did the client see it stall?).
// Uses only the C++ standard library and POSIX.
//
// Usage:
//   tcp_conn_bench serve PORT
//       accepts one connection on 0.0.0.0:PORT and answers it until EOF:
//       'P' + 8 bytes -> the 8 bytes back; 'S' + 8-byte length + that many
//       bytes -> 'K' once all arrived; 'R' + 8-byte length -> that many
//       bytes (the server sends: a moved server's restored connection).
//   tcp_conn_bench accept PORT
//       accepts connections on 0.0.0.0:PORT and closes each at once, for
//       ever (for `connects`).
//   tcp_conn_bench connects ADDR PORT N
//       opens N connections one after another (socket + connect, each then
//       closed with a reset so that no TIME_WAIT piles up) and prints
//       "connects=N med_us=X p99_us=X source=A" (A: the first one's local
//       address), for bench/job_connect_bench.sh.
//   tcp_conn_bench client ADDR PORT CONTROL [--rounds N] [--bytes B]
//       connects (retrying for 10 s), then runs phases named by the lines
//       appended to the file CONTROL (read as it grows, like tail -f):
//         measure NAME   N ping-pongs (median and 99th percentile round
//                        trip), then B bytes streamed to the server (MiB/s,
//                        sent to 'K'), then B bytes from it (pull MiB/s)
//         stall NAME     ping-pongs, as fast as they go, until the next line
//                        arrives; reports the longest round trip (what the
//                        client saw of a move) and how many were made
//         quit           closes the connection and exits
//       One line on stdout per phase:
//         "phase=NAME rtt_med_us=X rtt_p99_us=X mib_s=X pull_mib_s=X" or
//         "phase=NAME started", then "phase=NAME max_rtt_ms=X pings=N".
// Exit status 0 if every phase ran; 1 with a line on stderr otherwise.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const char* what) {
  fprintf(stderr, "tcp_conn_bench: %s: %s\n", what, strerror(errno));
  exit(1);
}

bool ReadAll(int fd, void* buf, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = read(fd, static_cast<char*>(buf) + got, len - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    got += static_cast<size_t>(n);
  }
  return true;
}

bool WriteAll(int fd, const void* buf, size_t len) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, static_cast<const char*>(buf) + done, len - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// A listener on 0.0.0.0:PORT.
int Listen(int port, int backlog) {
  int l = socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (bind(l, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 || listen(l, backlog) != 0) Die("listen");
  return l;
}

int Serve(int port) {
  int l = Listen(port, 1);
  int one = 1;
  int c = accept(l, nullptr, nullptr);
  if (c < 0) Die("accept");
  close(l);  // one client: the moved server holds nothing else
  setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  std::vector<char> buf(1 << 17);
  for (;;) {
    char type;
    if (!ReadAll(c, &type, 1)) return 0;  // the client closed
    if (type == 'P') {
      char v[8];
      if (!ReadAll(c, v, 8) || !WriteAll(c, v, 8)) Die("ping");
    } else if (type == 'S') {
      uint64_t len;
      if (!ReadAll(c, &len, 8)) Die("stream length");
      while (len > 0) {
        const size_t n = std::min<uint64_t>(len, buf.size());
        if (!ReadAll(c, buf.data(), n)) Die("stream");
        len -= n;
      }
      if (!WriteAll(c, "K", 1)) Die("ack");
    } else if (type == 'R') {
      uint64_t len;
      if (!ReadAll(c, &len, 8)) Die("pull length");
      while (len > 0) {
        const size_t n = std::min<uint64_t>(len, buf.size());
        if (!WriteAll(c, buf.data(), n)) Die("pull");
        len -= n;
      }
    } else {
      fprintf(stderr, "tcp_conn_bench: unknown message %d\n", type);
      return 1;
    }
  }
}

int AcceptForever(int port) {
  int l = Listen(port, 512);
  for (;;) {
    int c = accept(l, nullptr, nullptr);
    if (c >= 0) close(c);
  }
}

int Connects(const char* addr, int port, int n) {
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr, &to.sin_addr) != 1) Die("address");
  std::vector<double> us;
  us.reserve(static_cast<size_t>(n));
  char source[INET_ADDRSTRLEN] = "?";
  for (int i = 0; i < n; ++i) {
    const auto t0 = Clock::now();
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (s < 0 || connect(s, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) Die("connect");
    us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
    if (i == 0) {
      sockaddr_in me{};
      socklen_t len = sizeof(me);
      getsockname(s, reinterpret_cast<sockaddr*>(&me), &len);
      inet_ntop(AF_INET, &me.sin_addr, source, sizeof(source));
    }
    linger abort{1, 0};
    setsockopt(s, SOL_SOCKET, SO_LINGER, &abort, sizeof(abort));
    close(s);
  }
  std::sort(us.begin(), us.end());
  printf("connects=%d med_us=%.1f p99_us=%.1f source=%s\n", n, us[us.size() / 2], us[us.size() * 99 / 100], source);
  return 0;
}

double Ping(int s, uint64_t i) {
  char msg[9] = {'P'};
  memcpy(msg + 1, &i, 8);
  const auto t0 = Clock::now();
  uint64_t back = 0;
  if (!WriteAll(s, msg, 9) || !ReadAll(s, &back, 8) || back != i) Die("ping-pong");
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

void Measure(int s, const std::string& name, int rounds, uint64_t bytes) {
  std::vector<double> rtt;
  for (int i = 0; i < rounds; ++i) rtt.push_back(Ping(s, static_cast<uint64_t>(i)));
  std::sort(rtt.begin(), rtt.end());
  std::vector<char> buf(1 << 17, 'x');
  char head[9] = {'S'};
  memcpy(head + 1, &bytes, 8);
  const auto t0 = Clock::now();
  if (!WriteAll(s, head, 9)) Die("stream");
  for (uint64_t left = bytes; left > 0;) {
    const size_t n = std::min<uint64_t>(left, buf.size());
    if (!WriteAll(s, buf.data(), n)) Die("stream");
    left -= n;
  }
  char k;
  if (!ReadAll(s, &k, 1) || k != 'K') Die("stream ack");
  const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  head[0] = 'R';
  const auto t1 = Clock::now();
  if (!WriteAll(s, head, 9)) Die("pull");
  for (uint64_t left = bytes; left > 0;) {
    const size_t n = std::min<uint64_t>(left, buf.size());
    if (!ReadAll(s, buf.data(), n)) Die("pull");
    left -= n;
  }
  const double pull_secs = std::chrono::duration<double>(Clock::now() - t1).count();
  printf("phase=%s rtt_med_us=%.1f rtt_p99_us=%.1f mib_s=%.1f pull_mib_s=%.1f\n", name.c_str(), rtt[rtt.size() / 2],
         rtt[rtt.size() * 99 / 100], static_cast<double>(bytes) / 1048576.0 / secs,
         static_cast<double>(bytes) / 1048576.0 / pull_secs);
  fflush(stdout);
}

int Client(const char* addr, int port, const char* control, int rounds, uint64_t bytes) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, addr, &a.sin_addr) != 1) {
    fprintf(stderr, "tcp_conn_bench: bad address %s\n", addr);
    return 1;
  }
  int s = -1;
  for (int i = 0; i < 100; ++i) {
    s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0) break;
    close(s);
    s = -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (s < 0) Die("connect");
  int one = 1;
  setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int ctl = open(control, O_RDONLY);
  if (ctl < 0) Die("open the control file");
  std::string pending;
  // The next whole line of the control file, or "" if none yet.
  auto next_line = [&]() -> std::string {
    char buf[256];
    ssize_t n = read(ctl, buf, sizeof(buf));
    if (n > 0) pending.append(buf, static_cast<size_t>(n));
    const size_t nl = pending.find('\n');
    if (nl == std::string::npos) return "";
    std::string line = pending.substr(0, nl);
    pending.erase(0, nl + 1);
    return line;
  };
  uint64_t seq = 1u << 30;
  for (;;) {
    std::string line = next_line();
    if (line.empty()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    const std::string verb = line.substr(0, line.find(' '));
    const std::string name = line.find(' ') == std::string::npos ? "" : line.substr(line.find(' ') + 1);
    if (verb == "quit") break;
    if (verb == "measure") {
      Measure(s, name, rounds, bytes);
    } else if (verb == "stall") {
      printf("phase=%s started\n", name.c_str());
      fflush(stdout);
      double worst = 0;
      uint64_t pings = 0;
      std::string next;
      while ((next = next_line()).empty()) {
        worst = std::max(worst, Ping(s, seq++));
        ++pings;
      }
      printf("phase=%s max_rtt_ms=%.1f pings=%llu\n", name.c_str(), worst / 1000.0,
             static_cast<unsigned long long>(pings));
      fflush(stdout);
      pending = next + "\n" + pending;  // the line that ended it is the next phase
    } else {
      fprintf(stderr, "tcp_conn_bench: unknown phase '%s'\n", line.c_str());
      return 1;
    }
  }
  close(s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "serve") == 0) return Serve(atoi(argv[2]));
  if (argc >= 3 && strcmp(argv[1], "accept") == 0) return AcceptForever(atoi(argv[2]));
  if (argc >= 5 && strcmp(argv[1], "connects") == 0) return Connects(argv[2], atoi(argv[3]), std::max(1, atoi(argv[4])));
  if (argc >= 5 && strcmp(argv[1], "client") == 0) {
    int rounds = 2000;
    uint64_t bytes = 256ull << 20;
    for (int i = 5; i + 1 < argc; i += 2) {
      if (strcmp(argv[i], "--rounds") == 0) rounds = std::max(1, atoi(argv[i + 1]));
      if (strcmp(argv[i], "--bytes") == 0) bytes = strtoull(argv[i + 1], nullptr, 10);
    }
    return Client(argv[2], atoi(argv[3]), argv[4], rounds, bytes);
  }
  fprintf(stderr,
          "usage: tcp_conn_bench serve PORT | accept PORT | connects ADDR PORT N | client ADDR PORT CONTROL "
          "[--rounds N] [--bytes B]\n");
  return 2;
}
