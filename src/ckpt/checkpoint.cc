// The dump, top to bottom: find the tree and refuse what cannot be carried,
// freeze it, read every process (registers, injected queries, fds, memory),
// write the records, release or kill.
#include "ckpt/checkpoint.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "ckpt/dirty_tracker.h"
#include "ckpt/file_locks.h"
#include "ckpt/files.h"
#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "ckpt/memory.h"
#include "ckpt/net_lock.h"
#include "ckpt/sysv_ipc.h"
#include "ckpt/task_state.h"
#include "ckpt/tracee.h"
#include "common/file_util.h"
#include "common/proc_fdinfo.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"
#include "common/proc_status.h"

namespace roam {

namespace {

constexpr uint64_t kScratchSize = 64 * 1024;

int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

// ROAM_CKPT_TRACE=1 prints how long each phase took, on stderr.
void Trace(const char* phase, int64_t since_ns) {
  static const bool on = getenv("ROAM_CKPT_TRACE") != nullptr;
  if (on) fprintf(stderr, "ckpt: %-12s %8.2f ms\n", phase, (NowNs() - since_ns) / 1e6);
}

std::string ProcPath(pid_t pid, const std::string& what) { return "/proc/" + std::to_string(pid) + "/" + what; }

Result<std::vector<pid_t>> Children(pid_t pid) {
  Result<std::string> text = ReadFile(ProcPath(pid, "task/" + std::to_string(pid) + "/children"));
  if (!text.ok()) return text.status();
  return ParseChildrenList(*text);
}

// A process of the tree that has exited: a zombie, or already gone. One
// caught inside exit() (PF_EXITING; its status already lacks Umask and the
// like) is waited for, up to 200 ms, until it is a zombie: its parent may
// wait for it after the restore, so it is recorded as one, not refused
// ("status: no Umask line") nor taken for gone.
bool ExitedChild(pid_t pid) {
  constexpr uint32_t kPfExiting = 0x4;
  for (int tries = 0;; ++tries) {
    Result<std::string> text = ReadFile(ProcPath(pid, "stat"));
    ProcStat ps;
    if (!text.ok() || !ParseProcStat(*text, &ps)) return true;  // gone
    if (ps.state == 'Z' || ps.state == 'X') return true;
    if (!(ps.flags & kPfExiting) || tries == 200) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// Refusals that need no freezing: seccomp filters, zombies, a tracer. `seized`: the process is already frozen by us (we are its tracer).
Status Preflight(pid_t pid, bool seized) {
  Result<std::string> text = ReadFile(ProcPath(pid, "status"));
  if (!text.ok()) return Status::Error("pid " + std::to_string(pid) + ": no such process");
  Result<ProcStatus> s = ParseProcStatus(*text);
  // A zombie's status has no Umask line, nor much else.
  if (!s.ok() && ExitedChild(pid)) return Status::Error("pid " + std::to_string(pid) + " has exited");
  if (!s.ok()) return s.status();
  std::string who = "pid " + std::to_string(pid) + " (" + s->name + ")";
  if (s->state == 'Z') return Status::Error(who + " has exited (a zombie)");
  if (s->seccomp == 2) return Status::Error(StatusCode::kCantMove, who + ": seccomp filters are not supported");
  if (!seized && s->tracer_pid != 0) {
    return Status::Error(who + " is already traced by pid " + std::to_string(s->tracer_pid));
  }
  return Status::Ok();
}

// The tree's own address as /proc/net/tcp prints a local address (the
// raw 32 bits in hex; tcp6: as a v4-mapped address), "" for none.
std::pair<std::string, std::string> OwnAddressHex(const std::string& own) {
  in_addr a{};
  if (own.empty() || inet_pton(AF_INET, own.c_str(), &a) != 1) return {};
  char v4[16], v6[40];
  snprintf(v4, sizeof v4, "%08X", a.s_addr);
  snprintf(v6, sizeof v6, "0000000000000000FFFF0000%08X", a.s_addr);
  return {v4, v6};
}

// The inodes of the IPv4/IPv6 sockets in `pid`'s network namespace that
// the engine carries (file_inet.cc): TCP listening (state 0A) or closed
// (07: bound, not connected), UDP of any state (/proc/PID/net/{tcp,udp}*),
// and TCP connections from the tree's own address: established (01),
// being opened (02: a move waits for it) or being closed (04 FIN_WAIT1,
// 05 FIN_WAIT2, 08 CLOSE_WAIT, 09 LAST_ACK, 0B CLOSING).
void AddMovableInetSockets(pid_t pid, const std::string& own_address, std::set<uint64_t>* out) {
  const auto [own4, own6] = OwnAddressHex(own_address);
  for (const char* table : {"net/tcp", "net/tcp6", "net/udp", "net/udp6"}) {
    const bool tcp = table[4] == 't';
    Result<std::string> text = ReadFile(ProcPath(pid, table));
    if (!text.ok()) continue;
    size_t at = text->find('\n');
    while (at != std::string::npos && at + 1 < text->size()) {
      const size_t end = text->find('\n', at + 1);
      const std::string line = text->substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
      at = end;
      char local[64], remote[64], queues[64], timer[64];
      unsigned state, retr, uid, timeout;
      unsigned long long ino;
      if (sscanf(line.c_str(), " %*[^:]: %63s %63s %x %63s %63s %x %u %u %llu", local, remote, &state, queues, timer,
                 &retr, &uid, &timeout, &ino) != 9) {
        continue;
      }
      const std::string addr(local, strcspn(local, ":"));
      const bool own = !own4.empty() && (addr == own4 || addr == own6);
      constexpr uint32_t kConnection =
          (1U << 0x01) | (1U << 0x02) | (1U << 0x04) | (1U << 0x05) | (1U << 0x08) | (1U << 0x09) | (1U << 0x0B);
      if (!tcp || state == 0x0A || state == 0x07 || (own && state < 32 && (kConnection & (1U << state)) != 0)) {
        out->insert(ino);
      }
    }
  }
}

// The inodes of the UNIX sockets in `pid`'s network namespace, all of
// which the engine carries but for what only the dump sees (a peer outside
// the tree, fds in flight, a relative name) (/proc/PID/net/unix).
std::set<uint64_t> UnixSockets(pid_t pid) {
  std::set<uint64_t> out;
  Result<std::string> text = ReadFile(ProcPath(pid, "net/unix"));
  if (!text.ok()) return out;
  size_t at = text->find('\n');
  while (at != std::string::npos && at + 1 < text->size()) {
    const size_t end = text->find('\n', at + 1);
    const std::string line = text->substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
    at = end;
    char num[64], path[2];
    unsigned refs, proto, flags, type, state;
    unsigned long long ino;
    const int got = sscanf(line.c_str(), "%63s %x %x %x %x %x %llu %1s", num, &refs, &proto, &flags, &type, &state, &ino, path);
    if (got >= 7) out.insert(ino);
  }
  return out;
}

// How the tree holds a pipe (CantMoveReason): which ends, and whether at
// an fd above stdio.
struct PipeUse {
  bool read = false, write = false, above_stdio = false;
  bool at_stdio = false;  // at fds 0-2 too: inherited stdio (and a copy of it)
};

// O_RDONLY, O_WRONLY or O_RDWR of `pid`'s fd `fd` (-1 if unknown).
int AccessMode(pid_t pid, int fd) {
  Result<std::string> text = ReadFile(ProcPath(pid, "fdinfo/" + std::to_string(fd)));
  Result<FdInfo> info = text.ok() ? ParseFdinfo(*text) : Result<FdInfo>(text.status());
  return info.ok() ? static_cast<int>(info->flags & O_ACCMODE) : -1;
}

// CantMoveReason's look at one process; its pipes go into `pipes`, its
// POSIX shared memory into `shm`.
std::string CantMoveOne(pid_t pid, const std::string& own_address, std::map<uint64_t, PipeUse>* pipes,
                        std::map<FileId, std::string>* shm) {
  Result<std::string> text = ReadFile(ProcPath(pid, "status"));
  Result<ProcStatus> s = text.ok() ? ParseProcStatus(*text) : Result<ProcStatus>(text.status());
  if (!s.ok()) return "";
  if (s->seccomp == 2) return "seccomp";
  // Traced by a tracer of its own (strace, gdb): the engine freezes by
  // tracing. Its own tracing, during a move, is this process's.
  if (s->tracer_pid != 0 && s->tracer_pid != getpid()) return "traced";
  const std::string fd_dir = ProcPath(pid, "fd");
  if (DIR* dir = opendir(fd_dir.c_str())) {
    std::string why;
    std::optional<std::set<uint64_t>> pairs;  // read at the first socket
    while (dirent* e = readdir(dir)) {
      if (e->d_name[0] == '.') continue;
      char buf[256];
      ssize_t n = readlinkat(dirfd(dir), e->d_name, buf, sizeof buf - 1);
      if (n <= 0) continue;
      const std::string link(buf, static_cast<size_t>(n));
      const int fd = atoi(e->d_name);
      why = RefusedFileKind(link, fd);
      if (link.rfind("pipe:[", 0) == 0) {
        PipeUse& use = (*pipes)[strtoull(link.c_str() + 6, nullptr, 10)];
        const int mode = AccessMode(pid, fd);
        use.read = use.read || mode == O_RDONLY;
        use.write = use.write || mode == O_WRONLY;
        use.above_stdio = use.above_stdio || fd > 2;
        use.at_stdio = use.at_stdio || fd <= 2;
      }
      if (why.empty() && fd > 2 && link.rfind("socket:[", 0) == 0) {
        // UNIX sockets move (file_unix.cc), and IPv4/IPv6 sockets
        // without a connection (file_inet.cc).
        if (!pairs) {
          pairs = UnixSockets(pid);
          AddMovableInetSockets(pid, own_address, &*pairs);
        }
        if (!pairs->count(strtoull(link.c_str() + 8, nullptr, 10))) why = "socket";
      }
      if (!why.empty()) break;
    }
    closedir(dir);
    if (!why.empty()) return why;
  }
  Result<std::string> maps = ReadFile(ProcPath(pid, "maps"));
  PosixShmOf(pid, shm, maps.ok() ? &*maps : nullptr);
  return "";
}

struct Dumped {
  std::unique_ptr<Tracee> tracee;                 // the leader
  std::vector<std::unique_ptr<Tracee>> threads;  // the others (threads.cc)
  pb::ProcessImage image;
  ProcStat stat;  // as DumpOne read it (the tree is frozen: it holds)
  uint64_t scratch = 0;
  user_regs_struct regs{};
  // Its semaphore adjustments, taken out by the first Dump (sysv_ipc.h):
  // given back if it is let go.
  std::vector<pb::SemUndo> sem_undo;
};

// A scratch mapping in `d` (kept until Release), for injected calls after
// DumpOne unmapped its own.
Status EnsureScratch(Dumped& d) {
  if (d.scratch != 0) return Status::Ok();
  Result<long> scratch = d.tracee->SyscallOk("mmap scratch", SYS_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
  if (!scratch.ok()) return scratch.status();
  d.scratch = static_cast<uint64_t>(*scratch);
  return Status::Ok();
}

}  // namespace

class TreeDump {
 public:
  explicit TreeDump(pid_t root) : root_(root) {}
  ~TreeDump() {
    Release();
    if (ipc_ns_ >= 0) close(ipc_ns_);
  }

  Status Freeze();
  Result<DirtyTracker> Track(pid_t pid, const std::vector<PageRange>& ranges);
  Result<CheckpointReport> Dump(ImageSink& sink, const DumpOptions& options);
  Status Seal();
  void Release();  // lets every frozen process go on, as it was
  void KillAll();
  void RemoveCarried() {
    InIpcNamespace in_ns;
    if (ipc_ns_ >= 0 && in_ns.Enter(ipc_ns_).ok()) RemoveSysvObjects(carried_);
    carried_.Clear();
    if (!files_) return;
    for (const RepairedSocket& r : files_->repaired) (void)UnlockConnection(r.socket);
    files_->repaired.clear();
  }
  Status ExecRoot(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  uint64_t min_open_files);
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const Dumped& d : procs_) out.push_back(d.tracee->pid());
    return out;
  }
  pid_t root() const { return root_; }
  ImageSink* sink() const { return sink_; }
  int64_t frozen_ns() const {
    if (freeze_start_ == 0) return 0;
    return (freeze_end_ ? freeze_end_ : NowNs()) - freeze_start_;
  }

 private:
  Status DumpOne(Dumped& d, const RangeSet& kept);
  Status WriteImage();
  void RecordZombie(pid_t pid);

  pid_t root_;
  ImageSink* sink_ = nullptr;
  std::unique_ptr<FileTableBuilder> files_;
  std::vector<Dumped> procs_;
  std::map<pid_t, std::vector<pb::Zombie>> zombies_;  // by parent
  MemoryStats stats_;
  int64_t freeze_start_ = 0, freeze_end_ = 0;
  pb::Inventory inventory_;
  SysvDump sysv_;
  bool sem_drained_ = false;
  pb::FileTable carried_;  // the System V objects of the last Dump
  int ipc_ns_ = -1;        // the tree's IPC namespace, open
  bool share_cow_ = false;  // DumpOptions::share_cow, for this Dump
};


void TreeDump::RecordZombie(pid_t pid) {
  Result<std::string> text = ReadFile(ProcPath(pid, "stat"));
  ProcStat ps;
  if (!text.ok() || !ParseProcStat(*text, &ps) || ps.state != 'Z') return;  // gone
  pb::Zombie z;
  z.set_pid(pid);
  z.set_pgid(ps.pgrp);
  z.set_wait_status(ps.exit_code);
  z.set_comm(ps.comm);
  zombies_[ps.ppid].push_back(std::move(z));
}

Status TreeDump::Freeze() {
  // Look before touching: every process of the tree must be supported.
  std::vector<pid_t> queue{root_};
  for (size_t i = 0; i < queue.size(); ++i) {
    if (i > 0 && ExitedChild(queue[i])) continue;  // a zombie, or gone: nothing to refuse
    Status st = Preflight(queue[i], false);
    if (!st.ok() && i > 0 && ExitedChild(queue[i])) continue;  // it exited meanwhile
    if (!st.ok()) return st;
    Result<std::vector<pid_t>> kids = Children(queue[i]);
    if (kids.ok()) queue.insert(queue.end(), kids->begin(), kids->end());
  }
  // Freeze parents before children; a child forked meanwhile is found when
  // its (frozen) parent's list is read again.
  freeze_start_ = NowNs();
  std::set<pid_t> seen;
  queue = {root_};
  for (size_t i = 0; i < queue.size(); ++i) {
    pid_t pid = queue[i];
    if (!seen.insert(pid).second) continue;
    // A child that has exited is a zombie while its (frozen) parent has not
    // waited for it: recorded with its parent, made again at restore. One
    // reaped meanwhile (a parent ignoring SIGCHLD) is simply gone.
    if (i > 0 && ExitedChild(pid)) {
      RecordZombie(pid);
      continue;
    }
    Dumped d;
    d.tracee = std::make_unique<Tracee>(pid);
    // A stopped process's other threads are attached first: the leader's
    // seize lifts the group stop, and they must not run meanwhile.
    Status st = ReadProcState(pid) == 'T' ? AttachStoppedThreads(pid, &d.threads) : Status::Ok();
    if (st.ok()) st = d.tracee->Seize();
    if (!st.ok() && i > 0 && ExitedChild(pid)) {  // it exited between the look and the seize
      RecordZombie(pid);
      continue;
    }
    if (st.ok()) d.tracee->HoldOnThisCpu();
    procs_.push_back(std::move(d));
    if (!st.ok()) return st;
    st = SeizeThreads(*procs_.back().tracee, &procs_.back().threads);
    if (!st.ok()) return st;
    st = Preflight(pid, true);  // threads may have appeared before the freeze
    if (!st.ok()) return st;
    Result<std::vector<pid_t>> kids = Children(pid);
    if (!kids.ok()) return kids.status();
    queue.insert(queue.end(), kids->begin(), kids->end());
  }
  return Status::Ok();
}

Result<DirtyTracker> TreeDump::Track(pid_t pid, const std::vector<PageRange>& ranges) {
  auto held = std::find_if(procs_.begin(), procs_.end(), [pid](const Dumped& d) { return d.tracee->pid() == pid; });
  if (held == procs_.end()) return Status::Error("pid " + std::to_string(pid) + " is not frozen here");
  Tracee& t = *held->tracee;
  Result<uint64_t> ip = FindSyscallInstruction(t.pid());
  if (!ip.ok()) return ip.status();
  t.set_syscall_ip(*ip);
  Status st = t.BlockSignals();
  if (!st.ok()) return st;
  Result<DirtyTracker> tracker = DirtyTracker::Open(t, ranges);
  if (!tracker.ok() || t.stolen_signals().empty()) return tracker;
  // A signal the freeze took out of the way goes back before the process
  // runs on (Release does not: only a dump queues them again).
  Result<long> scratch = t.SyscallOk("mmap scratch", SYS_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
  if (!scratch.ok()) return scratch.status();
  st = RequeueSignals(t, static_cast<uint64_t>(*scratch), t.stolen_signals());
  (void)t.Syscall(SYS_munmap, static_cast<uint64_t>(*scratch), kScratchSize);
  if (!st.ok()) return st;
  return tracker;
}

Status TreeDump::DumpOne(Dumped& d, const RangeSet& kept) {
  Tracee& t = *d.tracee;
  pid_t pid = t.pid();
  pb::ProcessImage& p = d.image;
  p.set_pid(pid);
  p.set_stopped(t.was_stopped());

  Result<std::string> stat_text = ReadFile(ProcPath(pid, "stat"));
  ProcStat& ps = d.stat;
  if (!stat_text.ok() || !ParseProcStat(*stat_text, &ps)) return Status::Error("pid " + std::to_string(pid) + ": cannot read stat");
  p.set_ppid(ps.ppid);
  p.set_pgid(ps.pgrp);
  p.set_sid(ps.session);
  if (auto z = zombies_.find(pid); z != zombies_.end()) {
    for (const pb::Zombie& one : z->second) *p.add_zombies() = one;
  }
  p.set_comm(ps.comm);
  pb::MmFields* mm = p.mutable_mm();
  mm->set_start_code(ps.start_code);
  mm->set_end_code(ps.end_code);
  mm->set_start_data(ps.start_data);
  mm->set_end_data(ps.end_data);
  mm->set_start_brk(ps.start_brk);
  mm->set_start_stack(ps.start_stack);
  mm->set_arg_start(ps.arg_start);
  mm->set_arg_end(ps.arg_end);
  mm->set_env_start(ps.env_start);
  mm->set_env_end(ps.env_end);

  // The memory map is read before the scratch area exists.
  Result<std::string> smaps_text = ReadFile(ProcPath(pid, "smaps"));
  if (!smaps_text.ok()) return smaps_text.status();
  Result<std::vector<VmaInfo>> vmas = ParseSmaps(*smaps_text);
  if (!vmas.ok()) return Status::Error("pid " + std::to_string(pid) + " smaps: " + vmas.status().message());

  Status st = t.GetRegs(&d.regs);
  if (!st.ok()) return st;
  user_regs_struct saved = d.regs;
  t.NameRestartedCall(&saved);  // the call a restore issues again
  p.set_gpregs(std::string(reinterpret_cast<const char*>(&saved), sizeof(saved)));
  Result<std::string> xs = t.GetXstate();
  if (!xs.ok()) return xs.status();
  p.set_xsave(*xs);

  int64_t t0 = NowNs();
  // Queries that only the process itself can answer, by injection.
  Result<uint64_t> ip = FindSyscallInstruction(pid);
  if (!ip.ok()) return ip.status();
  t.set_syscall_ip(*ip);
  p.set_syscall_ip(*ip);
  st = t.BlockSignals();
  if (!st.ok()) return st;
  Result<long> scratch = t.SyscallOk("mmap scratch", SYS_mmap, 0, kScratchSize, PROT_READ | PROT_WRITE,
                                     MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
  if (!scratch.ok()) return scratch.status();
  d.scratch = static_cast<uint64_t>(*scratch);
  st = RequeueSignals(t, d.scratch, t.stolen_signals());
  if (st.ok()) st = DumpSignals(t, d.scratch, &p);
  if (st.ok()) st = DumpTimers(t, d.scratch, &p);
  if (st.ok()) st = DumpCreds(t, d.scratch, &p);
  if (st.ok()) st = DumpTaskMisc(t, d.scratch, &p);
  if (st.ok()) {
    Result<uint32_t> cwd = files_->AddRemovedCwd(pid);
    if (cwd.ok()) p.set_cwd_file(*cwd);
    st = cwd.status();
  }
  if (st.ok()) st = DumpSched(t, &p);
  if (st.ok()) st = DumpKnobs(t, d.scratch, &p);
  if (st.ok()) {
    Result<long> brk = t.SyscallOk("brk", SYS_brk, 0);
    if (brk.ok()) mm->set_brk(static_cast<uint64_t>(*brk));
    st = brk.status();
  }
  for (size_t i = 0; st.ok() && i < d.threads.size(); ++i) {
    pb::ThreadImage* ti = p.add_threads();
    st = DumpThread(*d.threads[i], *ip, d.scratch, ti);
    if (st.ok()) st = DumpThreadCreds(pid, d.threads[i]->pid(), p.creds(), ti);
  }
  Result<long> unmapped = t.SyscallOk("munmap scratch", SYS_munmap, d.scratch, kScratchSize);
  if (st.ok()) st = unmapped.status();
  if (unmapped.ok()) d.scratch = 0;
  if (!st.ok()) return st;
  if (p.seccomp_mode() == 2) return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(pid) + ": seccomp filters are not supported");

  Trace("injected", t0);
  t0 = NowNs();
  // Files.
  DIR* dir = opendir(ProcPath(pid, "fd").c_str());
  if (dir == nullptr) return Status::Errno("open " + ProcPath(pid, "fd"));
  std::vector<int> fds;
  while (dirent* e = readdir(dir)) {
    if (e->d_name[0] != '.') fds.push_back(atoi(e->d_name));
  }
  closedir(dir);
  std::sort(fds.begin(), fds.end());
  for (int fd : fds) {
    Result<std::string> info = ReadFile(ProcPath(pid, "fdinfo/" + std::to_string(fd)));
    Result<FdInfo> fi = info.ok() ? ParseFdinfo(*info) : Result<FdInfo>(info.status());
    if (!fi.ok()) return Status::Error("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": " + fi.status().message());
    Result<uint32_t> id = files_->AddFd(pid, fd, *fi);
    if (!id.ok()) return id.status();
    pb::Fd* out = p.add_fds();
    out->set_fd(fd);
    out->set_file_id(*id);
    out->set_cloexec((fi->flags & O_CLOEXEC) != 0);
    for (const std::string& line : fi->locks) {  // the file locks taken through it (file_locks.h)
      Result<pb::FileLock> lock = ParseLockLine(line);
      if (!lock.ok()) return lock.status().Prefixed("pid " + std::to_string(pid) + " fd " + std::to_string(fd) + ": ");
      lock->set_fd(fd);
      *p.add_locks() = std::move(*lock);
    }
  }

  Trace("files", t0);
  t0 = NowNs();
  // Memory.
  // Shared with the parent copy-on-write: the parent is of the tree and
  // dumped already (parents come first), and nothing is pre-copied.
  pid_t cow_parent = 0;
  RangeSet parent_anon;
  if (share_cow_ && kept.empty() && pid != root_) {
    for (const Dumped& other : procs_) {
      if (other.tracee->pid() != ps.ppid) continue;
      cow_parent = ps.ppid;
      for (const pb::Vma& v : other.image.vmas()) {
        if (TakesStaged(v)) parent_anon.Add({v.start(), v.end()});
      }
    }
  }
  st = DumpMemory(pid, *vmas, *files_, &p, &stats_, kept, cow_parent, parent_anon);
  if (!st.ok()) return st;
  Trace("memory", t0);
  struct stat exe;
  if (stat(ProcPath(pid, "exe").c_str(), &exe) == 0) {
    for (int i = 0; i < p.vmas_size() && i < static_cast<int>(vmas->size()); ++i) {
      const VmaInfo& v = (*vmas)[static_cast<size_t>(i)];
      if (v.inode == exe.st_ino && v.dev_major == major(exe.st_dev) && v.dev_minor == minor(exe.st_dev) &&
          p.vmas(i).file_id() != 0) {
        mm->set_exe_file_id(p.vmas(i).file_id());
        break;
      }
    }
  }
  return Status::Ok();
}

Status TreeDump::WriteImage() {
  pb::Inventory& inv = inventory_;
  inv.set_image_version(kImageVersion);
  inv.set_arch("x86_64");
  utsname u;
  if (uname(&u) == 0) inv.set_kernel_release(u.release);
  inv.set_root_pid(root_);
  for (const Dumped& d : procs_) inv.add_pids(d.image.pid());
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  inv.set_dump_realtime_ns(now.tv_sec * 1000000000LL + now.tv_nsec);
  // The vDSO the image was taken with (the first process's that has one):
  // restore refuses another one.
  for (const Dumped& d : procs_) {
    for (const pb::Vma& v : d.image.vmas()) {
      if (v.kind() != pb::VMA_VDSO || inv.vdso_size() != 0) continue;
      std::string bytes(v.end() - v.start(), '\0');
      Status st = d.tracee->ReadMemory(v.start(), bytes.data(), bytes.size());
      if (!st.ok()) return st;
      inv.set_vdso_xxh3(XXH3_64bits(bytes.data(), bytes.size()));
      inv.set_vdso_size(bytes.size());
    }
  }
  const std::string& xsave = procs_.front().image.xsave();
  if (xsave.size() >= 480) {
    uint64_t xfeatures;
    memcpy(&xfeatures, xsave.data() + 464 + 8, sizeof(xfeatures));
    inv.set_xfeatures(xfeatures);
    inv.set_xsave_size(static_cast<uint32_t>(xsave.size()));
  }
  for (const pb::ImageFileSum& s : files_->sums) *inv.add_files() = s;
  auto add = [&](const std::string& name, const ImageFileHeader& h) {
    pb::ImageFileSum* s = inv.add_files();
    s->set_name(name);
    s->set_size(h.header_size + h.payload_size);
    s->set_xxh3(h.payload_xxh3);
  };
  Result<ImageFileHeader> h = WriteRecord(*sink_, kFileTableFile, ImageFileKind::kFileTable, files_->table());
  if (!h.ok()) return h.status();
  add(kFileTableFile, *h);
  for (const Dumped& d : procs_) {
    h = WriteRecord(*sink_, CoreFileName(d.image.pid()), ImageFileKind::kProcess, d.image);
    if (!h.ok()) return h.status();
    add(CoreFileName(d.image.pid()), *h);
  }
  return Status::Ok();
}

namespace {

// A thread that injected calls left in a syscall stop goes on into the
// call it was interrupted in, as the kernel would have had it, with its
// own mask.
void ResumeThread(Tracee& t) {
  if (t.syscall_ip() != 0) (void)t.ResumeInterruptedCall();
  (void)t.RestoreSigmask();
}

}  // namespace

void TreeDump::Release() {
  if (!procs_.empty() && freeze_end_ == 0) freeze_end_ = NowNs();
  // TCP connections the dump held: as they were, before anything runs.
  if (files_ && !procs_.empty()) {
    for (const RepairedSocket& r : files_->repaired) ReleaseConnection(r);
    files_->repaired.clear();
  }
  for (Dumped& d : procs_) {
    Tracee& t = *d.tracee;
    if (!d.sem_undo.empty()) {
      Status st = EnsureScratch(d);
      if (st.ok()) st = GiveSemUndo(t, d.scratch, kScratchSize, d.sem_undo);
      if (!st.ok()) fprintf(stderr, "roam: warning: its semaphore adjustments: %s\n", st.message().c_str());
    }
    if (d.scratch != 0) {
      (void)t.Syscall(SYS_munmap, d.scratch, kScratchSize);
      d.scratch = 0;
    }
    for (auto& th : d.threads) ResumeThread(*th);
    ResumeThread(t);
    (void)DetachProcess(t, d.threads, t.was_stopped());
  }
  procs_.clear();
}

Result<CheckpointReport> TreeDump::Dump(ImageSink& sink, const DumpOptions& options) {
  sink_ = &sink;
  share_cow_ = options.share_cow && options.kept.empty();
  files_ = std::make_unique<FileTableBuilder>(sink_);
  files_->set_root(root_);
  std::set<pid_t> tree;
  for (const Dumped& d : procs_) tree.insert(d.tracee->pid());
  files_->set_tree(std::move(tree));
  if (options.stdio_stays) files_->set_stdio_stays(root_);
  stats_ = MemoryStats();
  inventory_.Clear();
  Status st;
  for (Dumped& d : procs_) {
    d.image.Clear();
    auto kept = options.kept.find(d.tracee->pid());
    st = DumpOne(d, kept == options.kept.end() ? RangeSet() : RangeSet(kept->second));
    if (!st.ok()) return st;
  }
  // System V objects, and the adjustments processes hold on semaphores
  // (taken out once: a second Dump finds them taken), seen from the tree's
  // IPC namespace, which must be every process's.
  if (ipc_ns_ < 0) ipc_ns_ = open(ProcPath(root_, "ns/ipc").c_str(), O_RDONLY | O_CLOEXEC);
  if (ipc_ns_ < 0) return Status::Errno("open " + ProcPath(root_, "ns/ipc"));
  struct stat root_ns;
  fstat(ipc_ns_, &root_ns);
  for (Dumped& d : procs_) {
    struct stat ns;
    if (stat(ProcPath(d.tracee->pid(), "ns/ipc").c_str(), &ns) == 0 && ns.st_ino != root_ns.st_ino) {
      return Status::Error(StatusCode::kCantMove, "pid " + std::to_string(d.tracee->pid()) +
                                                      " is in another IPC namespace than its tree's root");
    }
  }
  InIpcNamespace in_ns;
  st = in_ns.Enter(ipc_ns_);
  if (!st.ok()) return st;
  if (!sem_drained_) {
    sem_drained_ = true;
    st = sysv_.Begin();
    for (Dumped& d : procs_) {
      if (st.ok()) st = sysv_.Drain(*d.tracee, d.threads, &d.sem_undo);
    }
    if (!st.ok()) return st;
  }
  std::set<pid_t> pids;
  std::vector<const pb::ProcessImage*> images;
  for (Dumped& d : procs_) {
    for (const pb::SemUndo& u : d.sem_undo) *d.image.add_sem_undo() = u;
    pids.insert(d.tracee->pid());
    images.push_back(&d.image);
  }
  st = sysv_.Record(pids, images, *files_);
  if (!st.ok()) return st;
  st = files_->Finish();
  if (!st.ok()) return st;
  carried_.Clear();
  *carried_.mutable_sysv_shm() = files_->table().sysv_shm();
  *carried_.mutable_sysv_sem() = files_->table().sysv_sem();
  *carried_.mutable_sysv_msg() = files_->table().sysv_msg();
  // Controlling terminals, now that the job's terminals are known.
  for (Dumped& d : procs_) {
    const pid_t pid = d.tracee->pid();
    st = ResolveControllingTerminal(*files_, d.stat, &d.image);
    if (!st.ok()) return st;
    if (pid == root_ && options.stdio_stays && options.root_leads_session) {
      d.image.set_sid(pid);
      d.image.set_pgid(pid);
      d.image.set_ctty_file(files_->FirstJobTerminal());
      d.image.set_tpgid(d.image.ctty_file() != 0 ? pid : 0);
    }
  }
  st = WriteImage();
  if (!st.ok()) return st;
  CheckpointReport report;
  report.processes = static_cast<int>(procs_.size());
  report.pages_saved = stats_.pages_saved;
  report.zero_pages_skipped = stats_.zero_pages_skipped;
  for (const pb::ImageFileSum& s : inventory_.files()) report.image_bytes += s.size();
  report.freeze_ns = NowNs() - freeze_start_;
  inventory_.set_freeze_ns(report.freeze_ns);
  Trace("written", freeze_start_);
  return report;
}

Status TreeDump::Seal() {
  // The image is complete once the inventory, written last, is there (and
  // on disk, for a sink that syncs).
  if (sink_ == nullptr) return Status::Error("nothing dumped to seal");
  Status st = sink_->Sync();
  if (!st.ok()) return st;
  Result<ImageFileHeader> h = WriteRecord(*sink_, kInventoryFile, ImageFileKind::kInventory, inventory_);
  if (h.ok()) st = sink_->Sync();
  return h.ok() ? st : h.status();
}

void TreeDump::KillAll() {
  if (!procs_.empty() && freeze_end_ == 0) freeze_end_ = NowNs();
  for (const Dumped& d : procs_) {
    if (d.tracee->pid() > 0) kill(d.tracee->pid(), SIGKILL);
  }
  // Threads first: a leader is reported dead only once its threads are
  // reaped, and we, their tracer, must reap them.
  for (Dumped& d : procs_) {
    int status;
    for (auto& th : d.threads) {
      while (waitpid(th->pid(), &status, __WALL) < 0 && errno == EINTR) {
      }
    }
    while (waitpid(d.tracee->pid(), &status, __WALL) < 0 && errno == EINTR) {
    }
  }
  procs_.clear();
}

Status TreeDump::ExecRoot(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                          uint64_t min_open_files) {
  if (procs_.empty() || argv.empty()) return Status::Error("nothing to exec");
  Dumped& d = procs_.front();
  Tracee& t = *d.tracee;
  // execve ends the other threads and waits until they are reaped: by us,
  // their tracer, while it runs. Should it fail before that point, they
  // are as they were.
  std::vector<pid_t> tids;
  for (const auto& th : d.threads) tids.push_back(th->pid());
  // The new program's stdio is the process's: a close-on-exec flag on fds
  // 0-2 (node.js sets it on its stdio) would leave the deputy without its
  // output, and the process lost with it. Put back should the exec fail.
  long stdio_flags[3];
  for (int fd = 0; fd < 3; ++fd) {
    Result<long> f = t.Syscall(SYS_fcntl, fd, F_GETFD);
    stdio_flags[fd] = f.ok() ? *f : -1;
    if (stdio_flags[fd] > 0 && (stdio_flags[fd] & FD_CLOEXEC) != 0) {
      Result<long> r = t.SyscallOk("fcntl F_SETFD", SYS_fcntl, fd, F_SETFD, stdio_flags[fd] & ~FD_CLOEXEC);
      if (!r.ok()) return r.status().Prefixed("fd " + std::to_string(fd) + ": ");
    }
  }
  // Its file locks are its copy's now (the target takes them once this is
  // done): the deputy it becomes holds its fds, and must not hold them on.
  const std::vector<pb::FileLock> locks(d.image.locks().begin(), d.image.locks().end());
  const bool pending = !d.image.pending_thread().empty() || !d.image.pending_shared().empty() || t.was_stopped();
  Status st = locks.empty() && !pending ? Status::Ok() : EnsureScratch(d);
  const bool release = st.ok() && !locks.empty();
  if (release) st = ReleaseLocks(t, d.scratch, locks);
  // Its pending signals went with the image (the exec would keep them).
  Result<DroppedSignals> dropped = DroppedSignals{};
  if (st.ok() && pending) dropped = DropDumpedSignals(t, d.scratch, d.image);
  if (st.ok() && !dropped.ok()) st = dropped.status();
  if (st.ok()) {
    t.ReapWhileWaiting(tids);
    st = t.ExecProgram(argv, env, min_open_files);
    t.ReapWhileWaiting({});
    if (!st.ok() && dropped.ok()) {
      Status back = RequeueDropped(t, d.scratch, *dropped);
      if (!back.ok())
        fprintf(stderr, "roam: error: its pending signals could not be queued again: %s\n", back.message().c_str());
    }
  }
  if (!st.ok() && release) {
    Status back = TakeLocks(t, d.scratch, locks);
    if (!back.ok())
      fprintf(stderr, "roam: error: its file locks could not be taken back: %s\n", back.message().c_str());
  }
  if (!st.ok()) {
    for (int fd = 0; fd < 3; ++fd) {
      if (stdio_flags[fd] > 0 && (stdio_flags[fd] & FD_CLOEXEC) != 0) {
        (void)t.Syscall(SYS_fcntl, fd, F_SETFD, stdio_flags[fd]);
      }
    }
    return st;
  }
  d.threads.clear();  // gone with the exec
  // execve keeps the signal mask: the deputy starts with the engine's, all
  // blocked, so that a signal that came after the dump waits for it to be
  // ready, and it passes the signal on (the process's own mask would let
  // it kill the deputy first, its handler gone with the exec).
  // The root is a new program now: let it go as it is, and the rest of the
  // tree (whose copies run elsewhere) dies.
  (void)t.Detach(0);
  if (freeze_end_ == 0) freeze_end_ = NowNs();
  procs_.erase(procs_.begin());
  KillAll();
  return Status::Ok();
}

// ---- FrozenTree: the library face of TreeDump ------------------------------------------

FrozenTree::FrozenTree(std::unique_ptr<TreeDump> dump) : dump_(std::move(dump)) {}
FrozenTree::~FrozenTree() = default;

Result<DirtyTracker> FrozenTree::Track(pid_t pid, const std::vector<PageRange>& ranges) {
  return dump_->Track(pid, ranges);
}

Result<std::unique_ptr<FrozenTree>> FrozenTree::Freeze(pid_t root) {
  if (root == getpid()) return Status::Error("cannot checkpoint roam itself");
  auto dump = std::make_unique<TreeDump>(root);
  Status st = dump->Freeze();
  if (!st.ok()) return st;  // ~TreeDump lets go of whatever was seized
  Trace("freeze", NowNs() - dump->frozen_ns());
  return std::unique_ptr<FrozenTree>(new FrozenTree(std::move(dump)));
}

Result<CheckpointReport> FrozenTree::Dump(ImageSink& sink, const DumpOptions& options) {
  Result<CheckpointReport> r = dump_->Dump(sink, options);
  if (!r.ok()) sink.Abort();
  return r;
}

Status FrozenTree::Seal() {
  Status st = dump_->Seal();
  if (!st.ok() && dump_->sink() != nullptr) dump_->sink()->Abort();
  return st;
}

std::vector<pid_t> FrozenTree::pids() const { return dump_->pids(); }
pid_t FrozenTree::root() const { return dump_->root(); }
int64_t FrozenTree::frozen_ns() const { return dump_->frozen_ns(); }
void FrozenTree::Resume() { dump_->Release(); }
void FrozenTree::Kill() { dump_->KillAll(); }
void FrozenTree::RemoveCarried() { dump_->RemoveCarried(); }
Status FrozenTree::ExecRoot(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                            uint64_t min_open_files) {
  return dump_->ExecRoot(argv, env, min_open_files);
}

std::string CantMoveReason(pid_t root, const std::string& own_address) {
  std::vector<pid_t> queue{root};
  std::map<uint64_t, PipeUse> pipes;
  std::map<FileId, std::string> shm;
  for (size_t i = 0; i < queue.size() && i < 4096; ++i) {
    std::string why = CantMoveOne(queue[i], own_address, &pipes, &shm);
    if (!why.empty()) return why;
    Result<std::vector<pid_t>> kids = Children(queue[i]);
    if (kids.ok()) queue.insert(queue.end(), kids->begin(), kids->end());
  }
  // A pipe held above stdio, and not at stdio too, whose other end is
  // outside the tree: the dump refuses it (FileTableBuilder::Finish). A
  // pipe a job at home inherited from the user's session keeps it there:
  // the balancer tried it, failed and backed off, while roam ps said
  // nothing.
  const std::set<pid_t> tree(queue.begin(), queue.end());
  for (const auto& [ino, use] : pipes) {
    if (use.above_stdio && !use.at_stdio && !(use.read && use.write) && PipeHeldOutside(ino, tree)) return "pipe";
  }
  // POSIX shared memory another process uses too (CheckCarriedNotShared).
  if (!shm.empty() && SharedMemoryHolderOutside(shm, tree, nullptr) > 0) return "shm";
  return "";
}

namespace {

// A server being checkpointed: its new clients are held off (net_lock.h
// HoldPorts) and let in again as this goes, whatever happened (the tree
// resumed, or killed: they then find the port closed, as when a server
// stops).
class ClientHold {
 public:
  explicit ClientHold(const SocketBacklog& ports) : tcp_(ports.tcp_ports), udp_(ports.udp_ports) {
    held_ = HoldPorts(tcp_, udp_).ok();  // without CAP_NET_ADMIN: the tree still takes what waits
  }
  ~ClientHold() {
    if (held_) (void)LetPortsIn(tcp_, udp_);
  }
  ClientHold(const ClientHold&) = delete;
  ClientHold& operator=(const ClientHold&) = delete;

 private:
  std::set<uint16_t> tcp_, udp_;
  bool held_ = false;
};

// The tree takes the clients waiting in its sockets' queues before it is
// frozen (BacklogDrain's rules, as a move's): a server under load always
// has some, and one still queued refuses the dump (kBusy).
void TakeWaitingClients(pid_t root) {
  const auto start = std::chrono::steady_clock::now();
  BacklogDrain drain(start);
  for (;;) {
    const auto now = std::chrono::steady_clock::now();
    if (drain.MayFreeze(SocketBacklogOf(root), now)) return;
    std::this_thread::sleep_for(BacklogDrain::kEvery);
  }
}

}  // namespace

Result<CheckpointReport> Checkpoint(pid_t root, const std::string& dir, const CheckpointOptions& options) {
  Result<std::unique_ptr<DirImageSink>> sink = DirImageSink::Open(dir, /*sync=*/true);
  if (!sink.ok()) return sink.status();
  std::optional<ClientHold> hold;
  Result<SocketBacklog> ports = SocketBacklogOf(root);
  if (ports.ok() && !(ports->tcp_ports.empty() && ports->udp_ports.empty())) {
    hold.emplace(*ports);
    TakeWaitingClients(root);
  }
  Result<std::unique_ptr<FrozenTree>> tree = FrozenTree::Freeze(root);
  if (!tree.ok()) {
    (*sink)->Abort();  // the directory, if it made it
    return tree.status();
  }
  DumpOptions dump;
  dump.share_cow = true;  // `roam restore` hands shared pages over
  Result<CheckpointReport> r = (*tree)->Dump(**sink, dump);
  if (!r.ok()) return r;  // the tree resumes as *tree goes; Dump aborted the sink
  if (options.leave_running) {
    (*tree)->Resume();
    r->freeze_ns = (*tree)->frozen_ns();
  }
  Status st = (*tree)->Seal();
  if (!st.ok()) return st;
  if (!options.leave_running) {
    (*tree)->Kill();
    r->freeze_ns = (*tree)->frozen_ns();
  }
  return r;
}

}  // namespace roam
