#include "ckpt/image_show.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <map>

#include <fmt/format.h>

namespace roam {

namespace {

const char* VmaKindName(pb::VmaKind k) {
  switch (k) {
    case pb::VMA_ANON_PRIVATE: return "anon";
    case pb::VMA_ANON_SHARED: return "anon-shared";
    case pb::VMA_FILE_PRIVATE: return "file";
    case pb::VMA_FILE_SHARED: return "file-shared";
    case pb::VMA_VDSO: return "vdso";
    case pb::VMA_VVAR: return "vvar";
    case pb::VMA_VVAR_VCLOCK: return "vvar_vclock";
    case pb::VMA_SYSV_SHM: return "sysv-shm";
    default: return "unknown";
  }
}

std::string SysvKey(int key) { return fmt::format("0x{:08x}", static_cast<uint32_t>(key)); }

std::string KindName(pb::FileKind k) {
  std::string n = pb::FileKind_Name(k);
  if (n.rfind("FILE_", 0) == 0) n = n.substr(5);
  for (char& c : n) c = static_cast<char>(tolower(c));
  return n;
}

std::string Prot(uint32_t p) {
  std::string s = "---";
  if (p & PROT_READ) s[0] = 'r';
  if (p & PROT_WRITE) s[1] = 'w';
  if (p & PROT_EXEC) s[2] = 'x';
  return s;
}

const char* SockTypeName(int type) {
  switch (type) {
    case SOCK_STREAM: return "stream";
    case SOCK_DGRAM: return "dgram";
    case SOCK_SEQPACKET: return "seqpacket";
    default: return "socket";
  }
}

// A UNIX socket's name as ss prints it: a path, or "@" and an abstract
// name; bytes that are not printable as "?".
std::string UnixName(const std::string& name) {
  std::string out = !name.empty() && name[0] == '\0' ? "@" + name.substr(1) : name;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return out;
}

// "10.0.0.7:8080", "[::1]:22"; "*" when not bound.
std::string InetAddress(const std::string& sa) {
  char host[INET6_ADDRSTRLEN] = "?";
  if (sa.size() >= sizeof(sockaddr_in) && reinterpret_cast<const sockaddr*>(sa.data())->sa_family == AF_INET) {
    sockaddr_in a;
    memcpy(&a, sa.data(), sizeof(a));
    inet_ntop(AF_INET, &a.sin_addr, host, sizeof(host));
    return fmt::format("{}:{}", host, ntohs(a.sin_port));
  }
  if (sa.size() >= sizeof(sockaddr_in6) && reinterpret_cast<const sockaddr*>(sa.data())->sa_family == AF_INET6) {
    sockaddr_in6 a;
    memcpy(&a, sa.data(), sizeof(a));
    inet_ntop(AF_INET6, &a.sin6_addr, host, sizeof(host));
    return fmt::format("[{}]:{}", host, ntohs(a.sin6_port));
  }
  return "*";
}

// What a socket or pipe of `table` is, in a few words (files have their
// path): a client waiting to be accepted is named as such, a pipe says
// what waits in it.
class FileDetails {
 public:
  explicit FileDetails(const pb::FileTable& table) {
    for (const pb::FileDesc& d : table.files()) {
      for (uint64_t client : d.unix_socket().pending()) waiting_on_[client] = d.unix_socket().ino();
    }
    for (const pb::Pipe& p : table.pipes()) pipe_bytes_[p.ino()] = p.data().size();
    for (const pb::PtyPair& p : table.ptys()) pty_bytes_[p.index()] = {p.output().size(), p.input().size()};
  }
  std::string operator()(const pb::FileDesc& d) const;

