// IPv4 and IPv6 sockets that hold no connection: a TCP socket listening
// (a server waiting for clients), bound or new; a UDP socket, bound,
// connected or not. What each is comes from a copy of it (pidfd_getfd):
// family, type, addresses, TCP state (TCP_INFO), the options a program sets
// (those that differ from a new socket's); a listener's backlog and accept
// queue from sock_diag (inet_diag). It is made again in the root seed:
// socket, options, bind, listen or connect.
//
// An established TCP connection is read with TCP_REPAIR (root only):
// sequence numbers, both queues, the options agreed with the peer (MSS,
// window scaling, SACK, timestamps), the window; its packets are dropped
// from then until the restore (net_lock.h), and the socket stays in repair
// mode so that the kill closes it silently. Let go instead (a refused
// move, --leave-running), it leaves repair mode and is let through again
// (ReleaseConnection). Made again in repair mode (no handshake), it leaves
// it only when the whole tree is restored (FinishConnection): a restore
// that fails before closes it silently too, and the image still holds it.
// A connection being closed that the process still holds (CLOSE_WAIT: the
// peer is done; FIN_WAIT1/2, CLOSING, LAST_ACK: it shut down its side)
// is carried the same way, made established and then shut down again
// (DumpConnection says how). Queues are refilled with room made for them
// (BufferRoom).
//
// Refused, with the socket named: a TCP connection being opened (SYN
// sent), a listener with connections waiting to be accepted and a UDP
// socket with datagrams waiting to be read (all "not now": kBusy; a move
// first lets the live tree take them, with new ones held off:
// SocketBacklogOf below, node/backlog_wait.h), and other protocols (raw,
// SCTP ...). Not carried: multicast memberships (the kernel does not say
// which socket joined what). A connection that ended (reset, closed both
// ways) while the process holds it comes back as a new socket shut down
// both ways: reads give 0 (a reset's ECONNRESET not first).

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <optional>
#include <set>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/net_lock.h"
#include "ckpt/sock_diag.h"
#include "common/proc_stat.h"
#include "common/unique_fd.h"

namespace roam {

namespace {

struct Opt {
  int level, name;
};

// The options a program may set and that are read back as set, in the
// order they are set again (IPV6_V6ONLY and the reuse ones before bind).
std::vector<Opt> OptionsOf(int family, int protocol) {
  std::vector<Opt> out;
  if (family == AF_INET6) out.push_back({IPPROTO_IPV6, IPV6_V6ONLY});
  // SO_BUF_LOCK after the buffer sizes: setting a size locks it (no more
  // autotuning), which only a size the program set should be.
  for (int o : {SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST, SO_PRIORITY, SO_RCVLOWAT, SO_LINGER,
                SO_RCVTIMEO, SO_SNDTIMEO, SO_OOBINLINE, SO_SNDBUF, SO_RCVBUF, SO_BUF_LOCK}) {
    out.push_back({SOL_SOCKET, o});
  }
  if (protocol == IPPROTO_TCP) {
    for (int o : {TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_DEFER_ACCEPT, TCP_USER_TIMEOUT,
                  TCP_FASTOPEN, TCP_CONGESTION}) {
      out.push_back({IPPROTO_TCP, o});
    }
  }
  if (family == AF_INET) {
    for (int o : {IP_TOS, IP_TTL, IP_RECVERR, IP_PKTINFO, IP_RECVTOS, IP_MTU_DISCOVER, IP_FREEBIND,
                  IP_BIND_ADDRESS_NO_PORT}) {
      out.push_back({IPPROTO_IP, o});
    }
    if (protocol == IPPROTO_UDP) {
      for (int o : {IP_MULTICAST_TTL, IP_MULTICAST_LOOP}) out.push_back({IPPROTO_IP, o});
    }
  } else {
    for (int o : {IPV6_UNICAST_HOPS, IPV6_RECVPKTINFO, IPV6_TCLASS, IPV6_RECVERR, IPV6_MTU_DISCOVER}) {
      out.push_back({IPPROTO_IPV6, o});
    }
    if (protocol == IPPROTO_UDP) {
      for (int o : {IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP}) out.push_back({IPPROTO_IPV6, o});
    }
  }
  return out;
}

std::string GetOpt(int fd, const Opt& o) {
  char buf[64] = {};
  socklen_t len = sizeof(buf);
  if (getsockopt(fd, o.level, o.name, buf, &len) != 0) return std::string();
  std::string v(buf, len);
  if (o.level == IPPROTO_TCP && o.name == TCP_CONGESTION) v = std::string(buf, strnlen(buf, len));
  return v;
}

bool IsBuffer(const pb::SockOpt& o) {
  return o.level() == SOL_SOCKET && (o.name() == SO_SNDBUF || o.name() == SO_RCVBUF);
}

// The listener's (accept queue, backlog) from inet_diag.
Result<std::pair<uint32_t, uint32_t>> ListenQueue(int family, uint64_t ino) {
  inet_diag_req_v2 req{};
  req.sdiag_family = static_cast<uint8_t>(family);
  req.sdiag_protocol = IPPROTO_TCP;
  req.idiag_states = 1U << 10;  // TCP_LISTEN
  std::optional<std::pair<uint32_t, uint32_t>> found;
  Status st = SockDiagDump(&req, sizeof(req), [&](const void* payload, size_t size) {
    const auto* m = static_cast<const inet_diag_msg*>(payload);
    if (size >= sizeof(*m) && m->idiag_inode == ino) found = std::make_pair(m->idiag_rqueue, m->idiag_wqueue);
    return !found;
  });
  if (!st.ok()) return st;
  if (!found) return Status::Error(StatusCode::kNotFound, "listener not found by sock_diag");
  return *found;
}

// "10.0.0.2:80", "[::1]:8000".
std::string AddressText(const std::string& sa) {
  char ip[INET6_ADDRSTRLEN] = "?";
  sockaddr_storage a{};
  memcpy(&a, sa.data(), std::min(sa.size(), sizeof(a)));
  if (a.ss_family == AF_INET) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
    return std::string(ip) + ":" + std::to_string(ntohs(in->sin_port));
  }
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&a);
  inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6->sin6_port));
}

