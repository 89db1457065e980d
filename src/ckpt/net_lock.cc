// TCP connections held still by nftables (net_lock.h).
#include "ckpt/net_lock.h"

#include <arpa/inet.h>
#include <dlfcn.h>
#include <linux/inet_diag.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nftables/libnftables.h>

#include <cstring>
#include <mutex>

#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "ckpt/sock_diag.h"

namespace roam {

namespace {

constexpr const char kTable[] =
    "table inet roam_lock {\n"
    "  set conn4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n"
    "  set conn6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n"
    "  chain in {\n"
    "    type filter hook input priority -300;\n"
    "    ip daddr . tcp dport . ip saddr . tcp sport @conn4 drop\n"
    "    ip6 daddr . tcp dport . ip6 saddr . tcp sport @conn6 drop\n"
    "  }\n"
    "  chain out {\n"
    "    type filter hook output priority -300;\n"
    "    ip saddr . tcp sport . ip daddr . tcp dport @conn4 drop\n"
    "    ip6 saddr . tcp sport . ip6 daddr . tcp dport @conn6 drop\n"
    "  }\n"
    "}\n";

// New connections to an address (SYNs without ACK), and datagrams to it,
// dropped while a job holding that address moves (HoldNewConnections). A
// table of its own, so that a node whose roam_lock table predates it needs
// no rule added there (`roam_syn`, which held SYNs alone, is no longer
// used: a table's rules are made once, with the table).
// One from this node to the address while it is here has the address
// itself as its source, which leaves with the job: such a connection
// could never be completed, so it is refused at once (a reset) rather than
// left to time out.
constexpr const char kHoldTable[] =
    "table inet roam_hold {\n"
    "  set addr4 { type ipv4_addr; }\n"
    "  chain in {\n"
    "    type filter hook input priority -300;\n"
    "    ip daddr @addr4 ip saddr @addr4 tcp flags & (syn | ack) == syn reject with tcp reset\n"
    "    ip daddr @addr4 tcp flags & (syn | ack) == syn drop\n"
    "    ip daddr @addr4 meta l4proto udp drop\n"
    "  }\n"
    "}\n";

// New clients of a tree's own ports held off while it is dumped
// (HoldPorts): the tree's TCP listeners' SYNs and its UDP sockets'
// datagrams, whatever the address. Each hold expires by itself after
// kPortHoldSeconds, so that a `roam` killed while holding never leaves a
// port closed to new clients.
constexpr int kPortHoldSeconds = 60;
constexpr const char kPortHoldTable[] =
    "table inet roam_hold_ports {\n"
    "  set tports { type inet_service; flags timeout; }\n"
    "  set uports { type inet_service; flags timeout; }\n"
    "  chain in {\n"
    "    type filter hook input priority -300;\n"
    "    tcp dport @tports tcp flags & (syn | ack) == syn drop\n"
    "    udp dport @uports drop\n"
    "  }\n"
    "}\n";

// libnftables is loaded the first time a connection is locked, not linked:
// it brings five more libraries (libnftnl, libmnl, libxtables, libjansson,
// libgmp), and loading them cost every `roam` start ~70 page faults and
// ~0.7 ms here, `roam run` included, for what only a TCP connection's
// dump or restore needs. The header still declares the functions, so the
// pointers below have their real types.
struct NftApi {
  decltype(&nft_ctx_new) ctx_new = nullptr;
  decltype(&nft_ctx_buffer_output) buffer_output = nullptr;
  decltype(&nft_ctx_buffer_error) buffer_error = nullptr;
  decltype(&nft_run_cmd_from_buffer) run_cmd_from_buffer = nullptr;
  decltype(&nft_ctx_get_error_buffer) get_error_buffer = nullptr;
  decltype(&nft_ctx_free) ctx_free = nullptr;
  std::string error;  // why it could not be loaded, if it could not
};

template <typename F>
bool Bind(void* lib, const char* name, F* fn) {
  *fn = reinterpret_cast<F>(dlsym(lib, name));
  return *fn != nullptr;
}

const NftApi& Nftables() {
  static NftApi api;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) {
      const char* why = dlerror();
      api.error = std::string("cannot load libnftables.so.1: ") + (why != nullptr ? why : "unknown error");
      return;
    }
    if (!Bind(lib, "nft_ctx_new", &api.ctx_new) || !Bind(lib, "nft_ctx_buffer_output", &api.buffer_output) ||
        !Bind(lib, "nft_ctx_buffer_error", &api.buffer_error) ||
        !Bind(lib, "nft_run_cmd_from_buffer", &api.run_cmd_from_buffer) ||
        !Bind(lib, "nft_ctx_get_error_buffer", &api.get_error_buffer) || !Bind(lib, "nft_ctx_free", &api.ctx_free)) {
      api.error = "libnftables.so.1 lacks a function roam uses";
      api.ctx_new = nullptr;
    }
  });
  return api;
}

