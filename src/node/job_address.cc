#include "node/job_address.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <spdlog/spdlog.h>

#include <cstdlib>

#include "ckpt/files.h"
#include "ckpt/net_lock.h"
#include "node/iface_address.h"

namespace roam {

Result<AddressPool> ParseAddressPool(const std::string& cidr) {
  AddressPool pool;
  if (cidr.empty()) return pool;
  if (const size_t dash = cidr.find('-'); dash != std::string::npos) {  // "first-last"
    Result<in_addr> first = ParseIpv4(cidr.substr(0, dash));
    Result<in_addr> last = ParseIpv4(cidr.substr(dash + 1));
    if (!first.ok() || !last.ok() || ntohl(last->s_addr) < ntohl(first->s_addr)) {
      return Status::Error(StatusCode::kInvalid, "'" + cidr + "': expected a CIDR or FIRST-LAST, FIRST <= LAST");
    }
    pool.first = ntohl(first->s_addr);
    pool.last = ntohl(last->s_addr);
    return pool;
  }
  const size_t slash = cidr.find('/');
  const std::string addr = cidr.substr(0, slash);
  int prefix = 32;
  if (slash != std::string::npos) {
    char* end = nullptr;
    const std::string p = cidr.substr(slash + 1);
    long v = strtol(p.c_str(), &end, 10);
    if (p.empty() || *end != '\0' || v < 8 || v > 32) {
      return Status::Error(StatusCode::kInvalid, "'" + cidr + "': the prefix length must be 8 to 32");
    }
    prefix = static_cast<int>(v);
  }
  Result<in_addr> a = ParseIpv4(addr);
  if (!a.ok()) return a.status();
  const uint32_t mask = prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix);
  const uint32_t base = ntohl(a->s_addr) & mask;
  pool.first = base;
  pool.last = base | ~mask;
  if (prefix <= 30) {  // not the network's nor the broadcast address
    pool.first += 1;
    pool.last -= 1;
  }
  return pool;
}

bool InPool(const AddressPool& pool, in_addr a) {
  const uint32_t h = ntohl(a.s_addr);
  return !pool.empty() && h >= pool.first && h <= pool.last;
}

std::vector<in_addr> PoolCandidates(const AddressPool& pool, const std::set<uint32_t>& taken, uint64_t seed) {
  std::vector<in_addr> out;
  if (pool.empty()) return out;
  const uint64_t size = static_cast<uint64_t>(pool.last) - pool.first + 1;
  for (uint64_t i = 0; i < size && out.size() < 4096; ++i) {
    const uint32_t h = pool.first + static_cast<uint32_t>((seed + i) % size);
    in_addr a{htonl(h)};
    if (!taken.count(a.s_addr)) out.push_back(a);
  }
  return out;
}

std::vector<std::string> RemoveStaleJobAddresses(const AddressPool& pool) {
  std::vector<std::string> out;
  if (pool.empty()) return out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  std::vector<in_addr> stale;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    if (reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr != 0xffffffffu) continue;
    const in_addr a = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr;
    if (InPool(pool, a)) stale.push_back(a);
  }
  freeifaddrs(list);
  for (in_addr a : stale) {
    if (RemoveAddress(a).ok()) out.push_back(Ipv4Text(a));
  }
  return out;
}

JobAddresses::~JobAddresses() {
  for (const auto& [gpid, a] : held_) (void)RemoveAddress(a);
}

Status JobAddresses::Hold(const std::string& gpid, const std::string& address, pid_t beside) {
  Result<in_addr> a = ParseIpv4(address);
  if (!a.ok()) return a.status();
  Status st = AddAddress(*a);
  if (!st.ok()) return st.Prefixed("its address " + address + ": ");
  held_[gpid] = *a;
  spdlog::info("{}: holds address {} here", gpid, address);
  if (cgroups_.count(gpid)) return Status::Ok();  // kept while it left (Release)
  Result<Subnet> subnet = SubnetOf(*a);
  Result<JobCgroup> cg =
      subnet.ok() ? JobCgroup::Make(node_, gpid, *a, subnet->net, subnet->mask, beside) : subnet.status();
  if (cg.ok()) {
    cgroups_[gpid] = std::move(*cg);
  } else if (!warned_) {
    warned_ = true;
    spdlog::warn("{}: its connections leave from this node's address unless it binds them to {}: {}", gpid, address,
                 cg.status().message());
  }
  return Status::Ok();
}

void JobAddresses::Release(const std::string& gpid, bool keep_cgroup) {
  if (auto c = cgroups_.find(gpid); c != cgroups_.end() && !keep_cgroup) {
    if (!c->second.Close()) lingering_.push_back(c->second.dir());
    cgroups_.erase(c);
  }
  auto it = held_.find(gpid);
  if (it == held_.end()) return;
  if (Status st = RemoveAddress(it->second); !st.ok()) {
    spdlog::warn("{}: could not remove its address {}: {}", gpid, Ipv4Text(it->second), st.message());
  } else {
    spdlog::info("{}: address {} leaves this node", gpid, Ipv4Text(it->second));
  }
  held_.erase(it);
}