Status SetInt(int s, int level, int name, int v, const char* what) {
  if (setsockopt(s, level, name, &v, sizeof(v)) != 0) return Status::Errno(what);
  return Status::Ok();
}

// The queue selected by TCP_REPAIR_QUEUE: its sequence number and `len`
// bytes of it, peeked.
Status PeekRepairQueue(int s, int queue, size_t len, uint32_t* seq, std::string* data) {
  Status st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, queue, "TCP_REPAIR_QUEUE");
  if (!st.ok()) return st;
  int v = 0;
  socklen_t vlen = sizeof(v);
  if (getsockopt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, &v, &vlen) != 0) return Status::Errno("TCP_QUEUE_SEQ");
  *seq = static_cast<uint32_t>(v);
  data->resize(len);
  size_t got = 0;
  while (got < len) {
    ssize_t n = recv(s, data->data() + got, len - got, MSG_PEEK | MSG_DONTWAIT);
    if (n <= 0) return Status::Errno("peek a TCP queue", n < 0 ? errno : EIO);
    got += static_cast<size_t>(n);
    if (got < len) return Status::Error("a TCP queue read short");  // MSG_PEEK starts over: it comes whole
  }
  return Status::Ok();
}

// Whether the reads of TCP socket `s` are shut (the kernel's RCV_SHUTDOWN):
// the peer's FIN came, the connection ended, or the program shut them.
bool ReadsShut(int s) {
  pollfd p{s, POLLRDHUP, 0};
  return poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP) != 0;
}

// The TCP states of a connection the dump carries (kCarried), and those in
// which its own FIN is in the sequence: sent (FIN_WAIT2: acknowledged) or
// waiting to be sent or acknowledged (kFinUnacked).
constexpr uint32_t kFinSent =
    (1U << TCP_FIN_WAIT1) | (1U << TCP_FIN_WAIT2) | (1U << TCP_CLOSING) | (1U << TCP_LAST_ACK);
constexpr uint32_t kFinUnacked = kFinSent & ~(1U << TCP_FIN_WAIT2);
constexpr uint32_t kCarried = kFinSent | (1U << TCP_ESTABLISHED) | (1U << TCP_CLOSE_WAIT);

