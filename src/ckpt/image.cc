#include "ckpt/image.h"

#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/user.h>

#include <algorithm>
#include <functional>
#include <map>
#include <set>

#include "ckpt/image_file.h"
#include "ckpt/memory.h"
#include "ckpt/range_set.h"

namespace roam {

bool IsPosixSharedMemory(const std::string& path) {
  constexpr const char kPrefix[] = "/dev/shm/";
  constexpr size_t kLen = sizeof(kPrefix) - 1;
  if (path.size() <= kLen || path.compare(0, kLen, kPrefix) != 0) return false;
  const std::string name = path.substr(kLen);
  return name != "." && name != ".." && name.find('/') == std::string::npos;
}

bool CarriedWithProcess(const std::string& path) {
  if (IsPosixSharedMemory(path)) return true;
  constexpr const char kPrefix[] = "/tmp/hsperfdata_";
  constexpr size_t kLen = sizeof(kPrefix) - 1;
  if (path.compare(0, kLen, kPrefix) != 0) return false;
  const size_t slash = path.find('/', kLen);
  if (slash == std::string::npos || slash == kLen || slash + 1 == path.size()) return false;
  for (size_t i = slash + 1; i < path.size(); ++i) {
    if (path[i] < '0' || path[i] > '9') return false;
  }
  return true;
}

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kUserTop = 0x800000000000ULL;

bool SafeName(const std::string& name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!(isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_')) return false;
  }
  return name != "." && name != "..";
}

Status CheckRuns(const std::string& what, const google::protobuf::RepeatedPtrField<pb::PageRun>& runs,
                 uint64_t file_payload, const std::function<bool(uint64_t, uint64_t)>& inside) {
  uint64_t prev_end = 0;
  for (const pb::PageRun& r : runs) {
    if (r.npages() == 0 || r.npages() > (kUserTop / kPage) || r.vaddr() % kPage != 0 || r.offset() % kPage != 0) {
      return Status::Error(what + ": malformed page run");
    }
    uint64_t bytes = r.npages() * kPage;
    if (r.vaddr() < prev_end) return Status::Error(what + ": page runs overlap or are out of order");
    if (r.vaddr() + bytes < r.vaddr() || !inside(r.vaddr(), r.vaddr() + bytes)) {
      return Status::Error(what + ": page run outside its memory");
    }
    if (r.offset() < kPageHeaderSize || r.offset() - kPageHeaderSize > file_payload ||
        bytes > file_payload - (r.offset() - kPageHeaderSize)) {
      return Status::Error(what + ": page run beyond the end of its page file");
    }
    prev_end = r.vaddr() + bytes;
  }
  return Status::Ok();
}

}  // namespace

const pb::ProcessImage* Image::Find(int pid) const {
  for (const pb::ProcessImage& p : procs) {
    if (p.pid() == pid) return &p;
  }
  return nullptr;
}

