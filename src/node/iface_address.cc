#include "node/iface_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <linux/if_arp.h>
#include <linux/if_packet.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <libmnl/libmnl.h>

#include <array>
#include <cstring>
#include <memory>

#include "common/unique_fd.h"

namespace roam {

namespace {

// The interface that has `a` itself (0: none).
int InterfaceHolding(in_addr a) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return 0;
  int index = 0;
  for (ifaddrs* i = list; i != nullptr && index == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr == a.s_addr) {
      index = static_cast<int>(if_nametoindex(i->ifa_name));
    }
  }
  freeifaddrs(list);
  return index;
}

// One RTM_NEWADDR or RTM_DELADDR of `a`/32 on `ifindex`, acknowledged.
Status ChangeAddress(uint16_t type, int ifindex, in_addr a) {
  std::unique_ptr<mnl_socket, decltype(&mnl_socket_close)> nl(mnl_socket_open(NETLINK_ROUTE), mnl_socket_close);
  if (!nl || mnl_socket_bind(nl.get(), 0, MNL_SOCKET_AUTOPID) < 0) return Status::Errno("rtnetlink socket");
  std::array<char, 512> buf{};
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (type == RTM_NEWADDR ? NLM_F_CREATE | NLM_F_EXCL : 0);
  nlh->nlmsg_seq = 1;
  auto* ifa = static_cast<ifaddrmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 32;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  mnl_attr_put_u32(nlh, IFA_LOCAL, a.s_addr);
  mnl_attr_put_u32(nlh, IFA_ADDRESS, a.s_addr);
  if (mnl_socket_sendto(nl.get(), nlh, nlh->nlmsg_len) < 0) return Status::Errno("rtnetlink send");
  ssize_t n = mnl_socket_recvfrom(nl.get(), buf.data(), buf.size());
  if (n < 0) return Status::Errno("rtnetlink receive");
  if (mnl_cb_run(buf.data(), static_cast<size_t>(n), 1, mnl_socket_get_portid(nl.get()), nullptr, nullptr) < 0) {
    return Status::Errno(type == RTM_NEWADDR ? "add address " + Ipv4Text(a) : "remove address " + Ipv4Text(a));
  }
  return Status::Ok();
}

struct ArpPacket {
  arphdr h;
  uint8_t sha[ETH_ALEN];
  uint8_t spa[4];
  uint8_t tha[ETH_ALEN];
  uint8_t tpa[4];
} __attribute__((packed));

// A packet socket for ARP on `ifindex`, and the interface's MAC.
Result<UniqueFd> ArpSocket(int ifindex, uint8_t mac[ETH_ALEN]) {
  int s = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, htons(ETH_P_ARP));
  if (s < 0) return Status::Errno("ARP socket");
  UniqueFd fd(s);
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ARP);
  sll.sll_ifindex = ifindex;
  if (bind(s, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) return Status::Errno("bind ARP socket");
  ifreq ifr{};
  if (if_indextoname(static_cast<unsigned>(ifindex), ifr.ifr_name) == nullptr) return Status::Errno("if_indextoname");
  if (ioctl(s, SIOCGIFHWADDR, &ifr) != 0) return Status::Errno("SIOCGIFHWADDR");
  memcpy(mac, ifr.ifr_hwaddr.sa_data, ETH_ALEN);
  return fd;
}

// A broadcast ARP request: who has `target`, tell `sender` (0.0.0.0: a probe).
Status SendArpRequest(int s, int ifindex, const uint8_t mac[ETH_ALEN], in_addr sender, in_addr target) {
  ArpPacket p{};
  p.h.ar_hrd = htons(ARPHRD_ETHER);
  p.h.ar_pro = htons(ETH_P_IP);
  p.h.ar_hln = ETH_ALEN;
  p.h.ar_pln = 4;
  p.h.ar_op = htons(ARPOP_REQUEST);
  memcpy(p.sha, mac, ETH_ALEN);
  memcpy(p.spa, &sender.s_addr, 4);
  memcpy(p.tpa, &target.s_addr, 4);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = ETH_ALEN;
  memset(to.sll_addr, 0xff, ETH_ALEN);
  if (sendto(s, &p, sizeof(p), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != sizeof(p)) {
    return Status::Errno("send ARP");
  }
  return Status::Ok();
}

}  // namespace

Result<in_addr> ParseIpv4(const std::string& text) {
  in_addr a{};
  if (inet_pton(AF_INET, text.c_str(), &a) != 1) {
    return Status::Error(StatusCode::kInvalid, "'" + text + "' is not an IPv4 address");
  }
  return a;
}