// Reads the connection of `s` (in a kCarried state) in repair mode into
// `c`, after locking it. A half-closed one is recorded as established plus
// what ended: its FIN taken out of the send sequence and its queues, to be
// queued again at the restore at the sequence number it had
// (RepairAfterConnect, FinishConnection), and reads shut (the peer's FIN
// stays counted: acknowledged as before). REQUIRES: root (CAP_NET_ADMIN).
Status DumpConnection(int s, const pb::InetSocket& in, pb::TcpConnection* c) {
  Status st = LockConnection(in);
  if (!st.ok()) return st;
  st = SetInt(s, IPPROTO_TCP, TCP_REPAIR, 1, "TCP_REPAIR (needs root)");
  if (!st.ok()) {
    (void)UnlockConnection(in);
    return st;
  }
  // Its state now that nothing more arrives: the peer's FIN may have come
  // since the caller looked.
  tcp_info now{};
  socklen_t len = sizeof(now);
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &now, &len) != 0) return Status::Errno("TCP_INFO");
  const int state = now.tcpi_state;
  if ((kCarried & (1U << state)) == 0) {
    return Status::Error(StatusCode::kBusy, "a TCP connection that ended while it was dumped");
  }
  c->set_read_shut(ReadsShut(s));
  int outq = 0, unsent = 0, inq = 0;
  if (ioctl(s, SIOCOUTQ, &outq) != 0 || ioctl(s, SIOCOUTQNSD, &unsent) != 0 || ioctl(s, SIOCINQ, &inq) != 0) {
    return Status::Errno("TCP queue sizes");
  }
  // The FIN counts in the sequence (write_seq) and so in the queue sizes
  // while not acknowledged, and in what was not sent while not sent (it is
  // last): the bytes before it are the queue.
  const bool fin = (kFinSent & (1U << state)) != 0;
  if (fin && (kFinUnacked & (1U << state)) != 0 && outq > 0) --outq;
  if (fin && unsent > 0) --unsent;
  c->set_fin_sent(fin);
  uint32_t seq = 0;
  std::string data;
  st = PeekRepairQueue(s, TCP_SEND_QUEUE, static_cast<size_t>(outq), &seq, &data);
  if (!st.ok()) return st;
  c->set_send_seq(fin ? seq - 1 : seq);
  c->set_send_queue(data);
  c->set_unsent(static_cast<uint32_t>(unsent));
  st = PeekRepairQueue(s, TCP_RECV_QUEUE, static_cast<size_t>(inq), &seq, &data);
  if (!st.ok()) return st;
  c->set_recv_seq(seq);
  c->set_recv_queue(data);
  tcp_info info{};
  len = sizeof(info);
  if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return Status::Errno("TCP_INFO");
  c->set_wscale((info.tcpi_options & TCPI_OPT_WSCALE) != 0);
  c->set_snd_wscale(info.tcpi_snd_wscale);
  c->set_rcv_wscale(info.tcpi_rcv_wscale);
  c->set_sack((info.tcpi_options & TCPI_OPT_SACK) != 0);
  c->set_timestamps((info.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0);
  int v = 0;
  len = sizeof(v);
  if (getsockopt(s, IPPROTO_TCP, TCP_MAXSEG, &v, &len) != 0) return Status::Errno("TCP_MAXSEG");
  c->set_mss(static_cast<uint32_t>(v));
  len = sizeof(v);
  if (getsockopt(s, IPPROTO_TCP, TCP_TIMESTAMP, &v, &len) != 0) return Status::Errno("TCP_TIMESTAMP");
  c->set_timestamp(static_cast<uint32_t>(v));
  tcp_repair_window w{};
  len = sizeof(w);
  if (getsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, &len) != 0) return Status::Errno("TCP_REPAIR_WINDOW");
  c->set_window(std::string(reinterpret_cast<char*>(&w), len));
  return Status::Ok();
}

// The connection made again in repair mode, before and after connect().
Status RepairBeforeConnect(int s, const pb::TcpConnection& c) {
  Status st = SetInt(s, IPPROTO_TCP, TCP_REPAIR, 1, "TCP_REPAIR (needs root)");
  if (st.ok()) st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
  if (st.ok()) {
    st = SetInt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(c.send_seq() - c.send_queue().size()), "TCP_QUEUE_SEQ");
  }
  if (st.ok()) st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE");
  if (st.ok()) {
    st = SetInt(s, IPPROTO_TCP, TCP_QUEUE_SEQ, static_cast<int>(c.recv_seq() - c.recv_queue().size()), "TCP_QUEUE_SEQ");
  }
  // The segment size the peer agreed to, before connect(): the kernel sizes
  // its segments there (from the route's MTU and this clamp) and not again
  // when TCP_REPAIR_OPTIONS sets the clamp after it. Without it a restored
  // connection could go on with the default clamp, 536 (`ss`: mss:524; a
  // sender on loopback that had 65483 kept it, and a moved client on a
  // 1500-byte MTU had it). The kernel takes no clamp above 32767 here
  // (loopback's 65495 gives 32755).
  constexpr uint32_t kMaxClamp = 32767;  // the kernel's MAX_TCP_WINDOW
  if (st.ok() && c.mss() > 0) {
    st = SetInt(s, IPPROTO_TCP, TCP_MAXSEG, static_cast<int>(std::min(c.mss(), kMaxClamp)), "TCP_MAXSEG");
  }
  return st;
}