Status ValidateImage(const Image& image) {
  const pb::Inventory& inv = image.inventory;
  if (inv.image_version() != kImageVersion) return Status::Error("inventory: unsupported image version");
  if (inv.arch() != "x86_64") return Status::Error("image of a foreign architecture (" + inv.arch() + ")");
  if (inv.pids_size() == 0 || static_cast<size_t>(inv.pids_size()) != image.procs.size()) {
    return Status::Error("inventory: process list does not match the process records");
  }
  std::set<int> pids;
  for (int pid : inv.pids()) {
    if (pid <= 0 || pid > (1 << 22) || !pids.insert(pid).second) return Status::Error("inventory: bad or repeated pid");
  }
  if (inv.pids(0) != inv.root_pid()) return Status::Error("inventory: the root is not the first process");

  const pb::FileTable& ft = image.files;
  std::set<uint32_t> file_ids;
  for (int i = 0; i < ft.files_size(); ++i) {
    const pb::FileDesc& d = ft.files(i);
    if (d.id() != static_cast<uint32_t>(i + 1)) return Status::Error("files: ids out of order");
    file_ids.insert(d.id());
    if (d.kind() == pb::FILE_UNKNOWN || !pb::FileKind_IsValid(d.kind())) return Status::Error("files: unknown kind");
    if (d.deleted() && d.kind() != pb::FILE_REGULAR && d.kind() != pb::FILE_FIFO && d.kind() != pb::FILE_DIRECTORY) {
      return Status::Error("files: a deleted file of a kind that cannot be made again");
    }
    if (d.deleted() && d.kind() == pb::FILE_REGULAR &&
        (!SafeName(d.content_file()) || !image.payload_sizes.count(d.content_file()))) {
      return Status::Error("files: deleted file without its contents");
    }
    if (d.carried() && (d.kind() != pb::FILE_REGULAR || d.deleted() || !CarriedWithProcess(d.path()) ||
                        !SafeName(d.content_file()) || !image.payload_sizes.count(d.content_file()))) {
      return Status::Error("files: a carried file that is not one, or without its contents");
    }
    if ((d.kind() == pb::FILE_REGULAR || d.kind() == pb::FILE_DIRECTORY || d.kind() == pb::FILE_CHARDEV ||
         d.kind() == pb::FILE_FIFO) && (d.path().empty() || d.path()[0] != '/')) {
      return Status::Error("files: file " + std::to_string(d.id()) + " without an absolute path");
    }
    if ((d.kind() == pb::FILE_INHERITED || d.kind() == pb::FILE_TERMINAL) && (d.inherit_fd() < 0 || d.inherit_fd() > 2)) {
      return Status::Error("files: inherited fd must be 0, 1 or 2");
    }
  }
  // Pseudo-terminal pairs: one record and one master description each,
  // no end without its record.
  std::map<uint32_t, int> pty_masters;  // index -> master descriptions
  for (const pb::PtyPair& pair : ft.ptys()) {
    if (!pty_masters.emplace(pair.index(), 0).second) return Status::Error("files: a pseudo-terminal pair twice");
    if (pair.mode().cc().size() > 64 || pair.output().size() > (1u << 20) || pair.input().size() > (1u << 20)) {
      return Status::Error("files: pseudo-terminal pair " + std::to_string(pair.index()) + " malformed");
    }
  }
  for (const pb::FileDesc& d : ft.files()) {
    if (d.kind() != pb::FILE_PTY_MASTER && d.kind() != pb::FILE_PTY_SLAVE) continue;
    auto pair = pty_masters.find(d.pty_index());
    if (pair == pty_masters.end()) return Status::Error("files: a pseudo-terminal end without its pair");
    if (d.kind() == pb::FILE_PTY_MASTER) ++pair->second;
  }
  for (auto [index, masters] : pty_masters) {
    if (masters != 1)
      return Status::Error("files: pseudo-terminal pair " + std::to_string(index) + " without one master");
  }
  for (const pb::FileDesc& d : ft.files()) {
    if (d.kind() == pb::FILE_UNIX_SOCKET) {
      const pb::UnixSocket& u = d.unix_socket();
      size_t passed = 0;
      for (const pb::InFlightFds& f : u.in_flight()) {
        if (f.chunk() >= static_cast<uint32_t>(u.queued_size()) || f.files_size() == 0 || f.files_size() > 253) {
          return Status::Error("files: fds in flight of file " + std::to_string(d.id()) + " out of its queue");
        }
        for (uint32_t id : f.files()) {
          if (!file_ids.count(id)) return Status::Error("files: an fd in flight names no file");
        }
        passed += static_cast<size_t>(f.files_size());
      }
      if (u.alone() && passed > 0) return Status::Error("files: fds in flight at a socket alone");
    }
    if (d.kind() == pb::FILE_INET_SOCKET) {
      const pb::InetSocket& in = d.inet_socket();
      if ((in.family() != AF_INET && in.family() != AF_INET6) || (in.type() != SOCK_STREAM && in.type() != SOCK_DGRAM) ||
          in.local().size() > sizeof(sockaddr_storage) || in.remote().size() > sizeof(sockaddr_storage) ||
          in.options_size() > 64) {
        return Status::Error("files: socket " + std::to_string(d.id()) + " malformed");
      }
    }
    if (d.kind() == pb::FILE_MEMFD &&
        std::none_of(ft.shmems().begin(), ft.shmems().end(),
                     [&](const pb::SharedMemory& m) { return m.id() == d.shmem_id() && m.memfd(); })) {
      return Status::Error("files: memfd " + std::to_string(d.id()) + " without its contents");
    }
    for (const pb::EpollTarget& t : d.epoll()) {
      if (!file_ids.count(t.file_id()) || t.tfd() < 0) return Status::Error("files: epoll target unknown");
    }
  }
  std::set<uint64_t> shmems;
  for (const pb::SharedMemory& s : ft.shmems()) {
    if (!SafeName(s.pages_file()) || !image.payload_sizes.count(s.pages_file())) {
      return Status::Error("files: shared memory without its pages");
    }
    if (s.size() > kUserTop) return Status::Error("files: shared memory object too large");
    uint64_t size = (s.size() + kPage - 1) / kPage * kPage;
    Status st = CheckRuns("shared memory " + std::to_string(s.id()), s.pages(), image.payload_sizes.at(s.pages_file()),
                          [&](uint64_t lo, uint64_t hi) { return hi <= size; });
    if (!st.ok()) return st;
    shmems.insert(s.id());
  }
  std::map<int, uint64_t> sysv_shm;  // id -> size
  for (const pb::SysvShm& s : ft.sysv_shm()) {
    if (!SafeName(s.pages_file()) || !image.payload_sizes.count(s.pages_file())) {
      return Status::Error("files: System V segment without its pages");
    }
    if (s.size() == 0 || s.size() > kUserTop) return Status::Error("files: System V segment of a bad size");
    const uint64_t size = (s.size() + kPage - 1) / kPage * kPage;
    Status st = CheckRuns("System V segment " + std::to_string(s.perm().id()), s.pages(),
                          image.payload_sizes.at(s.pages_file()), [&](uint64_t lo, uint64_t hi) { return hi <= size; });
    if (!st.ok()) return st;
    if (!sysv_shm.emplace(s.perm().id(), size).second) return Status::Error("files: System V segment twice");
  }
  std::map<int, int> sysv_sem;  // id -> nsems
  for (const pb::SysvSem& s : ft.sysv_sem()) {
    if (s.values_size() == 0 || !sysv_sem.emplace(s.perm().id(), s.values_size()).second) {
      return Status::Error("files: bad System V semaphore set");
    }
    for (int v : s.values()) {
      if (v < 0 || v > 32767) return Status::Error("files: System V semaphore value out of range");
    }
  }

  // A pidfd names a process of the image or one of its zombies, or -1.
  std::set<int> waitable(inv.pids().begin(), inv.pids().end());
  for (const pb::ProcessImage& p : image.procs) {
    for (const pb::Zombie& z : p.zombies()) waitable.insert(z.pid());
  }
  for (const pb::FileDesc& d : ft.files()) {
    if (d.kind() == pb::FILE_PIDFD && d.pidfd_pid() != -1 && !waitable.count(d.pidfd_pid())) {
      return Status::Error("files: pidfd " + std::to_string(d.id()) + " of a process not in the image");
    }
  }
  for (const pb::ProcessImage& p : image.procs) {  // `pids` holds the inventory's
    for (const pb::Zombie& z : p.zombies()) {
      if (z.pid() <= 0 || z.pid() > (1 << 22) || !pids.insert(z.pid()).second) {
        return Status::Error("process " + std::to_string(p.pid()) + ": bad zombie pid " + std::to_string(z.pid()));
      }
    }
    for (const pb::ThreadImage& t : p.threads()) {  // TIDs are PIDs: one name space
      const std::string who = "process " + std::to_string(p.pid()) + " thread " + std::to_string(t.tid());
      if (t.tid() <= 0 || t.tid() > (1 << 22) || !pids.insert(t.tid()).second) return Status::Error(who + ": bad tid");
      if (t.gpregs().size() != sizeof(user_regs_struct)) return Status::Error(who + ": bad register record");
      if (t.xsave().size() != p.xsave().size()) return Status::Error(who + ": bad XSAVE record");
      if (!t.cpu_affinity().empty() && t.cpu_affinity().size() != sizeof(cpu_set_t)) return Status::Error(who + ": bad CPU mask");
      if (t.has_creds() && (t.creds().uids_size() != 4 || t.creds().gids_size() != 4)) {
        return Status::Error(who + ": bad credentials");
      }
      for (const std::string& si : t.pending_thread()) {
        if (si.size() != sizeof(siginfo_t)) return Status::Error(who + ": bad pending signal");
      }
    }
  }
  std::set<int> earlier;
  for (size_t i = 0; i < image.procs.size(); ++i) {
    const pb::ProcessImage& p = image.procs[i];
    std::string who = "process " + std::to_string(p.pid());
    if (p.pid() != inv.pids(static_cast<int>(i))) return Status::Error(who + ": out of the inventory's order");
    // Each process is created by its parent: parents come first.
    if (i > 0 && !earlier.count(p.ppid())) return Status::Error(who + ": its parent is not in the image before it");
    earlier.insert(p.pid());
    if (p.gpregs().size() != sizeof(user_regs_struct)) return Status::Error(who + ": bad register record");
    if (p.xsave().size() < 576 || p.xsave().size() > 65536) return Status::Error(who + ": bad XSAVE record");
    uint64_t prev_end = 0;
    for (const pb::Vma& v : p.vmas()) {
      if (v.start() % kPage || v.end() % kPage || v.start() >= v.end() || v.end() > kUserTop || v.start() < prev_end) {
        return Status::Error(who + ": malformed memory map");
      }
      prev_end = v.end();
      if (!pb::VmaKind_IsValid(v.kind()) || v.kind() == pb::VMA_UNKNOWN) return Status::Error(who + ": unknown mapping kind");
      if ((v.kind() == pb::VMA_FILE_PRIVATE || v.kind() == pb::VMA_FILE_SHARED) && !file_ids.count(v.file_id())) {
        return Status::Error(who + ": mapping of an unknown file");
      }
      if (v.kind() == pb::VMA_ANON_SHARED && !shmems.count(v.shmem_id())) {
        return Status::Error(who + ": mapping of an unknown shared memory object");
      }
      if (v.kind() == pb::VMA_SYSV_SHM && (!sysv_shm.count(v.sysv_shmid()) || v.pgoff() % kPage ||
                                           v.pgoff() + (v.end() - v.start()) > sysv_shm[v.sysv_shmid()])) {
        return Status::Error(who + ": mapping of an unknown System V segment");
      }
      if (v.prot() & ~7u) return Status::Error(who + ": bad protection");
      for (const pb::PageRun& g : v.guards()) {
        if (g.vaddr() % kPage || g.vaddr() < v.start() || g.npages() > (v.end() - g.vaddr()) / kPage) {
          return Status::Error(who + ": guard pages outside their mapping");
        }
      }
    }
    RangeSet anon;  // where pages shared with the parent may be
    for (const pb::Vma& v : p.vmas()) {
      if (TakesStaged(v)) anon.Add({v.start(), v.end()});
    }
    for (const pb::PageRun& r : p.inherited()) {
      const uint64_t end = r.vaddr() + r.npages() * kPage;
      if (i == 0 || r.vaddr() % kPage != 0 || r.npages() == 0 || end <= r.vaddr() || !anon.Contains({r.vaddr(), end})) {
        return Status::Error(who + ": shared pages outside its private mappings");
      }
    }
    for (const pb::SemUndo& u : p.sem_undo()) {
      auto set = sysv_sem.find(u.semid());
      if (set == sysv_sem.end() || u.num() >= static_cast<uint32_t>(set->second) || u.adj() < -32767 || u.adj() > 32767) {
        return Status::Error(who + ": adjustment of an unknown System V semaphore");
      }
    }
    if (!SafeName(p.pages_file()) || !image.payload_sizes.count(p.pages_file())) {
      return Status::Error(who + ": page file missing");
    }
    Status st = CheckRuns(who, p.pages(), image.payload_sizes.at(p.pages_file()), [&](uint64_t lo, uint64_t hi) {
      for (const pb::Vma& v : p.vmas()) {
        if (lo >= v.start() && hi <= v.end()) return v.kind() == pb::VMA_ANON_PRIVATE || v.kind() == pb::VMA_FILE_PRIVATE;
      }
      return false;
    });
    if (!st.ok()) return st;
    std::set<int> fds;
    for (const pb::Fd& f : p.fds()) {
      if (f.fd() < 0 || f.fd() > (1 << 20) || !fds.insert(f.fd()).second) return Status::Error(who + ": bad fd table");
      if (!file_ids.count(f.file_id())) return Status::Error(who + ": fd " + std::to_string(f.fd()) + " of an unknown file");
    }
    for (const pb::FileLock& l : p.locks()) {
      const bool range = l.kind() == pb::FileLock::POSIX || l.kind() == pb::FileLock::OFD;
      if (!fds.count(l.fd()) || (!range && l.kind() != pb::FileLock::FLOCK) ||
          (range && (l.start() > INT64_MAX || l.length() > INT64_MAX - l.start()))) {
        return Status::Error(who + ": a file lock on fd " + std::to_string(l.fd()) + " it cannot hold");
      }
    }
    for (const pb::SigAction& a : p.sigactions()) {
      if (a.signo() < 1 || a.signo() > 64) return Status::Error(who + ": bad signal number");
    }
    for (const std::string& si : p.pending_thread()) {
      if (si.size() != 128) return Status::Error(who + ": bad pending signal record");
    }
    for (const std::string& si : p.pending_shared()) {
      if (si.size() != 128) return Status::Error(who + ": bad pending signal record");
    }
    if (p.mm().exe_file_id() != 0 && !file_ids.count(p.mm().exe_file_id())) return Status::Error(who + ": unknown exe file");
    if (p.ctty_file() != 0 && (!file_ids.count(p.ctty_file()) ||
                               (ft.files(static_cast<int>(p.ctty_file() - 1)).kind() != pb::FILE_INHERITED &&
                                ft.files(static_cast<int>(p.ctty_file() - 1)).kind() != pb::FILE_PTY_SLAVE))) {
      return Status::Error(who + ": its controlling terminal is not an inherited file nor a pseudo-terminal's slave");
    }
    if (p.cwd_file() != 0 &&
        (!file_ids.count(p.cwd_file()) || ft.files(static_cast<int>(p.cwd_file() - 1)).kind() != pb::FILE_DIRECTORY ||
         !ft.files(static_cast<int>(p.cwd_file() - 1)).deleted())) {
      return Status::Error(who + ": its removed working directory is not a removed directory");
    }
    if (p.mm().auxv().size() > 4096) return Status::Error(who + ": auxv too large");
    if (p.creds().uids_size() != 4 || p.creds().gids_size() != 4 || p.creds().groups_size() > 65536) {
      return Status::Error(who + ": bad credentials");
    }
    if (p.cwd().empty() || p.cwd()[0] != '/' || p.root().empty() || p.root()[0] != '/') {
      return Status::Error(who + ": bad cwd or root");
    }
  }
  // An epoll set is filled by its owner, which holds it. A target is any
  // file of the image, under the number it was added with (that number
  // may hold another file now, or nothing: file_epoll.cc).
  for (const pb::FileDesc& d : ft.files()) {
    if (d.kind() != pb::FILE_EPOLL) continue;
    const pb::ProcessImage* owner = image.Find(d.owner_pid());
    bool held = false;
    if (owner != nullptr) {
      for (const pb::Fd& f : owner->fds()) held = held || f.file_id() == d.id();
    }
    if (!held) return Status::Error("files: epoll set without its owner");
    for (const pb::EpollTarget& t : d.epoll()) {
      if (t.tfd() > (1 << 20)) return Status::Error("files: epoll target with a bad fd number");
    }
  }
  return Status::Ok();
}

