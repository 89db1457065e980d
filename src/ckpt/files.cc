#include "ckpt/files.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/kcmp.h>

#include <set>

#include "common/file_util.h"

namespace roam {

std::string FdName(pid_t pid, int fd) { return "pid " + std::to_string(pid) + " fd " + std::to_string(fd); }

namespace {

bool SameDescription(pid_t p1, int fd1, pid_t p2, int fd2) {
  return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

// kcmp's order of two open file descriptions (kernel pointers, obfuscated
// but consistent): < 0, 0 (the same one), > 0; nullopt if it gives none.
std::optional<int> CompareDescriptions(pid_t p1, int fd1, pid_t p2, int fd2) {
  switch (syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2)) {
    case 0:
      return 0;
    case 1:
      return -1;
    case 2:
      return 1;
    default:
      return std::nullopt;
  }
}

bool StartsWith(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Whether a process outside the tree (the pids in `users`) holds pipe `ino`.
bool OtherEndOutside(uint64_t ino, const std::map<uint32_t, std::vector<std::pair<pid_t, int>>>& users) {
  std::set<pid_t> tree;
  for (const auto& [id, list] : users) {
    for (auto [pid, fd] : list) tree.insert(pid);
  }
  return PipeHeldOutside(ino, tree);
}

}  // namespace

pid_t FirstProcessOutside(const std::set<pid_t>& tree, const std::function<bool(pid_t)>& holds) {
  DIR* proc = opendir("/proc");
  if (proc == nullptr) return -1;
  pid_t holder = 0;
  while (dirent* e = readdir(proc)) {
    char* end = nullptr;
    const long pid = strtol(e->d_name, &end, 10);
    // This process is never of the tree: the dumper holds fds in flight
    // (their own users), and may hold the other end of the tree's stdio
    // (roamd's pipes to a guest).
    if (pid <= 0 || *end != '\0' || (pid != getpid() && tree.count(static_cast<pid_t>(pid)))) continue;
    if (holds(static_cast<pid_t>(pid))) {
      holder = static_cast<pid_t>(pid);
      break;
    }
  }
  closedir(proc);
  return holder;
}

bool PipeHeldOutside(uint64_t ino, const std::set<pid_t>& tree) {
  const std::string want = "pipe:[" + std::to_string(ino) + "]";
  return FirstProcessOutside(tree, [&](pid_t pid) {
           bool found = false;
           const std::string dir = "/proc/" + std::to_string(pid) + "/fd";
           if (DIR* fds = opendir(dir.c_str())) {
             while (dirent* f = readdir(fds)) {
               char link[64];
               ssize_t n = readlinkat(dirfd(fds), f->d_name, link, sizeof(link) - 1);
               if (n > 0 && want.compare(0, std::string::npos, link, static_cast<size_t>(n)) == 0) found = true;
             }
             closedir(fds);
           }
           return found;
         }) != 0;
}

std::string RefusedFileKind(const std::string& l, int fd) {
  if (StartsWith(l, "socket:")) return "";  // unnamed UNIX sockets are taken; the dump decides
  for (const char* ns : {"net:[", "mnt:[", "pid:[", "user:[", "uts:[", "ipc:[", "cgroup:[", "time:["}) {
    if (StartsWith(l, ns)) return "namespace";  // an fd of /proc/PID/ns/*
  }
  if (!StartsWith(l, "anon_inode:") || l == "anon_inode:[eventfd]" || l == "anon_inode:[timerfd]" ||
      l == "anon_inode:[signalfd]" || l == "anon_inode:[eventpoll]" || l == "anon_inode:inotify" ||
      l == "anon_inode:[pidfd]") {
    return "";
  }
  std::string what = l.substr(strlen("anon_inode:"));
  if (what.size() > 2 && what.front() == '[') what = what.substr(1, what.size() - 2);
  return what;
}

size_t FileTableBuilder::FindDescription(const std::vector<Description>& list, pid_t pid, int fd, bool* found) {
  *found = false;
  size_t lo = 0, hi = list.size();
  while (lo < hi) {
    const size_t mid = lo + (hi - lo) / 2;
    std::optional<int> c = CompareDescriptions(pid, fd, list[mid].pid, list[mid].fd);
    if (!c) {  // no order: one by one (the list is then in the order met)
      for (size_t i = 0; i < list.size(); ++i) {
        if (SameDescription(pid, fd, list[i].pid, list[i].fd)) {
          *found = true;
          return i;
        }
      }
      return list.size();
    }
    if (*c == 0) {
      *found = true;
      return mid;
    }
    if (*c < 0) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

Result<uint32_t> FileTableBuilder::AddFd(pid_t pid, int fd, const FdInfo& info) {
  pids_.insert(pid);
  FdSource src;
  src.pid = pid;
  src.fd = fd;
  std::string base = "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
  src.proc_path = base;
  char link[4096];
  ssize_t n = readlink(base.c_str(), link, sizeof(link) - 1);
  if (n < 0) return Status::Errno("readlink " + base);
  src.link.assign(link, static_cast<size_t>(n));
  if (stat(base.c_str(), &src.st) != 0) return Status::Errno("stat " + base);
  // A description met before is the same FileDesc, except at fds 0-2 when
  // it is inherited: there it is one per fd number, since the restorer's
  // fds 0, 1 and 2 may be different things (a -t job coming home to a
  // deputy whose stdin is /dev/null and stdout a file; a job leaving home
  // whose stdin and stdout are the user's terminal).
  uint32_t same = 0, use = 0;
  const std::pair<dev_t, ino_t> file{src.st.st_dev, src.st.st_ino};
  bool found = false;
  const std::vector<Description>& same_file = descriptions_[file];
  const size_t at = FindDescription(same_file, pid, fd, &found);
  const size_t same_file_size = same_file.size();
  for (size_t i = 0; found && i < same_file[at].ids.size(); ++i) {
    const uint32_t id = same_file[at].ids[i];
    if (same == 0) same = id;
    const pb::FileDesc& d = table_.files(static_cast<int>(id - 1));
    if (fd > 2 || d.kind() != pb::FILE_INHERITED || d.inherit_fd() == fd) {
      use = id;
      break;
    }
  }
  if (use == 0 && same != 0 && pid != root_) use = same;  // a descendant's: the root's will do
  if (use != 0) {
    seen_.push_back({pid, fd, src.st.st_dev, src.st.st_ino, use});
    users_[use].emplace_back(pid, fd);
    return use;
  }
  src.info = info;

  pb::FileDesc desc;
  desc.set_id(static_cast<uint32_t>(table_.files_size() + 1));
  desc.set_flags(src.info.flags & ~static_cast<uint32_t>(O_CLOEXEC));
  desc.set_pos(src.info.pos);
  desc.set_owner_pid(pid);
  Status st;
  const std::string& l = src.link;
  if (pid == stdio_stays_ && fd <= 2 && !StartsWith(l, "pipe:")) {
    desc.set_kind(pb::FILE_INHERITED);
    desc.set_inherit_fd(fd);
    NoteTerminal(src.st, fd, desc.id());
  } else if (StartsWith(l, "pipe:")) {
    st = DumpPipe(src, &desc);
  } else if (l == "anon_inode:[eventfd]" || l == "anon_inode:[timerfd]" || l == "anon_inode:[signalfd]") {
    st = DumpAnon(src, &desc);
  } else if (l == "anon_inode:[eventpoll]") {
    st = DumpEpoll(src, &desc);
  } else if (IsMemfdName(l)) {
    st = DumpMemfd(*this, src, &desc);
  } else if (StartsWith(l, "socket:") && fd > 2) {
    if (!unix_diag_) {
      Result<std::map<uint64_t, UnixDiag>> diag = ReadUnixDiag();
      if (!diag.ok()) return diag.status();
      unix_diag_ = std::move(*diag);
    }
    // A UNIX socket is sock_diag's; anything else is looked at as an
    // IPv4/IPv6 one (which refuses other families).
    st = unix_diag_->count(src.st.st_ino) ? DumpUnixSocket(*this, src, *unix_diag_, &desc)
                                          : DumpInetSocket(*this, src, &desc);
  } else if (l == "anon_inode:inotify") {
    st = DumpInotify(src, &desc);
  } else if (l == "anon_inode:[pidfd]") {
    st = DumpPidfd(*this, src, &desc);
  } else if (IsPtyMaster(l)) {
    st = DumpPtyMaster(src, &desc);
  } else if (std::string refused = RefusedFileKind(l, fd); !refused.empty()) {
    if (refused == "namespace") {
      st = Status::Error(StatusCode::kCantMove, FdName(pid, fd) + ": a namespace (" + l +
                                                    ", from /proc/PID/ns) is not supported: it does not exist elsewhere");
    } else {
      st = Status::Error(StatusCode::kCantMove, FdName(pid, fd) + ": " + refused + " is not supported");
    }
  } else if (StartsWith(l, "socket:")) {  // fds 0-2 of a process: stay where it runs
    desc.set_kind(pb::FILE_INHERITED);
    desc.set_inherit_fd(fd);
  } else if (StartsWith(l, "/")) {
    st = DumpRegular(*this, src, &desc);
  } else {
    st = Status::Error(FdName(pid, fd) + ": unsupported kind of file (" + l + ")");
  }
  if (!st.ok()) {
    if (st.message().rfind("pid ", 0) == 0) return st;
    return st.Prefixed(FdName(pid, fd) + ": ");
  }
  uint32_t id = desc.id();
  *table_.add_files() = std::move(desc);
  seen_.push_back({pid, fd, src.st.st_dev, src.st.st_ino, id});
  // Looked up again if the dump of the file added others (each lookup is
  // a binary search by kcmp, ~10 us a call here: 5,000 fds of /dev/null
  // made 110,000 calls, 1-3 s of a frozen window).
  std::vector<Description>& list = descriptions_[file];
  const size_t place = list.size() == same_file_size ? at : FindDescription(list, pid, fd, &found);
  if (found) {
    list[place].ids.push_back(id);
  } else {
    list.insert(list.begin() + static_cast<std::ptrdiff_t>(place), Description{pid, fd, {id}});
  }
  users_[id].emplace_back(pid, fd);
  st = AddInFlight(id);
  if (!st.ok()) return st;
  return id;
}

Status FileTableBuilder::AddInFlight(uint32_t id) {
  // Taken out first: the AddFd calls below may add entries of their own.
  std::vector<InFlight> mine;
  for (auto it = in_flight.begin(); it != in_flight.end();) {
    if (it->socket_id != id) {
      ++it;
      continue;
    }
    mine.push_back(std::move(*it));
    it = in_flight.erase(it);
  }
  const pid_t self = getpid();
  const pid_t owner = table_.files(static_cast<int>(id - 1)).owner_pid();
  const std::string where = "socket:[" + std::to_string(table_.files(static_cast<int>(id - 1)).unix_socket().ino()) + "]";
  for (InFlight& f : mine) {
    std::vector<uint32_t> ids;
    for (UniqueFd& fd : f.fds) {
      Result<std::string> text = ReadFile("/proc/self/fdinfo/" + std::to_string(fd.get()));
      Result<FdInfo> info = text.ok() ? ParseFdinfo(*text) : Result<FdInfo>(text.status());
      const size_t before = static_cast<size_t>(table_.files_size());
      Result<uint32_t> got = info.ok() ? AddFd(self, fd.get(), *info) : Result<uint32_t>(info.status());
      if (!got.ok()) return got.status().Prefixed("a file in flight in " + where + ": ");
      pb::FileDesc* d = table_.mutable_files(static_cast<int>(*got - 1));
      if (*got > before) d->set_owner_pid(owner);  // new: no process holds it, the socket's does
      if (d->kind() == pb::FILE_EPOLL || d->kind() == pb::FILE_INHERITED ||
          (d->has_inet_socket() && d->inet_socket().has_connection())) {
        return Status::Error(StatusCode::kCantMove, "an epoll set, a TCP connection or a job's stdio in flight in " +
                                                        where + " is not supported");
      }
      ids.push_back(*got);
      in_flight_held_.push_back(std::move(fd));
    }
    pb::InFlightFds* rec = table_.mutable_files(static_cast<int>(id - 1))->mutable_unix_socket()->add_in_flight();
    rec->set_chunk(static_cast<uint32_t>(f.chunk));
    for (uint32_t i : ids) rec->add_files(i);
  }
  return Status::Ok();
}

Result<uint32_t> FileTableBuilder::AddMappedFile(pid_t pid, uint64_t start, uint64_t end, bool writable) {
  pids_.insert(pid);
  char name[128];
  snprintf(name, sizeof(name), "/proc/%d/map_files/%lx-%lx", pid, start, end);
  FdSource src;
  src.pid = pid;
  src.fd = -1;
  if (stat(name, &src.st) != 0) return Status::Errno("stat " + std::string(name));
  auto key = std::make_pair(src.st.st_dev, src.st.st_ino);
  auto it = mapped_.find(key);
  if (it != mapped_.end()) {
    pb::FileDesc* d = table_.mutable_files(static_cast<int>(it->second - 1));
    if (writable) d->set_flags(O_RDWR);
    return it->second;
  }
  char link[4096];
  ssize_t n = readlink(name, link, sizeof(link) - 1);
  if (n < 0) return Status::Errno("readlink " + std::string(name));
  src.link.assign(link, static_cast<size_t>(n));
  // A private mapping of /dev/zero is anonymous memory the kernel names
  // after the device (an idiom older than MAP_ANONYMOUS): mapped again
  // from it, its pages written over it.
  const bool dev_zero = S_ISCHR(src.st.st_mode) && src.link == "/dev/zero" && !writable;
  if (!S_ISREG(src.st.st_mode) && !dev_zero) {
    return Status::Error("pid " + std::to_string(pid) + " mapping " + src.link + ": only regular files can be mapped");
  }
  src.info.flags = writable ? O_RDWR : O_RDONLY;
  pb::FileDesc desc;
  desc.set_id(static_cast<uint32_t>(table_.files_size() + 1));
  desc.set_flags(src.info.flags);
  // The map_files link opens the mapped file itself, even when deleted.
  src.proc_path = name;
  Status st = DumpRegular(*this, src, &desc);
  if (!st.ok()) return st;
  uint32_t id = desc.id();
  *table_.add_files() = std::move(desc);
  mapped_[key] = id;
  return id;
}

Result<uint32_t> FileTableBuilder::AddRemovedCwd(pid_t pid) {
  pids_.insert(pid);
  FdSource src;
  src.pid = pid;
  src.proc_path = "/proc/" + std::to_string(pid) + "/cwd";
  char link[4096];
  ssize_t n = readlink(src.proc_path.c_str(), link, sizeof(link) - 1);
  if (n < 0) return Status::Errno("readlink " + src.proc_path);
  src.link.assign(link, static_cast<size_t>(n));
  if (!LinkDeleted(src.link)) return 0u;
  if (stat(src.proc_path.c_str(), &src.st) != 0) return Status::Errno("stat " + src.proc_path);
  auto key = std::make_pair(src.st.st_dev, src.st.st_ino);  // a directory is never mapped: no clash
  if (auto it = mapped_.find(key); it != mapped_.end()) return it->second;
  src.info.flags = O_RDONLY | O_DIRECTORY;
  pb::FileDesc desc;
  desc.set_id(static_cast<uint32_t>(table_.files_size() + 1));
  desc.set_flags(src.info.flags);
  Status st = DumpRegular(*this, src, &desc);
  if (st.ok() && (desc.kind() != pb::FILE_DIRECTORY || !desc.deleted())) {
    st = Status::Error(StatusCode::kCantMove, "its working directory " + src.link + " is not a removed directory");
  }
  if (!st.ok()) return st.Prefixed("pid " + std::to_string(pid) + ": ");
  const uint32_t id = desc.id();
  *table_.add_files() = std::move(desc);
  mapped_[key] = id;
  return id;
}

Status FileTableBuilder::Finish() {
  // POSIX shared memory carried with the tree: no one else's too.
  Status shared = CheckCarriedNotShared(table_, pids_);
  if (!shared.ok()) return shared;
  // Pseudo-terminal pairs: both ends inside, their state and bytes read.
  Status ptys = FinishPtys();
  if (!ptys.ok()) return ptys;
  // UNIX sockets: both ends inside the tree, or the other one closed.
  if (unix_diag_) {
    Status st = CheckUnixPeers(table_, *unix_diag_);
    if (!st.ok()) return st;
  }
  // Pipes: both ends inside the tree, or inherited stdio.
  std::map<uint64_t, std::pair<bool, bool>> ends;  // ino -> (read end seen, write end seen)
  for (const pb::FileDesc& d : table_.files()) {
    if (d.kind() != pb::FILE_PIPE) continue;
    auto& e = ends[d.pipe_ino()];
    ((d.flags() & O_ACCMODE) == O_RDONLY ? e.first : e.second) = true;
  }
  for (pb::FileDesc& d : *table_.mutable_files()) {
    if (d.kind() != pb::FILE_PIPE) continue;
    auto e = ends[d.pipe_ino()];
    if (e.first && e.second) continue;
    if (!OtherEndOutside(d.pipe_ino(), users_)) continue;  // the other end is closed: a pipe of ours
    // Inherited stdio: at fds 0-2, and perhaps at other fds too, a copy
    // the program made (`exec 3>&1`, valgrind's log fd): all of them get
    // what the restorer gives for the lowest.
    int lowest = 1 << 30;
    for (auto [pid, fd] : users_[d.id()]) lowest = std::min(lowest, fd);
    if (lowest > 2) {
      auto [pid, fd] = users_[d.id()].front();
      return Status::Error(StatusCode::kCantMove, FdName(pid, fd) + ": pipe to a process outside the dumped tree is not supported");
    }
    d.set_kind(pb::FILE_INHERITED);
    d.set_inherit_fd(lowest);
  }
  // Buffered data of the pipes kept inside, read through a read end; of
  // FIFOs, through any end reopened for reading.
  for (const pb::FileDesc& d : table_.files()) {
    bool fifo = d.kind() == pb::FILE_FIFO;
    if (!fifo && (d.kind() != pb::FILE_PIPE || (d.flags() & O_ACCMODE) != O_RDONLY)) continue;
    bool done = false;
    for (const pb::Pipe& p : table_.pipes()) done = done || p.ino() == d.pipe_ino();
    if (done) continue;
    pb::Pipe* pipe = table_.add_pipes();
    pipe->set_ino(d.pipe_ino());
    auto [pid, fd] = users_[d.id()].front();
    Status st = DumpPipeData(pid, fd, fifo, pipe);
    if (!st.ok()) return st;
  }
  // Epoll targets: the registered file, found with kcmp among the tree's
  // descriptions. The fd number it was added with may have been closed or
  // given to another file since (the registration stays while the file is
  // open anywhere), and one file may be there twice, under two numbers.
  for (pb::FileDesc& d : *table_.mutable_files()) {
    if (d.kind() != pb::FILE_EPOLL) continue;
    auto [pid, fd] = users_[d.id()].front();
    std::map<int, uint32_t> same_number;  // entries seen per tfd: kcmp's toff
    for (pb::EpollTarget& t : *d.mutable_epoll()) {
      kcmp_epoll_slot slot{static_cast<uint32_t>(fd), static_cast<uint32_t>(t.tfd()), same_number[t.tfd()]++};
      auto registered = [&](const Seen& s) {
        return syscall(SYS_kcmp, s.pid, pid, KCMP_EPOLL_TFD, s.fd, &slot) == 0;
      };
      uint32_t target = 0;
      for (const Seen& s : seen_) {  // the usual case first: its own fd of that number
        if (s.pid == pid && s.fd == t.tfd() && registered(s)) target = s.id;
      }
      for (size_t i = 0; target == 0 && i < seen_.size(); ++i) {
        if (registered(seen_[i])) target = seen_[i].id;
      }
      if (target == 0) {
        return Status::Error(StatusCode::kCantMove, FdName(pid, fd) + ": epoll watches a file (added as fd " +
                                                        std::to_string(t.tfd()) +
                                                        ") that no process of the tree holds open (not supported)");
      }
      t.set_file_id(target);
    }
  }
  return Status::Ok();
}

Result<UniqueFd> CopyFd(pid_t pid, int fd) {
  UniqueFd pidfd(static_cast<int>(syscall(SYS_pidfd_open, pid, 0)));
  if (!pidfd.ok()) return Status::Errno("pidfd_open " + std::to_string(pid));
  UniqueFd copy(static_cast<int>(syscall(SYS_pidfd_getfd, pidfd.get(), fd, 0)));
  if (!copy.ok()) return Status::Errno("pidfd_getfd of fd " + std::to_string(fd) + " of pid " + std::to_string(pid));
  return copy;
}

// ---- restore ----------------------------------------------------------------------

void OpenedFiles::Plan(const pb::FileTable& table, int base) {
  int at = base;
  for (const pb::FileDesc& d : table.files()) fds_[d.id()] = at++;
  for (const pb::SharedMemory& s : table.shmems()) shmem_[s.id()] = at++;
  next_ = at;
}

Status OpenedFiles::OpenAll(const pb::FileTable& table, const std::string& image_dir) {
  auto place = [](int fd, int at) -> Status {
    if (fd == at) return Status::Ok();
    int r = dup3(fd, at, O_CLOEXEC);
    int err = errno;
    close(fd);
    if (r < 0) return Status::Errno("dup3 to fd " + std::to_string(at), err);
    return Status::Ok();
  };
  // Deleted files: contents back on disk once each, opened by every
  // description, then unlinked again whatever happens.
  std::map<std::string, std::string> recreated;  // DeletedKey -> path
  struct Unlinker {
    std::map<std::string, std::string>* paths;
    ~Unlinker() {
      for (auto& [key, path] : *paths) remove(path.c_str());  // a file, a FIFO or an empty directory
    }
  } unlinker{&recreated};
  std::set<std::string> placed;  // an fd and a mapping of one file: written once
  for (const pb::FileDesc& d : table.files()) {
    if (!d.carried() || !placed.insert(d.path()).second) continue;
    Status st = PlaceCarried(d, image_dir);
    if (!st.ok()) return st;
  }
  for (const pb::FileDesc& d : table.files()) {
    if (!d.deleted() || recreated.count(DeletedKey(d))) continue;
    Result<std::string> path = RecreateDeleted(d, image_dir);
    if (!path.ok()) return path.status();
    recreated[DeletedKey(d)] = *path;
  }
  // Shared memory objects and memfds first (a memfd's descriptions are
  // opened from its object), out of the planned range until the end.
  std::map<uint64_t, int> shm;
  Status st = OpenSharedMemory(table, image_dir, &shm);
  if (!st.ok()) return st;
  for (auto& [id, fd] : shm) {
    int high = fcntl(fd, F_DUPFD_CLOEXEC, next_ + 64);
    close(fd);
    if (high < 0) return Status::Errno("fcntl F_DUPFD");
    fd = high;
  }
  std::map<uint32_t, int> pipe_fds, lone_ends;
  struct LoneCloser {
    std::map<uint32_t, int>* fds;
    ~LoneCloser() {
      for (auto& [id, fd] : *fds) close(fd);
    }
  } lone_closer{&lone_ends};
  st = OpenPipes(table, recreated, &pipe_fds);
  if (st.ok()) st = OpenUnixSockets(table, &pipe_fds, &lone_ends);  // the same: made in pairs
  if (st.ok()) st = OpenPtys(table, &pipe_fds);                     // and pseudo-terminals
  if (!st.ok()) return st;
  for (auto* m : {&pipe_fds, &lone_ends}) {
    for (auto& [id, fd] : *m) {  // out of the planned range at once
      int high = fcntl(fd, F_DUPFD_CLOEXEC, next_ + 64);
      close(fd);
      if (high < 0) return Status::Errno("fcntl F_DUPFD");
      fd = high;
    }
  }
  for (const pb::FileDesc& d : table.files()) {
    Result<int> fd = Status::Error("file " + std::to_string(d.id()) + ": unknown kind");
    switch (d.kind()) {
      case pb::FILE_REGULAR:
      case pb::FILE_DIRECTORY:
      case pb::FILE_CHARDEV:
        fd = OpenRegular(d, d.deleted() ? recreated[DeletedKey(d)] : "");
        break;
      case pb::FILE_PIPE:
      case pb::FILE_FIFO:
        fd = pipe_fds.count(d.id()) ? Result<int>(pipe_fds[d.id()]) : Status::Error("pipe not opened");
        break;
      case pb::FILE_EVENTFD:
      case pb::FILE_TIMERFD:
      case pb::FILE_SIGNALFD:
        fd = OpenAnon(d);
        break;
      case pb::FILE_EPOLL:
        fd = OpenEpoll(d);
        break;
      case pb::FILE_INOTIFY:
        fd = OpenInotify(d);
        break;
      case pb::FILE_PIDFD:
        fd = OpenPidfd(d);
        break;
      case pb::FILE_UNIX_SOCKET:
        fd = pipe_fds.count(d.id()) ? Result<int>(pipe_fds[d.id()]) : Status::Error("socket not opened");
        break;
      case pb::FILE_PTY_MASTER:
      case pb::FILE_PTY_SLAVE:
        fd = pipe_fds.count(d.id()) ? Result<int>(pipe_fds[d.id()]) : Status::Error("pseudo-terminal not opened");
        break;
      case pb::FILE_INET_SOCKET:
        fd = OpenInetSocket(d);
        break;
      case pb::FILE_MEMFD:
        fd = shm.count(d.shmem_id()) ? OpenMemfd(d, shm[d.shmem_id()]) : Status::Error("its memfd is not in the image");
        break;
      case pb::FILE_TERMINAL: {
        auto from = inherited_.find(d.inherit_fd());
        fd = OpenTerminal(d, from == inherited_.end() ? d.inherit_fd() : from->second);
        break;
      }
      case pb::FILE_INHERITED: {
        auto from = inherited_.find(d.inherit_fd());
        int dup_fd = fcntl(from == inherited_.end() ? d.inherit_fd() : from->second, F_DUPFD_CLOEXEC, next_);
        fd = dup_fd >= 0 ? Result<int>(dup_fd)
                         : Status::Errno("fd " + std::to_string(d.inherit_fd()) + " of roam restore (inherited)");
        break;
      }
      default:
        break;
    }
    if (!fd.ok()) return Status::Error("file " + std::to_string(d.id()) + " (" + d.path() + "): " + fd.status().message());
    // Opened fds may land on planned numbers of later files: move them up
    // first, then into place.
    int high = fcntl(*fd, F_DUPFD_CLOEXEC, next_ + 64);
    close(*fd);
    if (high < 0) return Status::Errno("fcntl F_DUPFD");
    st = place(high, fds_[d.id()]);
    if (!st.ok()) return st;
  }
  for (auto [id, fd] : shm) {
    st = place(fd, shmem_[id]);
    if (!st.ok()) return st;
  }
  // UNIX sockets' queues last: the fds in flight in them are descriptions
  // of any kind, all open now.
  return FillUnixSockets(table, [this](uint32_t id) { return FdOf(id); }, &lone_ends);
}

int OpenedFiles::FdOf(uint32_t id) const {
  auto it = fds_.find(id);
  return it == fds_.end() ? -1 : it->second;
}

int OpenedFiles::ShmemFd(uint64_t id) const {
  auto it = shmem_.find(id);
  return it == shmem_.end() ? -1 : it->second;
}

}  // namespace roam