// Never waits: a queue with no room is an error, not a restore that hangs
// (BufferRoom makes the room).
Status SendAll(int s, const char* data, size_t len, const char* what) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = send(s, data + done, len - done, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) return Status::Errno(what, n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Room for a refill of `len` bytes into the send (SO_SNDBUF) or receive
// (SO_RCVBUF) queue of `s` while it lives: the queue was full under the
// process's own size (a writer faster than its peer's window), or under a
// size the kernel had tuned up and a new socket starts below, and a refill
// counts each byte with the kernel's overhead. Raised past the sysctl
// limits (FORCE: the restorer is root), then put back as it was, its lock
// too: a size the kernel tuned goes on being tuned.
class BufferRoom {
 public:
  BufferRoom(int s, int name, size_t len) : s_(s), name_(name) {
    socklen_t l = sizeof(size_);
    if (len == 0 || getsockopt(s, SOL_SOCKET, name, &size_, &l) != 0) return;
    l = sizeof(lock_);
    if (getsockopt(s, SOL_SOCKET, SO_BUF_LOCK, &lock_, &l) != 0) return;
    const int want = static_cast<int>(std::min<size_t>(2 * len + (256 << 10), 1 << 30));
    raised_ = want > size_ && setsockopt(s, SOL_SOCKET, Force(), &want, sizeof(want)) == 0;
  }
  ~BufferRoom() {
    if (!raised_) return;
    const int half = size_ / 2;  // the kernel doubles what it is given
    (void)setsockopt(s_, SOL_SOCKET, Force(), &half, sizeof(half));
    (void)setsockopt(s_, SOL_SOCKET, SO_BUF_LOCK, &lock_, sizeof(lock_));
  }
  BufferRoom(const BufferRoom&) = delete;
  BufferRoom& operator=(const BufferRoom&) = delete;

 private:
  int Force() const { return name_ == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE; }
  int s_, name_;
  int size_ = 0, lock_ = 0;
  bool raised_ = false;
};

Status RepairAfterConnect(int s, const pb::TcpConnection& c) {
  std::vector<tcp_repair_opt> opts;
  opts.push_back({TCPOPT_MAXSEG, c.mss()});
  if (c.wscale()) opts.push_back({TCPOPT_WINDOW, c.snd_wscale() | (c.rcv_wscale() << 16)});
  if (c.sack()) opts.push_back({TCPOPT_SACK_PERMITTED, 0});
  if (c.timestamps()) opts.push_back({TCPOPT_TIMESTAMP, 0});
  if (setsockopt(s, IPPROTO_TCP, TCP_REPAIR_OPTIONS, opts.data(), static_cast<socklen_t>(opts.size() * sizeof(opts[0]))) != 0) {
    return Status::Errno("TCP_REPAIR_OPTIONS");
  }
  Status st = c.timestamps() ? SetInt(s, IPPROTO_TCP, TCP_TIMESTAMP, static_cast<int>(c.timestamp()), "TCP_TIMESTAMP")
                             : Status::Ok();
  // What arrived and was not read, then what was sent and not acknowledged
  // (what was never sent goes once repair mode is left: FinishConnection).
  if (st.ok()) st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE, "TCP_REPAIR_QUEUE");
  if (st.ok()) {
    BufferRoom room(s, SO_RCVBUF, c.recv_queue().size());
    st = SendAll(s, c.recv_queue().data(), c.recv_queue().size(), "refill the receive queue");
  }
  if (st.ok()) st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
  const size_t sent = c.send_queue().size() - std::min<size_t>(c.unsent(), c.send_queue().size());
  if (st.ok()) {
    BufferRoom room(s, SO_SNDBUF, sent);
    st = SendAll(s, c.send_queue().data(), sent, "refill the send queue");
  }
  if (st.ok() && c.window().size() == sizeof(tcp_repair_window) &&
      setsockopt(s, IPPROTO_TCP, TCP_REPAIR_WINDOW, c.window().data(), sizeof(tcp_repair_window)) != 0) {
    st = Status::Errno("TCP_REPAIR_WINDOW");
  }
  // Its FIN, sent before (unless bytes never sent go first: FinishConnection),
  // queued now as sent, at the sequence number it had: the peer's
  // acknowledgements count it (one of a FIN not sent yet would be dropped,
  // and with it every segment of the peer), and the retransmission timer
  // sends it again for a peer that lacks it (a peer that had it
  // acknowledges the copy).
  if (st.ok() && c.fin_sent() && c.unsent() == 0) {
    st = SetInt(s, IPPROTO_TCP, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE, "TCP_REPAIR_QUEUE");
    if (st.ok() && shutdown(s, SHUT_WR) != 0) st = Status::Errno("shut down its writing again");
  }
  return st;
}