 private:
  std::map<uint64_t, uint64_t> waiting_on_;  // client ino -> listener ino
  std::map<uint64_t, size_t> pipe_bytes_;
  std::map<uint32_t, std::pair<size_t, size_t>> pty_bytes_;  // pair -> (output, input) bytes waiting
};

std::string FileDetails::operator()(const pb::FileDesc& d) const {
  if (d.has_unix_socket()) {
    const pb::UnixSocket& u = d.unix_socket();
    std::string s = SockTypeName(u.type());
    if (u.listening()) {
      s += " listening";
    } else if (auto w = waiting_on_.find(u.ino()); w != waiting_on_.end()) {
      s += fmt::format(" waiting to be accepted by {}", w->second);
    } else if (!u.alone()) {
      s += u.peer_ino() != 0 ? fmt::format(" connected to {}", u.peer_ino()) : std::string(" peer closed");
    }
    if (!u.name().empty()) s += " " + UnixName(u.name());
    if (u.pending_size() > 0) s += fmt::format(", {} waiting to be accepted", u.pending_size());
    size_t queued = 0;
    for (const std::string& q : u.queued()) queued += q.size();
    if (queued > 0) s += fmt::format(", {} bytes queued", queued);
    if (u.in_flight_size() > 0) s += ", fds in flight";
    return fmt::format("unix:[{}] {}", u.ino(), s);
  }
  if (d.has_inet_socket()) {
    const pb::InetSocket& i = d.inet_socket();
    std::string s = fmt::format("{}{} {}", i.protocol() == IPPROTO_UDP ? "udp" : "tcp", i.family() == AF_INET6 ? "6" : "",
                                InetAddress(i.local()));
    if (i.listening()) s += " listening";
    if (i.ended()) s += " (its connection ended)";
    if (!i.remote().empty()) s += " -> " + InetAddress(i.remote());
    if (i.has_connection()) {
      const pb::TcpConnection& c = i.connection();
      const char* state = c.fin_sent() ? (c.read_shut() ? "shut down both ways" : "writes shut down (FIN sent)")
                                       : (c.read_shut() ? "reads ended" : "established");
      s += fmt::format(", {}, {} bytes unacknowledged, {} unread", state, c.send_queue().size(), c.recv_queue().size());
    }
    return s;
  }
  if (d.kind() == pb::FILE_PTY_MASTER || d.kind() == pb::FILE_PTY_SLAVE) {
    std::string s = fmt::format("/dev/pts/{}{}", d.pty_index(), d.kind() == pb::FILE_PTY_MASTER ? "'s master" : "");
    auto b = pty_bytes_.find(d.pty_index());
    if (d.kind() == pb::FILE_PTY_MASTER && b != pty_bytes_.end() && (b->second.first || b->second.second)) {
      s += fmt::format(", {} bytes to read, {} typed and unread", b->second.first, b->second.second);
    }
    return s;
  }
  if (d.kind() == pb::FILE_PIDFD) {
    return d.pidfd_pid() == -1 ? std::string("of a process reaped") : fmt::format("of pid {}", d.pidfd_pid());
  }
  if (d.kind() == pb::FILE_PIPE || d.kind() == pb::FILE_FIFO) {
    std::string s = d.kind() == pb::FILE_PIPE ? fmt::format("pipe:[{}]", d.pipe_ino()) : d.path();
    auto b = pipe_bytes_.find(d.pipe_ino());
    if (b != pipe_bytes_.end() && b->second > 0) s += fmt::format(", {} bytes queued", b->second);
    return s;
  }
  return d.path();
}

uint64_t PagesBytes(const pb::ProcessImage& p) {
  uint64_t n = 0;
  for (const pb::PageRun& r : p.pages()) n += r.npages() * 4096;
  return n;
}

}  // namespace

nlohmann::json ImageJson(const Image& image) {
  using nlohmann::json;
  json j;
  const pb::Inventory& inv = image.inventory;
  j["image_version"] = inv.image_version();
  j["arch"] = inv.arch();
  j["kernel"] = inv.kernel_release();
  j["root_pid"] = inv.root_pid();
  j["freeze_ns"] = inv.freeze_ns();
  uint64_t total = 0;
  for (const pb::ImageFileSum& s : inv.files()) total += s.size();
  j["image_bytes"] = total;
  j["processes"] = json::array();
  const FileDetails detail(image.files);
  for (const pb::ProcessImage& p : image.procs) {
    json pj;
    pj["pid"] = p.pid();
    pj["ppid"] = p.ppid();
    pj["pgid"] = p.pgid();
    pj["sid"] = p.sid();
    pj["comm"] = p.comm();
    pj["state"] = p.stopped() ? "stopped" : "running";
    pj["zombies"] = json::array();
    for (const pb::Zombie& z : p.zombies()) {
      pj["zombies"].push_back({{"pid", z.pid()}, {"pgid", z.pgid()}, {"wait_status", z.wait_status()}, {"comm", z.comm()}});
    }
    pj["threads"] = json::array();
    for (const pb::ThreadImage& t : p.threads()) pj["threads"].push_back({{"tid", t.tid()}, {"comm", t.comm()}});
    pj["pages_bytes"] = PagesBytes(p);
    pj["vmas"] = json::array();
    for (const pb::Vma& v : p.vmas()) {
      pj["vmas"].push_back({{"start", fmt::format("{:x}", v.start())},
                            {"end", fmt::format("{:x}", v.end())},
                            {"prot", Prot(v.prot())},
                            {"kind", VmaKindName(v.kind())},
                            {"name", v.name()}});
    }
    pj["fds"] = json::array();
    for (const pb::Fd& f : p.fds()) {
      const pb::FileDesc& d = image.files.files(static_cast<int>(f.file_id() - 1));
      pj["fds"].push_back({{"fd", f.fd()},
                           {"kind", KindName(d.kind())},
                           {"path", d.path()},
                           {"detail", detail(d)},
                           {"pos", d.pos()},
                           {"flags", fmt::format("{:o}", d.flags())},
                           {"cloexec", f.cloexec()}});
    }
    pj["sem_undo"] = json::array();
    for (const pb::SemUndo& u : p.sem_undo()) {
      pj["sem_undo"].push_back({{"semid", u.semid()}, {"num", u.num()}, {"adj", u.adj()}});
    }
    pj["sigactions"] = p.sigactions_size();
    pj["pending_signals"] = p.pending_thread_size() + p.pending_shared_size();
    pj["posix_timers"] = p.posix_timers_size();
    j["processes"].push_back(pj);
  }
  auto perm = [](const pb::SysvPerm& p) {
    return json{{"id", p.id()}, {"key", SysvKey(p.key())}, {"mode", fmt::format("{:o}", p.mode())}, {"uid", p.uid()},
                {"gid", p.gid()}};
  };
  j["sysv"] = {{"shm", json::array()}, {"sem", json::array()}, {"msg", json::array()}};
  for (const pb::SysvShm& s : image.files.sysv_shm()) {
    json o = perm(s.perm());
    o["size"] = s.size();
    o["removed"] = s.removed();
    j["sysv"]["shm"].push_back(o);
  }
  for (const pb::SysvSem& s : image.files.sysv_sem()) {
    json o = perm(s.perm());
    o["values"] = std::vector<int>(s.values().begin(), s.values().end());
    j["sysv"]["sem"].push_back(o);
  }
  for (const pb::SysvMsg& m : image.files.sysv_msg()) {
    json o = perm(m.perm());
    o["qbytes"] = m.qbytes();
    o["messages"] = m.messages_size();
    j["sysv"]["msg"].push_back(o);
  }
  return j;
}

std::string ImageTable(const Image& image) {
  const pb::Inventory& inv = image.inventory;
  uint64_t total = 0;
  for (const pb::ImageFileSum& s : inv.files()) total += s.size();
  std::string out = fmt::format("image: {} process(es), root pid {}, {} bytes, kernel {}\n", image.procs.size(),
                                inv.root_pid(), total, inv.kernel_release());
  out += fmt::format("{:>8} {:>8} {:>8} {:>8}  {:<16} {:>5} {:>12} {:>4}\n", "PID", "PPID", "PGID", "SID", "COMMAND",
                     "VMAS", "PAGES", "FDS");
  for (const pb::ProcessImage& p : image.procs) {
    out += fmt::format("{:>8} {:>8} {:>8} {:>8}  {:<16} {:>5} {:>12} {:>4}\n", p.pid(), p.ppid(), p.pgid(), p.sid(),
                       p.comm(), p.vmas_size(), PagesBytes(p), p.fds_size());
    for (const pb::ThreadImage& t : p.threads()) {
      out += fmt::format("{:>8} {:>8} {:>8} {:>8}  {:<16} thread of pid {}\n", t.tid(), p.ppid(), p.pgid(), p.sid(),
                         t.comm(), p.pid());
    }
    for (const pb::Zombie& z : p.zombies()) {
      out += fmt::format("{:>8} {:>8} {:>8} {:>8}  {:<16} zombie, wait status {}\n", z.pid(), p.pid(), z.pgid(), p.sid(),
                         z.comm(), z.wait_status());
    }
  }
  for (const pb::SysvShm& s : image.files.sysv_shm()) {
    out += fmt::format("System V segment {} key {} mode {:o} owner {}:{}, {} bytes{}\n", s.perm().id(),
                       SysvKey(s.perm().key()), s.perm().mode(), s.perm().uid(), s.perm().gid(), s.size(),
                       s.removed() ? ", removed" : "");
  }
  for (const pb::SysvSem& s : image.files.sysv_sem()) {
    out += fmt::format("System V semaphore set {} key {} mode {:o} owner {}:{}, values {}\n", s.perm().id(),
                       SysvKey(s.perm().key()), s.perm().mode(), s.perm().uid(), s.perm().gid(),
                       fmt::join(s.values(), " "));
  }
  for (const pb::SysvMsg& m : image.files.sysv_msg()) {
    out += fmt::format("System V queue {} key {} mode {:o} owner {}:{}, {} message(s), qbytes {}\n", m.perm().id(),
                       SysvKey(m.perm().key()), m.perm().mode(), m.perm().uid(), m.perm().gid(), m.messages_size(),
                       m.qbytes());
  }
  for (const pb::ProcessImage& p : image.procs) {
    out += fmt::format("\npid {} memory:\n", p.pid());
    for (const pb::Vma& v : p.vmas()) {
      out += fmt::format("  {:012x}-{:012x} {} {:<12} {}\n", v.start(), v.end(), Prot(v.prot()), VmaKindName(v.kind()),
                         v.name());
    }
    out += fmt::format("pid {} files:\n", p.pid());
    const FileDetails detail(image.files);
    for (const pb::Fd& f : p.fds()) {
      const pb::FileDesc& d = image.files.files(static_cast<int>(f.file_id() - 1));
      out += fmt::format("  {:>4} {:<11} pos {:<10} {}\n", f.fd(), KindName(d.kind()), d.pos(), detail(d));
    }
  }
  return out;
}

}  // namespace roam