std::set<uint32_t> JobAddresses::held_addresses() const {
  std::set<uint32_t> out;
  for (const auto& [gpid, a] : held_) out.insert(a.s_addr);
  return out;
}

std::string JobAddresses::cgroup_dir(const std::string& gpid) const {
  auto c = cgroups_.find(gpid);
  return c == cgroups_.end() ? std::string() : c->second.dir();
}

int JobAddresses::cgroup_fd(const std::string& gpid) const {
  auto c = cgroups_.find(gpid);
  return c == cgroups_.end() ? -1 : c->second.fd();
}

void JobAddresses::Sweep() {
  std::vector<std::string> left;
  for (const std::string& dir : lingering_) {
    // Taken again meanwhile (the job came back): not ours to remove.
    bool held = false;
    for (const auto& [gpid, cg] : cgroups_) held = held || cg.dir() == dir;
    if (!held && !RemoveEmptyCgroup(dir)) left.push_back(dir);
  }
  lingering_ = std::move(left);
}

void LeavingAddress::Freezing(pid_t root) {
  if (address_.empty()) {
    Result<SocketBacklog> ports = SocketBacklogOf(root);
    if (!ports.ok() || (ports->tcp_ports.empty() && ports->udp_ports.empty())) return;
    if (Status st = HoldPorts(ports->tcp_ports, ports->udp_ports); !st.ok()) {
      spdlog::warn("{}: its clients may refuse the move (busy): {}", gpid_, st.message());
      return;
    }
    held_tcp_ = ports->tcp_ports;
    held_udp_ = ports->udp_ports;
    return;
  }
  if (book_ == nullptr || !book_->holds(gpid_)) return;
  if (Status st = HoldNewConnections(address_); !st.ok()) {
    spdlog::warn("{}: new connections may be refused while it moves: {}", gpid_, st.message());
    return;
  }
  holding_new_ = true;
}

void LeavingAddress::Leave() {
  if (address_.empty() || book_ == nullptr || !book_->holds(gpid_)) return;
  book_->Release(gpid_, /*keep_cgroup=*/true);
  left_ = true;
}

void LeavingAddress::Back() {
  if (left_) {
    left_ = false;
    if (Status st = book_->Hold(gpid_, address_); !st.ok()) {
      spdlog::error("{}: runs on here without its address: {}", gpid_, st.message());
    }
  }
  Done();  // a SYN now waits in the listener's queue for the process, which resumes
}

void LeavingAddress::Done() {
  if (!held_tcp_.empty() || !held_udp_.empty()) {
    (void)LetPortsIn(held_tcp_, held_udp_);
    held_tcp_.clear();
    held_udp_.clear();
  }
  if (!holding_new_) return;
  holding_new_ = false;
  (void)LetNewConnectionsIn(address_);
}

Status ArrivingAddress::Arrive(JobAddresses* book, const std::string& gpid, const std::string& address,
                               const std::string& image_dir, pid_t beside) {
  if (address.empty() || book == nullptr) return Status::Ok();
  // A SYN reaching the address before its listener is restored would be
  // answered with a reset: new connections wait until Running.
  if (Status st = HoldNewConnections(address); !st.ok()) return st;
  // Connections it closed here on an earlier stay, still in TIME_WAIT,
  // would keep its listener from being bound again (EADDRINUSE).
  if (Result<int> ended = EndTimeWait(address); !ended.ok()) {
    spdlog::warn("{}: {}", gpid, ended.status().message());
  } else if (*ended > 0) {
    spdlog::info("{}: ended {} connection(s) of its address still in TIME_WAIT here", gpid, *ended);
  }
  Result<std::vector<pb::InetSocket>> locked = LockImageConnections(image_dir);
  if (!locked.ok()) {
    (void)LetNewConnectionsIn(address);
    return locked.status().Prefixed("lock its connections: ");
  }
  locked_ = std::move(*locked);
  address_ = address;
  Status st = book->Hold(gpid, address, beside);
  if (!st.ok()) {
    Undo();
    return st;
  }
  book_ = book;
  gpid_ = gpid;
  return Status::Ok();
}

void ArrivingAddress::Running() {
  if (address_.empty()) return;
  (void)LetNewConnectionsIn(address_);
  address_.clear();
}

void ArrivingAddress::Undo() {
  if (book_ != nullptr) book_->Release(gpid_);
  book_ = nullptr;
  for (const pb::InetSocket& c : locked_) (void)UnlockConnection(c);
  locked_.clear();
  Running();  // nothing here to reset them now: they go on to the source
}

}  // namespace roam