// Leaving repair mode also clears SO_REUSEADDR: set again as the process
// had it.
Status LeaveRepair(int s, const pb::InetSocket& in) {
  Status st = SetInt(s, IPPROTO_TCP, TCP_REPAIR, 0, "leave TCP_REPAIR");
  for (const pb::SockOpt& o : in.options()) {
    if (st.ok() && o.level() == SOL_SOCKET && o.name() == SO_REUSEADDR &&
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, o.value().data(), static_cast<socklen_t>(o.value().size())) != 0) {
      st = Status::Errno("SO_REUSEADDR");
    }
  }
  return st;
}

}  // namespace

Status DumpInetSocket(FileTableBuilder& b, const FdSource& src, pb::FileDesc* desc) {
  Result<UniqueFd> copy = CopyFd(src.pid, src.fd);
  if (!copy.ok()) return copy.status();
  const int s = copy->get();
  int family = 0, type = 0, protocol = 0, listening = 0;
  socklen_t len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_DOMAIN, &family, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_PROTOCOL, &protocol, &len);
  len = sizeof(int);
  getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len);
  const std::string what = src.link;
  if ((family != AF_INET && family != AF_INET6) ||
      !((type == SOCK_STREAM && protocol == IPPROTO_TCP) || (type == SOCK_DGRAM && protocol == IPPROTO_UDP))) {
    return Status::Error(StatusCode::kCantMove, "sockets of family " + std::to_string(family) + ", type " +
                                                    std::to_string(type) + ", protocol " + std::to_string(protocol) +
                                                    " are not supported (" + what + ")");
  }
  pb::InetSocket* out = desc->mutable_inet_socket();
  out->set_family(family);
  out->set_type(type);
  out->set_protocol(protocol);
  sockaddr_storage addr{};
  len = sizeof(addr);
  if (getsockname(s, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    const uint16_t port = family == AF_INET ? reinterpret_cast<sockaddr_in*>(&addr)->sin_port
                                            : reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port;
    if (port != 0) out->set_local(std::string(reinterpret_cast<char*>(&addr), len));
  }
  bool established = false;  // carried with TCP_REPAIR
  if (protocol == IPPROTO_TCP) {
    tcp_info info{};
    len = sizeof(info);
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return Status::Errno("TCP_INFO");
    if ((kCarried & (1U << info.tcpi_state)) != 0) {
      established = true;
      sockaddr_storage peer{};
      len = sizeof(peer);
      if (getpeername(s, reinterpret_cast<sockaddr*>(&peer), &len) != 0) return Status::Errno("getpeername");
      out->set_remote(std::string(reinterpret_cast<char*>(&peer), len));
    } else if (listening) {
      Result<std::pair<uint32_t, uint32_t>> q = ListenQueue(family, src.st.st_ino);
      if (!q.ok()) return q.status();
      if (q->first > 0) {
        return Status::Error(StatusCode::kBusy, "a listening socket with " + std::to_string(q->first) +
                                                    " connection(s) waiting to be accepted (" + what + ")");
      }
      out->set_listening(true);
      out->set_backlog(q->second);
    } else if (info.tcpi_state == TCP_SYN_SENT) {
      // Not now: its handshake ends in a moment (a move lets it, SocketBacklogOf).
      return Status::Error(StatusCode::kBusy, "a TCP connection being opened (" + what + ")");
    } else if (info.tcpi_state != TCP_CLOSE) {
      return Status::Error(StatusCode::kCantMove, "a TCP socket in state " + std::to_string(info.tcpi_state) +
                                                      " is not supported (" + what + ")");
    } else {
      // Closed: new or bound, a connection that ended (the kernel shut it
      // down both ways), or a connect() that failed (the kernel made it new
      // again, but for its path MTU and segment size). The old port of
      // either may be its listener's, or no longer its own: not bound again.
      if (ReadsShut(s)) {
        out->set_ended(true);
        out->clear_local();
      } else if (info.tcpi_pmtu != 0 || info.tcpi_advmss != 0) {
        out->clear_local();
      }
    }
  } else {
    sockaddr_storage peer{};
    len = sizeof(peer);
    if (getpeername(s, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      out->set_remote(std::string(reinterpret_cast<char*>(&peer), len));
    }
    char probe;
    if (recv(s, &probe, 1, MSG_PEEK | MSG_DONTWAIT) >= 0) {
      return Status::Error(StatusCode::kBusy, "a UDP socket with datagrams waiting to be read (" + what + ")");
    }
  }
  // The options that differ from a new socket's.
  int fresh = socket(family, type | SOCK_CLOEXEC, protocol);
  if (fresh < 0) return Status::Errno("socket");
  UniqueFd fresh_closer(fresh);
  bool buffers = false;  // a size is recorded: so is its lock, even none
  for (const Opt& o : OptionsOf(family, protocol)) {
    std::string now = GetOpt(s, o);
    const bool lock = o.level == SOL_SOCKET && o.name == SO_BUF_LOCK;
    if (now.empty() || (now == GetOpt(fresh, o) && !(lock && buffers))) continue;
    if (o.level == SOL_SOCKET && (o.name == SO_SNDBUF || o.name == SO_RCVBUF)) buffers = true;
    pb::SockOpt* so = out->add_options();
    so->set_level(o.level);
    so->set_name(o.name);
    so->set_value(now);
  }
  if (established) {
    Status st = DumpConnection(s, *out, out->mutable_connection());
    // Held from here (repair mode, locked), whatever happens next: let go
    // with the tree unless it is killed.
    b.repaired.push_back({src.pid, src.fd, *out});
    if (!st.ok()) return st;
  }
  desc->set_kind(pb::FILE_INET_SOCKET);
  return Status::Ok();
}

void ReleaseConnection(const RepairedSocket& r) {
  Result<UniqueFd> s = CopyFd(r.pid, r.fd);
  if (s.ok()) (void)LeaveRepair(s->get(), r.socket);
  (void)UnlockConnection(r.socket);
}

Status FinishConnection(pid_t pid, int fd, const pb::InetSocket& in) {
  Result<UniqueFd> copy = CopyFd(pid, fd);
  if (!copy.ok()) return copy.status();
  const int s = copy->get();
  const pb::TcpConnection& c = in.connection();
  Status st = LeaveRepair(s, in);
  const size_t unsent = std::min<size_t>(c.unsent(), c.send_queue().size());
  if (st.ok() && unsent > 0) {
    BufferRoom room(s, SO_SNDBUF, c.send_queue().size());
    st = SendAll(s, c.send_queue().data() + c.send_queue().size() - unsent, unsent, "send what was never sent");
  }
  // Half closed: reads end after the queue, as the peer's FIN (already
  // acknowledged) made them; our FIN, if bytes never sent go before it,
  // after them (RepairAfterConnect queued it otherwise). The state reads
  // ESTABLISHED for CLOSE_WAIT, FIN_WAIT1 or 2 for LAST_ACK and CLOSING:
  // only TCP_INFO and ss tell.
  if (st.ok() && c.read_shut() && shutdown(s, SHUT_RD) != 0) st = Status::Errno("shutdown its reading again");
  if (st.ok() && c.fin_sent() && unsent > 0 && shutdown(s, SHUT_WR) != 0) {
    st = Status::Errno("shut down its writing again");
  }
  Status unlocked = UnlockConnection(in);
  return st.ok() ? unlocked : st;
}

namespace {

// Bind, listen or connect, as the image says; a connection in repair mode
// around its connect(), its queues refilled.
Status PlaceInetSocket(int s, const pb::InetSocket& in) {
  // Repair mode after the options: it lets the bind share the port of a
  // listener made already (the one that accepted it), which SO_REUSEADDR
  // set after it would undo.
  if (in.has_connection()) {
    Status st = RepairBeforeConnect(s, in.connection());
    if (!st.ok()) return st;
  }
  if (!in.local().empty() &&
      bind(s, reinterpret_cast<const sockaddr*>(in.local().data()), static_cast<socklen_t>(in.local().size())) != 0) {
    if (errno == EADDRNOTAVAIL) {
      return Status::Error(StatusCode::kCantMove, "its address " + AddressText(in.local()) + " is not this node's" +
                                                      (in.has_connection() ? " (a TCP connection keeps its address)" : ""));
    }
    return Status::Errno("bind to " + AddressText(in.local()) + " again");
  }
  if (in.listening() && listen(s, static_cast<int>(in.backlog())) != 0) return Status::Errno("listen");
  if (in.ended()) (void)shutdown(s, SHUT_RDWR);  // ENOTCONN, and done: reads end, writes fail
  if (!in.remote().empty() &&
      connect(s, reinterpret_cast<const sockaddr*>(in.remote().data()), static_cast<socklen_t>(in.remote().size())) != 0) {
    return Status::Errno("connect to its peer again");
  }
  if (in.has_connection()) return RepairAfterConnect(s, in.connection());
  return Status::Ok();
}

}  // namespace

Result<int> OpenInetSocket(const pb::FileDesc& desc) {
  const pb::InetSocket& in = desc.inet_socket();
  int s = socket(in.family(), in.type() | SOCK_CLOEXEC, in.protocol());
  if (s < 0) return Status::Errno("socket");
  UniqueFd closer(s);
  for (const pb::SockOpt& o : in.options()) {
    if (IsBuffer(o) && o.value().size() == sizeof(int)) {
      // The kernel doubles what it is given; FORCE goes above the sysctl
      // maximum, as the process may have (the restorer is root).
      int v;
      memcpy(&v, o.value().data(), sizeof(v));
      v /= 2;
      const int force = o.name() == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
      if (setsockopt(s, SOL_SOCKET, force, &v, sizeof(v)) == 0 || setsockopt(s, SOL_SOCKET, o.name(), &v, sizeof(v)) == 0) {
        continue;
      }
      return Status::Errno("socket buffer size");
    }
    if (setsockopt(s, o.level(), o.name(), o.value().data(), static_cast<socklen_t>(o.value().size())) != 0) {
      return Status::Errno("setsockopt level " + std::to_string(o.level()) + " option " + std::to_string(o.name()));
    }
  }
  const int one = 1;
  const bool defer = in.has_connection() && setsockopt(s, IPPROTO_TCP, TCP_REPAIR, &one, sizeof(one)) != 0 &&
                     errno == EPERM;
  // A deputy rebuilding its process as an ordinary user (restore.h, "in
  // place") may not repair: the socket stays new, and its restorer, root,
  // places it (PlaceConnection).
  if (!defer) {
    Status st = PlaceInetSocket(s, in);
    if (!st.ok()) return st;
  }
  if (fcntl(s, F_SETFL, desc.flags() & O_NONBLOCK) != 0) return Status::Errno("fcntl F_SETFL");
  return closer.release();
}

namespace {

// The local address and port of an inet_diag answer, with an IPv4 address
// mapped into IPv6 taken as IPv4 (a dual-stack listener's handshakes).
struct LocalEnd {
  uint16_t port = 0;
  uint32_t v4 = 0;          // network order; 0 with v6
  std::array<uint32_t, 4> v6{};
  bool any = false;         // 0.0.0.0 or ::
};

LocalEnd LocalEndOf(const inet_diag_msg& m) {
  LocalEnd e;
  e.port = m.id.idiag_sport;
  const uint32_t* a = m.id.idiag_src;
  if (m.idiag_family == AF_INET) {
    e.v4 = a[0];
  } else if (a[0] == 0 && a[1] == 0 && a[2] == htonl(0xffff)) {
    e.v4 = a[3];
  } else {
    e.v6 = {a[0], a[1], a[2], a[3]};
  }
  e.any = e.v4 == 0 && e.v6 == std::array<uint32_t, 4>{};
  return e;
}

bool Serves(const LocalEnd& listener, const LocalEnd& conn) {
  return listener.port == conn.port && (listener.any || (listener.v4 == conn.v4 && listener.v6 == conn.v6));
}

}  // namespace

std::string SocketBacklog::Text() const {
  std::vector<std::string> parts;
  if (to_accept != 0) parts.push_back(std::to_string(to_accept) + " connection(s) to accept");
  if (handshakes != 0) parts.push_back(std::to_string(handshakes) + " handshake(s) under way");
  if (udp_sockets != 0) parts.push_back(std::to_string(udp_sockets) + " UDP socket(s) with datagrams waiting");
  if (opening != 0) parts.push_back(std::to_string(opening) + " connection(s) being opened");
  if (unix_to_accept != 0)
    parts.push_back(std::to_string(unix_to_accept) + " UNIX connection(s) waiting to be accepted");
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out.empty() ? "nothing waiting" : out;
}

bool BacklogDrain::MayFreeze(const Result<SocketBacklog>& look, std::chrono::steady_clock::time_point now) {
  if (!look.ok() || look->empty()) return true;
  if (look->amount() < amount_) since_ = now;  // it takes them
  amount_ = look->amount();
  return now - since_ > kPatience || now - start_ > kLimit;
}

Result<SocketBacklog> SocketBacklogOf(pid_t root) {
  std::set<uint64_t> inodes;
  for (pid_t pid : ReadProcessTree(root)) {
    const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) continue;  // gone meanwhile
    while (dirent* e = readdir(d)) {
      char link[64];
      ssize_t n = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
      if (n <= 8 || strncmp(link, "socket:[", 8) != 0) continue;
      link[n] = 0;
      inodes.insert(strtoull(link + 8, nullptr, 10));
    }
    closedir(d);
  }
  SocketBacklog out;
  if (inodes.empty()) return out;
  std::vector<LocalEnd> listeners;
  std::vector<LocalEnd> handshakes;
  for (int family : {AF_INET, AF_INET6}) {
    inet_diag_req_v2 req{};
    req.sdiag_family = static_cast<uint8_t>(family);
    req.sdiag_protocol = IPPROTO_TCP;
    // SYN_RECV brings the request socks too (the kernel's TCP_NEW_SYN_RECV).
    req.idiag_states = (1U << TCP_LISTEN) | (1U << TCP_SYN_RECV) | (1U << TCP_SYN_SENT);
    Status st = SockDiagDump(&req, sizeof(req), [&](const void* payload, size_t size) {
      const auto* m = static_cast<const inet_diag_msg*>(payload);
      if (size < sizeof(*m)) return true;
      if (m->idiag_state == TCP_LISTEN && inodes.count(m->idiag_inode) != 0) {
        out.to_accept += m->idiag_rqueue;
        listeners.push_back(LocalEndOf(*m));
        out.tcp_ports.insert(ntohs(m->id.idiag_sport));
      } else if (m->idiag_state == TCP_SYN_SENT) {
        if (inodes.count(m->idiag_inode) != 0) ++out.opening;
      } else if (m->idiag_state != TCP_LISTEN && m->idiag_inode == 0) {
        handshakes.push_back(LocalEndOf(*m));
      }
      return true;
    });
    if (!st.ok()) return st;
    req.sdiag_protocol = IPPROTO_UDP;
    req.idiag_states = ~0U;
    st = SockDiagDump(&req, sizeof(req), [&](const void* payload, size_t size) {
      const auto* m = static_cast<const inet_diag_msg*>(payload);
      if (size < sizeof(*m) || inodes.count(m->idiag_inode) == 0) return true;
      if (m->id.idiag_sport != 0) out.udp_ports.insert(ntohs(m->id.idiag_sport));
      if (m->idiag_rqueue == 0) return true;
      ++out.udp_sockets;
      out.udp_bytes += m->idiag_rqueue;
      return true;
    });
    if (!st.ok()) return st;
  }
  for (const LocalEnd& h : handshakes) {
    for (const LocalEnd& l : listeners) {
      if (!Serves(l, h)) continue;
      ++out.handshakes;
      break;
    }
  }
  Result<std::map<uint64_t, UnixDiag>> unix_socks = ReadUnixDiag();
  if (!unix_socks.ok()) return unix_socks.status();
  // What the dump cannot carry (WaitingCarried): connections to the tree's
  // listeners from outside or whose client wrote already, and the tree's
  // own waiting for a listener outside.
  for (const auto& [ino, l] : *unix_socks) {
    if (!l.listening) continue;
    const bool ours = inodes.count(ino) != 0;
    for (uint64_t client : l.pending) {
      const bool client_ours = client != 0 && inodes.count(client) != 0;
      if (ours ? !WaitingCarried(*unix_socks, client, client_ours) : client_ours) ++out.unix_to_accept;
    }
  }
  return out;
}

Status PlaceConnection(pid_t pid, int fd, const pb::InetSocket& in) {
  Result<UniqueFd> copy = CopyFd(pid, fd);
  if (!copy.ok()) return copy.status();
  tcp_info info{};
  socklen_t len = sizeof(info);
  if (getsockopt(copy->get(), IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return Status::Errno("TCP_INFO");
  if (info.tcpi_state != TCP_CLOSE) return Status::Ok();  // placed by its opener
  return PlaceInetSocket(copy->get(), in);
}

}  // namespace roam