std::string Ipv4Text(in_addr a) {
  char buf[INET_ADDRSTRLEN] = "?";
  inet_ntop(AF_INET, &a, buf, sizeof(buf));
  return buf;
}

Result<Subnet> SubnetOf(in_addr a) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return Status::Errno("getifaddrs");
  Subnet found;
  for (ifaddrs* i = list; i != nullptr && found.ifindex == 0; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_LOOPBACK) != 0) continue;
    const uint32_t mask = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
    const uint32_t net = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    if (mask == 0xffffffffu) continue;  // a /32: another job's address
    if ((net & mask) == (a.s_addr & mask)) {
      found.ifindex = static_cast<int>(if_nametoindex(i->ifa_name));
      found.net.s_addr = net & mask;
      found.mask.s_addr = mask;
    }
  }
  freeifaddrs(list);
  if (found.ifindex == 0) {
    return Status::Error(StatusCode::kMismatch, "no interface of this node is on the subnet of " + Ipv4Text(a));
  }
  return found;
}

Result<int> InterfaceFor(in_addr a) {
  Result<Subnet> s = SubnetOf(a);
  if (!s.ok()) return s.status();
  return s->ifindex;
}

bool HasAddress(in_addr a) { return InterfaceHolding(a) != 0; }

Status AddAddress(in_addr a) {
  Result<int> ifindex = InterfaceFor(a);
  if (!ifindex.ok()) return ifindex.status();
  if (!HasAddress(a)) {
    Status st = ChangeAddress(RTM_NEWADDR, *ifindex, a);
    if (!st.ok() && !HasAddress(a)) return st;
  }
  uint8_t mac[ETH_ALEN];
  Result<UniqueFd> s = ArpSocket(*ifindex, mac);
  if (!s.ok()) return s.status();
  // Twice: one lost announcement would leave a peer sending to the old node
  // until its cache entry expires.
  Status st = SendArpRequest(s->get(), *ifindex, mac, a, a);
  if (st.ok()) st = SendArpRequest(s->get(), *ifindex, mac, a, a);
  return st;
}

Status RemoveAddress(in_addr a) {
  const int ifindex = InterfaceHolding(a);
  if (ifindex == 0) return Status::Ok();
  Status st = ChangeAddress(RTM_DELADDR, ifindex, a);
  return st.ok() || !HasAddress(a) ? Status::Ok() : st;
}

void ProbeAddress(asio::io_context& io, in_addr a, std::chrono::milliseconds wait,
                  std::function<void(Result<bool>)> done) {
  Result<int> ifindex = InterfaceFor(a);
  if (!ifindex.ok()) return done(ifindex.status());
  uint8_t mac[ETH_ALEN];
  Result<UniqueFd> s = ArpSocket(*ifindex, mac);
  if (!s.ok()) return done(s.status());
  if (Status st = SendArpRequest(s->get(), *ifindex, mac, in_addr{0}, a); !st.ok()) return done(st);
  struct Probe {
    Probe(asio::io_context& io, int fd) : sock(io, fd), timer(io) {}
    asio::posix::stream_descriptor sock;
    asio::steady_timer timer;
    std::function<void(Result<bool>)> done;
    in_addr a{};
    void Finish(bool in_use) {
      if (!done) return;
      auto d = std::move(done);
      done = nullptr;
      timer.cancel();
      sock.cancel();
      d(in_use);
    }
  };
  auto p = std::make_shared<Probe>(io, s->release());
  p->done = std::move(done);
  p->a = a;
  p->timer.expires_after(wait);
  p->timer.async_wait([p](asio::error_code ec) {
    if (!ec) p->Finish(false);
  });
  auto read = std::make_shared<std::function<void()>>();
  *read = [p, read] {
    p->sock.async_wait(asio::posix::stream_descriptor::wait_read, [p, read](asio::error_code ec) {
      if (ec || !p->done) {
        *read = nullptr;  // the cycle ends with the probe
        return;
      }
      ArpPacket pkt{};
      while (recv(p->sock.native_handle(), &pkt, sizeof(pkt), 0) == static_cast<ssize_t>(sizeof(pkt))) {
        if (ntohs(pkt.h.ar_pro) == ETH_P_IP && memcmp(pkt.spa, &p->a.s_addr, 4) == 0) {
          *read = nullptr;
          return p->Finish(true);
        }
      }
      (*read)();
    });
  };
  (*read)();
}

}  // namespace roam