namespace {

bool IsPayload(const std::string& name) {
  return name.rfind("pages-", 0) == 0 || name.rfind("shmem-", 0) == 0 || name.rfind("sysvshm-", 0) == 0 ||
         name.rfind("content-", 0) == 0;
}

}  // namespace

Status VerifyPayloads(const std::string& dir, const pb::Inventory& inventory) {
  for (const pb::ImageFileSum& sum : inventory.files()) {
    const std::string& name = sum.name();
    if (!SafeName(name) || !IsPayload(name)) continue;
    const std::string path = dir + "/" + name;
    ImageFileKind kind = name.rfind("content-", 0) == 0 ? ImageFileKind::kContent : ImageFileKind::kPages;
    Result<ImageFileHeader> h = VerifyPayloadFile(path, kind);
    if (!h.ok()) return h.status();
    if (h->payload_xxh3 != sum.xxh3()) return Status::Error(path + ": checksum differs from the inventory's");
    if (h->payload_size + kPageHeaderSize != sum.size()) {
      return Status::Error(path + ": its header's size differs from the inventory's");
    }
  }
  return Status::Ok();
}

Result<Image> LoadImage(const std::string& dir, bool verify_payloads) {
  Image image;
  image.dir = dir;
  struct stat sb;
  if (stat(dir.c_str(), &sb) != 0) return Status::Errno("image " + dir);
  std::string inv_path = dir + "/" + kInventoryFile;
  if (stat(inv_path.c_str(), &sb) != 0) return Status::Error(dir + ": no " + kInventoryFile + " (not an image, or an incomplete one)");
  Status st = ReadRecordFile(inv_path, ImageFileKind::kInventory, &image.inventory);
  if (!st.ok()) return st;
  if (image.inventory.image_version() > kImageVersion) return Status::Error(inv_path + ": image from a newer roam");
  std::map<std::string, const pb::ImageFileSum*> sums;
  for (const pb::ImageFileSum& s : image.inventory.files()) {
    if (!SafeName(s.name())) return Status::Error(inv_path + ": bad file name in the file list");
    sums[s.name()] = &s;
  }
  // Every listed file: present, of the listed size and checksum.
  for (const auto& [name, sum] : sums) {
    std::string path = dir + "/" + name;
    if (stat(path.c_str(), &sb) != 0) return Status::Errno("image file " + path);
    if (static_cast<uint64_t>(sb.st_size) != sum->size()) {
      return Status::Error(path + ": " + std::to_string(sb.st_size) + " bytes, the inventory says " +
                           std::to_string(sum->size()) + " (truncated or replaced)");
    }
    if (!IsPayload(name)) continue;
    image.payload_sizes[name] = sum->size() >= kPageHeaderSize ? sum->size() - kPageHeaderSize : 0;
  }
  if (verify_payloads) {
    st = VerifyPayloads(dir, image.inventory);
    if (!st.ok()) return st;
  }
  auto read_record = [&](const std::string& name, ImageFileKind kind, google::protobuf::MessageLite* m) -> Status {
    if (!sums.count(name)) return Status::Error(dir + ": " + name + " is not in the inventory");
    return ReadRecordFile(dir + "/" + name, kind, m);
  };
  st = read_record(kFileTableFile, ImageFileKind::kFileTable, &image.files);
  if (!st.ok()) return st;
  for (int pid : image.inventory.pids()) {
    pb::ProcessImage p;
    st = read_record(CoreFileName(pid), ImageFileKind::kProcess, &p);
    if (!st.ok()) return st;
    if (p.pid() != pid) return Status::Error(CoreFileName(pid) + ": holds process " + std::to_string(p.pid()));
    image.procs.push_back(std::move(p));
  }
  st = ValidateImage(image);
  if (!st.ok()) return Status::Error(dir + ": " + st.message());
  return image;
}

}  // namespace roam