Status Nft(const std::string& commands) {
  const NftApi& nft = Nftables();
  if (nft.ctx_new == nullptr) return Status::Error("nftables: " + nft.error);
  nft_ctx* ctx = nft.ctx_new(NFT_CTX_DEFAULT);
  if (ctx == nullptr) return Status::Error("nftables: no context");
  nft.buffer_output(ctx);
  nft.buffer_error(ctx);
  int r = nft.run_cmd_from_buffer(ctx, commands.c_str());
  std::string err = r != 0 ? nft.get_error_buffer(ctx) : "";
  nft.ctx_free(ctx);
  if (r != 0) {
    while (!err.empty() && err.back() == '\n') err.pop_back();
    const size_t nl = err.find('\n');
    return Status::Error("nftables: " + (nl == std::string::npos ? err : err.substr(0, nl)));
  }
  return Status::Ok();
}

// "conn4 { 127.0.0.1 . 8000 . 127.0.0.1 . 51000 }": the element of `conn`
// (a v4-mapped IPv6 connection is an IPv4 one on the wire).
Result<std::string> Element(const pb::InetSocket& conn) {
  if (conn.local().empty() || conn.remote().empty()) return Status::Error("a connection without both addresses");
  char a[INET6_ADDRSTRLEN], b[INET6_ADDRSTRLEN];
  uint16_t pa, pb;
  bool v4;
  if (conn.family() == AF_INET) {
    sockaddr_in l{}, r{};
    memcpy(&l, conn.local().data(), std::min(conn.local().size(), sizeof(l)));
    memcpy(&r, conn.remote().data(), std::min(conn.remote().size(), sizeof(r)));
    inet_ntop(AF_INET, &l.sin_addr, a, sizeof(a));
    inet_ntop(AF_INET, &r.sin_addr, b, sizeof(b));
    pa = ntohs(l.sin_port);
    pb = ntohs(r.sin_port);
    v4 = true;
  } else {
    sockaddr_in6 l{}, r{};
    memcpy(&l, conn.local().data(), std::min(conn.local().size(), sizeof(l)));
    memcpy(&r, conn.remote().data(), std::min(conn.remote().size(), sizeof(r)));
    v4 = IN6_IS_ADDR_V4MAPPED(&l.sin6_addr) && IN6_IS_ADDR_V4MAPPED(&r.sin6_addr);
    if (v4) {
      inet_ntop(AF_INET, &l.sin6_addr.s6_addr[12], a, sizeof(a));
      inet_ntop(AF_INET, &r.sin6_addr.s6_addr[12], b, sizeof(b));
    } else {
      inet_ntop(AF_INET6, &l.sin6_addr, a, sizeof(a));
      inet_ntop(AF_INET6, &r.sin6_addr, b, sizeof(b));
    }
    pa = ntohs(l.sin6_port);
    pb = ntohs(r.sin6_port);
  }
  return std::string(v4 ? "conn4" : "conn6") + " { " + a + " . " + std::to_string(pa) + " . " + b + " . " +
         std::to_string(pb) + " }";
}

}  // namespace

Status LockConnection(const pb::InetSocket& conn) {
  Result<std::string> e = Element(conn);
  if (!e.ok()) return e.status();
  const std::string add = "add element inet roam_lock " + *e + "\n";
  if (Nft(add).ok()) return Status::Ok();
  // The first lock here: the table, then the element, in one transaction.
  Status st = Nft(std::string(kTable) + add);
  if (!st.ok()) return st.Prefixed("cannot hold the connection still: ");
  return Status::Ok();
}

namespace {

// Not there (never locked, or unlocked already): nothing to let through.
bool NotThere(const Status& st) {
  return st.message().find("No such file") != std::string::npos ||
         st.message().find("does not exist") != std::string::npos;
}

}  // namespace

Status UnlockConnection(const pb::InetSocket& conn) {
  Result<std::string> e = Element(conn);
  if (!e.ok()) return e.status();
  Status st = Nft("delete element inet roam_lock " + *e + "\n");
  return !st.ok() && NotThere(st) ? Status::Ok() : st;
}

Status HoldNewConnections(const std::string& ipv4) {
  in_addr a{};
  if (inet_pton(AF_INET, ipv4.c_str(), &a) != 1) return Status::Error("'" + ipv4 + "' is not an IPv4 address");
  const std::string add = "add element inet roam_hold addr4 { " + ipv4 + " }\n";
  if (Nft(add).ok()) return Status::Ok();
  Status st = Nft(std::string(kHoldTable) + add);
  return st.ok() ? st : st.Prefixed("cannot hold new connections to " + ipv4 + ": ");
}

