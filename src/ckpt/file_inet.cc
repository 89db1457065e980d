// IPv4 and IPv6 sockets that hold no connection: a TCP socket listening
// (a server waiting for clients), bound or new; a UDP socket, bound,
// connected or not. What each is comes from a copy of it (pidfd_getfd):
// family, type, addresses, TCP state (TCP_INFO), the options a program sets
// (those that differ from a new socket's); a listener's backlog and accept
// queue from sock_diag (inet_diag). It is made again in the root seed:
// socket, options, bind, listen or connect.
//
// Refused, with the socket named: an established TCP connection (its
// sequence numbers and queues need TCP_REPAIR, not done yet), a listener
// with connections waiting to be accepted and a UDP socket with datagrams
// waiting to be read (both "not now": kBusy, a move is tried again later),
// and other protocols (raw, SCTP ...). Not carried: multicast memberships
// (the kernel does not say which socket joined what).
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "ckpt/files.h"

namespace roam {

namespace {

struct Closer {
  int fd;
  ~Closer() {
    if (fd >= 0) close(fd);
  }
};

struct Opt {
  int level, name;
};

// The options a program may set and that are read back as set, in the
// order they are set again (IPV6_V6ONLY and the reuse ones before bind).
std::vector<Opt> OptionsOf(int family, int protocol) {
  std::vector<Opt> out;
  if (family == AF_INET6) out.push_back({IPPROTO_IPV6, IPV6_V6ONLY});
  for (int o : {SO_REUSEADDR, SO_REUSEPORT, SO_KEEPALIVE, SO_BROADCAST, SO_PRIORITY, SO_RCVLOWAT, SO_LINGER,
                SO_RCVTIMEO, SO_SNDTIMEO, SO_OOBINLINE, SO_SNDBUF, SO_RCVBUF}) {
    out.push_back({SOL_SOCKET, o});
  }
  if (protocol == IPPROTO_TCP) {
    for (int o : {TCP_NODELAY, TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT, TCP_DEFER_ACCEPT, TCP_USER_TIMEOUT,
                  TCP_FASTOPEN, TCP_CONGESTION}) {
      out.push_back({IPPROTO_TCP, o});
    }
  }
  if (family == AF_INET) {
    for (int o : {IP_TOS, IP_TTL, IP_RECVERR, IP_PKTINFO, IP_RECVTOS, IP_MTU_DISCOVER, IP_FREEBIND, IP_MULTICAST_TTL,
                  IP_MULTICAST_LOOP, IP_BIND_ADDRESS_NO_PORT}) {
      out.push_back({IPPROTO_IP, o});
    }
  } else {
    for (int o : {IPV6_UNICAST_HOPS, IPV6_RECVPKTINFO, IPV6_TCLASS, IPV6_RECVERR, IPV6_MTU_DISCOVER,
                  IPV6_MULTICAST_HOPS, IPV6_MULTICAST_LOOP}) {
      out.push_back({IPPROTO_IPV6, o});
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
  int nl = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (nl < 0) return Status::Errno("netlink sock_diag");
  Closer closer{nl};
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg;
  memset(&msg, 0, sizeof(msg));
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  msg.req.sdiag_family = static_cast<uint8_t>(family);
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = 1U << 10;  // TCP_LISTEN
  if (send(nl, &msg, sizeof(msg), 0) != static_cast<ssize_t>(sizeof(msg))) return Status::Errno("send inet_diag");
  std::vector<char> buf(64 << 10);
  for (;;) {
    ssize_t n = recv(nl, buf.data(), buf.size(), 0);
    if (n < 0) return Status::Errno("recv inet_diag");
    for (nlmsghdr* h = reinterpret_cast<nlmsghdr*>(buf.data()); NLMSG_OK(h, static_cast<unsigned>(n)); h = NLMSG_NEXT(h, n)) {
      if (h->nlmsg_type == NLMSG_DONE) return Status::Error(StatusCode::kNotFound, "listener not found by sock_diag");
      if (h->nlmsg_type == NLMSG_ERROR) return Status::Error("inet_diag answered an error");
      auto* m = static_cast<inet_diag_msg*>(NLMSG_DATA(h));
      if (m->idiag_inode == ino) return std::make_pair(m->idiag_rqueue, m->idiag_wqueue);
    }
  }
}

}  // namespace

Status DumpInetSocket(const FdSource& src, pb::FileDesc* desc) {
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, src.pid, 0));
  if (pidfd < 0) return Status::Errno("pidfd_open " + std::to_string(src.pid));
  Closer pidfd_closer{pidfd};
  int s = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, src.fd, 0));
  if (s < 0) return Status::Errno("pidfd_getfd");
  Closer s_closer{s};
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
  if (protocol == IPPROTO_TCP) {
    tcp_info info{};
    len = sizeof(info);
    if (getsockopt(s, IPPROTO_TCP, TCP_INFO, &info, &len) != 0) return Status::Errno("TCP_INFO");
    if (listening) {
      Result<std::pair<uint32_t, uint32_t>> q = ListenQueue(family, src.st.st_ino);
      if (!q.ok()) return q.status();
      if (q->first > 0) {
        return Status::Error(StatusCode::kBusy, "a listening socket with " + std::to_string(q->first) +
                                                    " connection(s) waiting to be accepted (" + what + ")");
      }
      out->set_listening(true);
      out->set_backlog(q->second);
    } else if (info.tcpi_state != TCP_CLOSE) {
      return Status::Error(StatusCode::kCantMove, "a TCP connection (state " + std::to_string(info.tcpi_state) +
                                                      ") is not supported (" + what + ")");
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
  Closer fresh_closer{fresh};
  for (const Opt& o : OptionsOf(family, protocol)) {
    std::string now = GetOpt(s, o);
    if (now.empty() || now == GetOpt(fresh, o)) continue;
    pb::SockOpt* so = out->add_options();
    so->set_level(o.level);
    so->set_name(o.name);
    so->set_value(now);
  }
  desc->set_kind(pb::FILE_INET_SOCKET);
  return Status::Ok();
}

Result<int> OpenInetSocket(const pb::FileDesc& desc) {
  const pb::InetSocket& in = desc.inet_socket();
  int s = socket(in.family(), in.type() | SOCK_CLOEXEC, in.protocol());
  if (s < 0) return Status::Errno("socket");
  Closer closer{s};
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
  if (!in.local().empty() &&
      bind(s, reinterpret_cast<const sockaddr*>(in.local().data()), static_cast<socklen_t>(in.local().size())) != 0) {
    return Status::Errno("bind to its address again");
  }
  if (in.listening() && listen(s, static_cast<int>(in.backlog())) != 0) return Status::Errno("listen");
  if (!in.remote().empty() &&
      connect(s, reinterpret_cast<const sockaddr*>(in.remote().data()), static_cast<socklen_t>(in.remote().size())) != 0) {
    return Status::Errno("connect to its peer again");
  }
  if (fcntl(s, F_SETFL, desc.flags() & O_NONBLOCK) != 0) return Status::Errno("fcntl F_SETFL");
  closer.fd = -1;
  return s;
}

}  // namespace roam