Status LetNewConnectionsIn(const std::string& ipv4) {
  Status st = Nft("delete element inet roam_hold addr4 { " + ipv4 + " }\n");
  return !st.ok() && NotThere(st) ? Status::Ok() : st;
}

namespace {

// "add element inet roam_hold_ports tports { 80 timeout 60s, 443 timeout 60s }\n", and uports.
std::string PortElements(const char* verb, const std::set<uint16_t>& tcp, const std::set<uint16_t>& udp, bool timeout) {
  std::string cmds;
  for (auto [set, ports] : {std::pair{"tports", &tcp}, std::pair{"uports", &udp}}) {
    if (ports->empty()) continue;
    std::string list;
    for (uint16_t p : *ports) {
      list += (list.empty() ? "" : ", ") + std::to_string(p);
      if (timeout) list += " timeout " + std::to_string(kPortHoldSeconds) + "s";
    }
    cmds += std::string(verb) + " element inet roam_hold_ports " + set + " { " + list + " }\n";
  }
  return cmds;
}

}  // namespace

Status HoldPorts(const std::set<uint16_t>& tcp, const std::set<uint16_t>& udp) {
  if (tcp.empty() && udp.empty()) return Status::Ok();
  const std::string add = PortElements("add", tcp, udp, true);
  if (Nft(add).ok()) return Status::Ok();
  Status st = Nft(std::string(kPortHoldTable) + add);
  return st.ok() ? st : st.Prefixed("cannot hold new clients off: ");
}

Status LetPortsIn(const std::set<uint16_t>& tcp, const std::set<uint16_t>& udp) {
  Status last = Status::Ok();
  // One port at a time: deleting a set of elements fails whole if one of
  // them has expired already.
  for (auto [set, ports] : {std::pair{"tports", &tcp}, std::pair{"uports", &udp}}) {
    for (uint16_t p : *ports) {
      Status st = Nft(std::string("delete element inet roam_hold_ports ") + set + " { " + std::to_string(p) + " }\n");
      if (!st.ok() && !NotThere(st)) last = st;
    }
  }
  return last;
}

Result<int> EndTimeWait(const std::string& ipv4) {
  in_addr a{};
  if (inet_pton(AF_INET, ipv4.c_str(), &a) != 1) return Status::Error("'" + ipv4 + "' is not an IPv4 address");
  int ended = 0;
  // AF_INET6 too: a dual-stack listener (bound to ::) accepts connections
  // to the address as IPv6 sockets holding it mapped (::ffff:a.b.c.d).
  for (int family : {AF_INET, AF_INET6}) {
    inet_diag_req_v2 req{};
    req.sdiag_family = static_cast<uint8_t>(family);
    req.sdiag_protocol = IPPROTO_TCP;
    req.idiag_states = 1U << TCP_TIME_WAIT;
    auto ours = [&](const inet_diag_sockid& id) {
      if (family == AF_INET) return id.idiag_src[0] == a.s_addr;
      return id.idiag_src[0] == 0 && id.idiag_src[1] == 0 && id.idiag_src[2] == htonl(0xffff) &&
             id.idiag_src[3] == a.s_addr;
    };
    std::vector<inet_diag_sockid> ids;
    Status st = SockDiagDump(&req, sizeof(req), [&](const void* payload, size_t size) {
      const auto* m = static_cast<const inet_diag_msg*>(payload);
      if (size >= sizeof(*m) && m->idiag_state == TCP_TIME_WAIT && ours(m->id)) ids.push_back(m->id);
      return true;
    });
    if (!st.ok()) return st;
    for (const inet_diag_sockid& id : ids) {
      req.id = id;
      st = SockDiagRequest(SOCK_DESTROY, &req, sizeof(req));
      if (st.ok()) {
        ++ended;
      } else if (st.code() != StatusCode::kNotFound) {  // not found: it ended meanwhile
        return st.Prefixed("end a connection in TIME_WAIT on " + ipv4 + ": ");
      }
    }
  }
  return ended;
}

Result<std::vector<pb::InetSocket>> LockImageConnections(const std::string& dir) {
  pb::FileTable files;
  Status st = ReadRecordFile(dir + "/" + kFileTableFile, ImageFileKind::kFileTable, &files);
  if (!st.ok()) return st;
  std::vector<pb::InetSocket> locked;
  for (const pb::FileDesc& d : files.files()) {
    if (!d.has_inet_socket() || !d.inet_socket().has_connection()) continue;
    st = LockConnection(d.inet_socket());
    if (!st.ok()) {
      for (const pb::InetSocket& c : locked) (void)UnlockConnection(c);
      return st;
    }
    locked.push_back(d.inet_socket());
  }
  return locked;
}

}  // namespace roam
