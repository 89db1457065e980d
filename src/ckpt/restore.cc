// The restore, top to bottom: verify the image, create the seeds with the
// dumped PIDs, rebuild each seed into its process, let the tree go, wait.
#include "ckpt/restore.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <future>
#include <cstring>
#include <map>
#include <set>
#include <memory>

#include <fmt/format.h>
#include <xxhash.h>

#include "ckpt/clone_pid.h"
#include "ckpt/cow_share.h"
#include "ckpt/file_locks.h"
#include "ckpt/files.h"
#include "ckpt/image.h"
#include "ckpt/kernel_features.h"
#include "ckpt/memory.h"
#include "ckpt/page_stage.h"
#include "ckpt/sysv_ipc.h"
#include "ckpt/task_state.h"
#include "ckpt/tracee.h"
#include "common/cgroup_fs.h"
#include "common/file_util.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"
#include "common/proc_status.h"
#include "common/unique_fd.h"

namespace roam {

namespace {

// What a seed tells the restorer once it is ready to be rebuilt.
struct SeedReport {
  int32_t pid;
  int32_t ok;
  uint64_t helper;
  int32_t pages_fd;
  char error[200];
};

std::string PidTakenBy(pid_t pid) {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
  ProcStat ps;
  if (stat.ok() && ParseProcStat(*stat, &ps)) return "pid " + std::to_string(pid) + " is taken by " + ps.comm;
  return "pid " + std::to_string(pid) + " is taken";
}

// Whether `pid` may give itself a new /proc/PID/exe (PR_SET_MM_MAP exe_fd).
bool MayChangeExe(pid_t pid) {
  constexpr int kCapSysAdmin = 21, kCapCheckpointRestore = 40;
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/status");
  Result<ProcStatus> s = text.ok() ? ParseProcStatus(*text) : Result<ProcStatus>(text.status());
  return s.ok() && (s->cap_eff & ((1ULL << kCapSysAdmin) | (1ULL << kCapCheckpointRestore))) != 0;
}

// ---- the seed side: runs in the new processes, before they are rebuilt ----------

struct SeedContext {
  const Image* image = nullptr;
  OpenedFiles opened;
  std::map<int, int> pages_fd;  // pid -> fd of its page file
  int base = 0;
  int ready_fd = -1;
  // In place, when the seeds may not choose PIDs (see restore.h): the
  // restorer's help, and a pipe holding one token, taken by the process
  // of the tree that asks and forks.
  PidAsker ask_pid;
  int token_rd = -1, token_wr = -1;
  // Pre-copied memory this seed holds (page_stage.h): its own pieces and
  // those of its descendants-to-be.
  std::vector<StagedPiece> staged;
  bool shared_regions = false;  // `staged` are CowStage's regions, prepared by each seed
  bool own_session = false;     // RestoreOptions::own_session
};

// Whether `proc` leads its session once restored: it did, or it is the
// root of a tree whose session was outside it and gets its own.
bool LeadsSession(const Image& image, const pb::ProcessImage& proc, bool own_session) {
  if (proc.sid() == proc.pid()) return true;
  return own_session && proc.pid() == image.inventory.root_pid() && image.Find(proc.sid()) == nullptr;
}

constexpr int kPidAttempts = 50;

[[noreturn]] void SeedFail(SeedContext& ctx, pid_t pid, const std::string& message) {
  SeedReport r;
  memset(&r, 0, sizeof(r));
  r.pid = pid;
  r.ok = 0;
  snprintf(r.error, sizeof(r.error), "%s", message.c_str());
  (void)!write(ctx.ready_fd, &r, sizeof(r));
  _exit(1);
}

// Dispositions start from the defaults, not from whatever the restorer (or
// a deputy) had (a background job ignores SIGINT and SIGQUIT); the image's
// handlers are installed later.
void ResetDispositions() {
  struct {
    uint64_t handler, flags, restorer, mask;
  } dfl = {0, 0, 0, 0};  // the kernel's own default: no flags, no mask (glibc's signal() adds some)
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
}

// The root seed: every description of the tree at its planned fd, and each
// process's page file at its own.
Status SeedOpenFiles(SeedContext& ctx) {
  const Image& img = *ctx.image;
  Status st = ctx.opened.OpenAll(img.files, img.dir);
  if (!st.ok()) return st;
  for (const pb::ProcessImage& p : img.procs) {
    std::string path = img.dir + "/" + p.pages_file();
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return Status::Errno("open " + path);
    int at = ctx.pages_fd[p.pid()];
    if (fd != at && dup3(fd, at, O_CLOEXEC) < 0) {
      int err = errno;
      close(fd);
      return Status::Errno("dup3 page file", err);
    }
    if (fd != at) close(fd);
  }
  return Status::Ok();
}

// Every seed: the helper area (a syscall instruction and scratch space, in
// a hole of the dumped layout that is also free here), then the process's
// own fds at their numbers. Returns the helper's address.
Result<uint64_t> SeedPlaceFds(SeedContext& ctx, const pb::ProcessImage& proc) {
  std::vector<std::pair<uint64_t, uint64_t>> avoid;
  Result<std::string> maps_text = ReadFile("/proc/self/maps");
  if (!maps_text.ok()) return maps_text.status();
  Result<std::vector<VmaInfo>> maps = ParseMaps(*maps_text);
  if (!maps.ok()) return maps.status();
  for (const VmaInfo& v : *maps) avoid.emplace_back(v.start, v.end);
  uint64_t helper = FindHole(proc, kHelperSize, avoid);
  void* h = helper == 0 ? MAP_FAILED
                        : mmap(reinterpret_cast<void*>(helper), kHelperSize, PROT_READ | PROT_WRITE | PROT_EXEC,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (h == MAP_FAILED) return Status::Error("no room for the restorer's helper page");
  static_cast<unsigned char*>(h)[0] = 0x0f;  // syscall
  static_cast<unsigned char*>(h)[1] = 0x05;
  if (syscall(SYS_close_range, 0, ctx.base - 1, 0) != 0) return Status::Errno("close_range");
  // Its pidfds name their processes again (waiting for those not made yet).
  if (Status st = RenewPidfds(ctx.image->files, proc, ctx.opened); !st.ok()) return st;
  for (const pb::Fd& f : proc.fds()) {
    int from = ctx.opened.FdOf(f.file_id());
    if (from < 0 || dup3(from, f.fd(), f.cloexec() ? O_CLOEXEC : 0) < 0) {
      return Status::Errno("fd " + std::to_string(f.fd()), from < 0 ? EBADF : errno);
    }
  }
  Status st = RegisterEpollTargets(ctx.image->files, proc, ctx.opened);
  if (!st.ok()) return st;
  return helper;
}

// How many fd numbers a restore's seeds use for their own (StagingBase):
// the planned files and shared memory objects, a page file per process, the
// ready pipe, in place the line to the restorer and the PID token's pipes.
int StagingFds(const Image& image) {
  return image.files.files_size() + image.files.shmems_size() + static_cast<int>(image.procs.size()) + 16;
}

// The first fd number of the seeds' own (StagingFds of them), above every
// fd open here and `lower`, in a run of numbers where no process of the
// image has an fd: above the image's fds as a rule, in a gap below some of
// them when they reach the limit (valgrind keeps its own fds at its top).
// The seeds close every fd from there up but their own (CloseAbove).
int StagingBase(const Image& image, int lower = 0) {
  int base = std::max(lower, 3);
  if (DIR* d = opendir("/proc/self/fd")) {
    while (dirent* e = readdir(d)) {
      if (e->d_name[0] != '.') base = std::max(base, atoi(e->d_name) + 2);
    }
    closedir(d);
  }
  std::set<int> used;
  for (const pb::ProcessImage& p : image.procs) {
    for (const pb::Fd& f : p.fds()) used.insert(f.fd());
  }
  const int span = StagingFds(image);
  for (auto it = used.lower_bound(base); it != used.end() && *it < base + span; it = used.lower_bound(base)) {
    base = *it + 1;
  }
  return base;
}

// Closes every fd of the rebuilt process `t` from `base` up but those of
// `proc` (its own, in place since SeedPlaceFds): one call unless the
// seeds' fds lay in a gap below some of them.
Status CloseAbove(Tracee& t, const pb::ProcessImage& proc, int base) {
  std::set<int> own;
  for (const pb::Fd& f : proc.fds()) {
    if (f.fd() >= base) own.insert(f.fd());
  }
  uint64_t lo = static_cast<uint64_t>(base);
  for (int fd : own) {
    if (static_cast<uint64_t>(fd) > lo) {
      Status st = t.SyscallOk("close_range", SYS_close_range, lo, static_cast<uint64_t>(fd - 1), 0).status();
      if (!st.ok()) return st;
    }
    lo = static_cast<uint64_t>(fd) + 1;
  }
  return t.SyscallOk("close_range", SYS_close_range, lo, ~0U, 0).status();
}

// Whether `pid` is `top` or one of its descendants in the image.
bool InSubtree(const Image& img, pid_t pid, pid_t top) {
  for (size_t hops = 0; hops <= img.procs.size(); ++hops) {
    if (pid == top) return true;
    const pb::ProcessImage* p = img.Find(pid);
    if (p == nullptr) return false;
    pid = p->ppid();
  }
  return false;
}

// Whether the image records pages shared copy-on-write (cow_share.h).
bool SharesPages(const Image& img) {
  return std::any_of(img.procs.begin(), img.procs.end(), [](const pb::ProcessImage& p) { return p.inherited_size() > 0; });
}

// Whether a process of the subtree of `top` takes the piece.
bool PieceInSubtree(const Image& img, const StagedPiece& p, pid_t top) {
  if (InSubtree(img, p.pid, top)) return true;
  return std::any_of(p.also.begin(), p.also.end(), [&](pid_t other) { return InSubtree(img, other, top); });
}

// Staged pieces, before a fork of `child`: it inherits those of its
// subtree, no others (page tables are copied for what is inherited, and
// the pages lose their sole owner).
void ShareStagedWith(const SeedContext& ctx, pid_t child) {
  for (const StagedPiece& p : ctx.staged) {
    madvise(reinterpret_cast<void*>(p.at), p.len, PieceInSubtree(*ctx.image, p, child) ? MADV_DOFORK : MADV_DONTFORK);
  }
}

// Staged pieces, once every child is forked: this seed's own stay (and
// will be inherited again by whatever the process forks once it runs), the
// others go (its descendants have them, or they are of no process).
Status KeepOwnStaged(SeedContext& ctx, pid_t self) {
  std::vector<StagedPiece> own;
  for (const StagedPiece& p : ctx.staged) {
    void* at = reinterpret_cast<void*>(p.at);
    if (!p.For(self)) {
      munmap(at, p.len);
    } else if (madvise(at, p.len, MADV_DOFORK) != 0) {
      return Status::Errno("madvise MADV_DOFORK on staged memory");
    } else {
      own.push_back(p);
    }
  }
  ctx.staged = std::move(own);
  return Status::Ok();
}

// A child with PID `want`, as fork(): 0 in the child, its PID here.
// clone3(set_tid) if this process may; otherwise the restorer makes `want`
// the next PID and a plain fork takes it, again until it does (another
// process of the node may fork in between: that copy exits at once).
Result<pid_t> CreateChild(SeedContext& ctx, pid_t want) {
  pid_t got = CloneWithPid(want);
  if (got >= 0) return got;
  if (errno == EEXIST) return Status::Error(StatusCode::kBusy, PidTakenBy(want));
  if (errno != EPERM || !ctx.ask_pid) return Status::Errno("clone3 pid " + std::to_string(want));
  const std::string proc_dir = "/proc/" + std::to_string(want);
  for (int attempt = 0; attempt < kPidAttempts; ++attempt) {
    if (access(proc_dir.c_str(), F_OK) == 0) return Status::Error(StatusCode::kBusy, PidTakenBy(want));
    char token;
    if (read(ctx.token_rd, &token, 1) != 1) return Status::Errno("take the pid token");
    Status asked = ctx.ask_pid(want);
    got = asked.ok() ? static_cast<pid_t>(syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0)) : -1;
    if (got == 0) {
      if (static_cast<pid_t>(syscall(SYS_getpid)) != want) _exit(0);
      return 0;  // the token is the parent's to give back
    }
    const int err = errno;
    (void)!write(ctx.token_wr, &token, 1);
    if (!asked.ok()) return asked.Prefixed("pid " + std::to_string(want) + ": ");
    if (got < 0) return Status::Errno("fork for pid " + std::to_string(want), err);
    if (got == want) return got;
    waitpid(got, nullptr, 0);
  }
  return Status::Error(StatusCode::kBusy, "pid " + std::to_string(want) + ": other processes took it " +
                                              std::to_string(kPidAttempts) + " times in a row");
}

// In a new child: ends as the zombie `z` was, with its group, name and
// wait status, for its parent to wait for.
[[noreturn]] void BecomeZombie(const pb::Zombie& z) {
  if (z.pgid() == z.pid()) {
    setpgid(0, 0);
  } else {
    (void)setpgid(0, z.pgid());  // the group may not exist (yet): it keeps its parent's
  }
  prctl(PR_SET_NAME, z.comm().c_str(), 0, 0, 0);
  const int status = z.wait_status();
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    rlimit none{0, 0};
    setrlimit(RLIMIT_CORE, &none);
    struct {
      uint64_t handler, flags, restorer, mask;
    } dfl = {0, 0, 0, 0};
    syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
    sigset_t one;
    sigemptyset(&one);
    sigaddset(&one, sig);
    sigprocmask(SIG_UNBLOCK, &one, nullptr);
    syscall(SYS_kill, syscall(SYS_getpid), sig);
  }
  syscall(SYS_exit_group, WIFEXITED(status) ? WEXITSTATUS(status) : 255);
  __builtin_unreachable();
}

// The zombies of `proc`: its children that had exited and that it had
// not waited for, made again and left unwaited. Their SIGCHLD is not
// passed on (the process had taken it, or its pending signals say so).
Status MakeZombies(SeedContext& ctx, const pb::ProcessImage& proc) {
  for (const pb::Zombie& z : proc.zombies()) {
    ShareStagedWith(ctx, z.pid());  // no staged memory: its pages are not copied
    Result<pid_t> got = CreateChild(ctx, z.pid());
    if (!got.ok()) return got.status().Prefixed("zombie ");
    if (*got == 0) BecomeZombie(z);
    siginfo_t info;
    if (waitid(P_PID, static_cast<id_t>(*got), &info, WEXITED | WNOWAIT) != 0) {
      return Status::Errno("wait for zombie " + std::to_string(*got));
    }
  }
  if (proc.zombies_size() > 0) {
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    timespec now{0, 0};
    while (sigtimedwait(&chld, nullptr, &now) == SIGCHLD) {
    }
  }
  return Status::Ok();
}

[[noreturn]] void SeedMain(SeedContext& ctx, const pb::ProcessImage& proc, bool root) {
  const Image& img = *ctx.image;
  pid_t self = proc.pid();
  if (static_cast<pid_t>(syscall(SYS_getpid)) != self) SeedFail(ctx, self, "seed created with the wrong pid");
  if (!root) {  // it inherited its subtree's pieces only
    std::erase_if(ctx.staged, [&](const StagedPiece& p) { return !PieceInSubtree(img, p, self); });
  }
  ResetDispositions();
  if (root) {
    // The ready pipe first, above everything planned.
    int top = ctx.opened.next_free() + static_cast<int>(img.procs.size());
    int ready = fcntl(ctx.ready_fd, F_DUPFD_CLOEXEC, top);
    close(ctx.ready_fd);
    ctx.ready_fd = ready;
    Status st = SeedOpenFiles(ctx);
    if (!st.ok()) SeedFail(ctx, self, st.message());
  }
  // In place, the other processes must not outlive a root seed that dies
  // unrebuilt (the rebuild sets the image's own parent-death signal).
  if (!root && ctx.token_rd >= 0) prctl(PR_SET_PDEATHSIG, SIGKILL);
  const bool leads = LeadsSession(*ctx.image, proc, ctx.own_session);
  if (leads && setsid() < 0) SeedFail(ctx, self, std::string("setsid: ") + strerror(errno));
  if (leads && proc.ctty_file() != 0) {
    Status st = TakeControllingTerminal(ctx.opened.FdOf(proc.ctty_file()));
    if (!st.ok()) SeedFail(ctx, self, st.message());
  }
  // Pages shared copy-on-write: its copies of the regions hold its own
  // contents before its children inherit them (cow_share.h).
  if (ctx.shared_regions) {
    Status st = PrepareSharedRegions(proc, ctx.staged, ctx.pages_fd[self]);
    if (!st.ok()) SeedFail(ctx, self, st.message());
  }
  for (const pb::ProcessImage& child : img.procs) {
    if (child.ppid() != self || child.pid() == img.inventory.root_pid()) continue;
    ShareStagedWith(ctx, child.pid());
    Result<pid_t> got = CreateChild(ctx, child.pid());
    if (!got.ok()) SeedFail(ctx, self, got.status().message());
    if (*got == 0) SeedMain(ctx, child, false);
  }
  if (Status st = MakeZombies(ctx, proc); !st.ok()) SeedFail(ctx, self, st.message());
  if (Status st = KeepOwnStaged(ctx, self); !st.ok()) SeedFail(ctx, self, st.message());
  Result<uint64_t> helper = SeedPlaceFds(ctx, proc);
  if (!helper.ok()) SeedFail(ctx, self, helper.status().message());
  SeedReport r;
  memset(&r, 0, sizeof(r));
  r.pid = self;
  r.ok = 1;
  r.helper = *helper;
  r.pages_fd = ctx.pages_fd[self];
  if (write(ctx.ready_fd, &r, sizeof(r)) != sizeof(r)) _exit(1);
  for (;;) syscall(SYS_pause);
}

}  // namespace

[[noreturn]] void BecomeStagedSeed(const std::string& dir, int base, int ready_fd,
                                   const std::vector<std::pair<int, int>>& inherited,
                                   const std::vector<StagedPiece>& staged, bool own_session) {
  // The restorer's plan, made again here from the same records and numbers.
  SeedContext ctx;
  ctx.ready_fd = ready_fd;
  ctx.own_session = own_session;
  ctx.staged = staged;
  Result<Image> image = LoadImage(dir, /*verify_payloads=*/false);  // the restorer verified them
  if (!image.ok()) SeedFail(ctx, static_cast<pid_t>(syscall(SYS_getpid)), image.status().message());
  ctx.image = &*image;
  ctx.base = base;
  ctx.opened.Plan(image->files, base);
  ctx.opened.set_inherited(std::map<int, int>(inherited.begin(), inherited.end()));
  int next = ctx.opened.next_free();
  for (const pb::ProcessImage& p : image->procs) ctx.pages_fd[p.pid()] = next++;
  SeedMain(ctx, image->procs.front(), true);
}

namespace {

// ---- the restorer side ----------------------------------------------------------

Result<std::pair<uint64_t, std::string>> OwnVdso() {
  Result<std::string> text = ReadFile("/proc/self/maps");
  if (!text.ok()) return text.status();
  Result<std::vector<VmaInfo>> maps = ParseMaps(*text);
  if (!maps.ok()) return maps.status();
  for (const VmaInfo& v : *maps) {
    if (v.path != "[vdso]") continue;
    return std::make_pair(v.start, std::string(reinterpret_cast<const char*>(v.start), v.end - v.start));
  }
  return Status::Error("this process has no [vdso]");
}

}  // namespace

// ---- the seed side, in place: a deputy becomes the seed ------------------------------

namespace {

// The tree's other processes that an in-place seed made (those whose
// parent is one of the tree's), all found before any is killed (a child of
// a killed one is soon another's). Killed, and those that are the caller's
// children (or tracees) waited for; the rest go to their parent's reaping.
using ThreadTracees = std::map<pid_t, std::vector<std::unique_ptr<Tracee>>>;

// After a SIGKILL to `pid`: its threads' exits, which we take as their
// tracer (its own exit is reported only once they are taken).
void ReapThreads(ThreadTracees& threads, pid_t pid) {
  auto it = threads.find(pid);
  if (it == threads.end()) return;
  for (const auto& t : it->second) {
    while (waitpid(t->pid(), nullptr, __WALL) < 0 && errno == EINTR) {
    }
  }
  threads.erase(it);
}

// `threads`: those of the processes we trace, if any.
void KillInPlaceChildren(const std::vector<pid_t>& tree, pid_t root, ThreadTracees* threads = nullptr) {
  std::vector<pid_t> found;
  for (pid_t pid : tree) {
    if (pid == root) continue;
    Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid) + "/stat");
    ProcStat ps;
    if (stat.ok() && ParseProcStat(*stat, &ps) && std::find(tree.begin(), tree.end(), ps.ppid) != tree.end()) {
      found.push_back(pid);
    }
  }
  for (pid_t pid : found) kill(pid, SIGKILL);
  for (pid_t pid : found) {
    if (threads != nullptr) ReapThreads(*threads, pid);
    while (waitpid(pid, nullptr, __WALL) < 0 && errno == EINTR) {
    }
  }
}

// The reports of the tree's other processes, from the ready pipe.
Status CollectChildReports(const Image& img, int ready_rd, std::vector<InPlaceSeed::Child>* out) {
  std::map<pid_t, InPlaceSeed::Child> got;
  while (got.size() + 1 < img.procs.size()) {
    pollfd pfd{ready_rd, POLLIN, 0};
    if (poll(&pfd, 1, 20000) <= 0) return Status::Error("the tree's other processes did not get ready in 20 s");
    SeedReport r;
    if (read(ready_rd, &r, sizeof(r)) != sizeof(r)) return Status::Error("a new process died while being set up");
    r.error[sizeof(r.error) - 1] = '\0';
    if (!r.ok) return Status::Error("pid " + std::to_string(r.pid) + ": " + r.error);
    got[r.pid] = InPlaceSeed::Child{r.pid, r.helper, r.pages_fd};
  }
  for (const pb::ProcessImage& p : img.procs) {  // parents first, as the image lists them
    if (got.count(p.pid())) out->push_back(got[p.pid()]);
  }
  return Status::Ok();
}

// Reaps, by calls injected into the traced process `t`, its children that
// are dead or dying (up to 2 s).
void ReapChildren(Tracee& t) {
  for (int round = 0; round < 200; ++round) {
    Result<long> r = t.Syscall(SYS_wait4, static_cast<uint64_t>(-1), 0, WNOHANG | __WALL, 0);
    if (!r.ok() || *r < 0) return;  // ECHILD: none left
    if (*r == 0) usleep(10000);
  }
}

}  // namespace

Result<InPlaceSeed> PrepareInPlaceSeed(const std::string& dir, int* keep_fd, const PidAsker& ask_pid,
                                       const std::vector<StagedPiece>& staged) {
  // The records only: the restorer checks every payload's checksum before
  // it touches this process (RestoreInPlace), so reading them all here too
  // would only lengthen the frozen window.
  Result<Image> image = LoadImage(dir, /*verify_payloads=*/false);
  if (!image.ok()) return image.status();
  const Image& img = *image;
  const pb::ProcessImage& proc = img.procs.front();
  const pid_t self = static_cast<pid_t>(syscall(SYS_getpid));
  if (proc.pid() != self || img.inventory.root_pid() != self) {
    return Status::Error("the image is of pid " + std::to_string(proc.pid()) + ", this is " + std::to_string(self));
  }
  SeedContext ctx;
  ctx.image = &img;
  ctx.staged = staged;
  ctx.base = StagingBase(img);
  ctx.opened.Plan(img.files, ctx.base);  // image fds that led outside: ours of the same number
  int next = ctx.opened.next_free();
  for (const pb::ProcessImage& p : img.procs) ctx.pages_fd[p.pid()] = next++;
  // The line to the restorer, then (a tree) the ready pipe and the PID
  // token, above everything planned (they go with the restorer's
  // close_range of the seeds' fds).
  int keep = fcntl(*keep_fd, F_DUPFD_CLOEXEC, next + 1);
  if (keep < 0) return Status::Errno("fcntl F_DUPFD");
  close(*keep_fd);
  *keep_fd = keep;
  // Other processes to make: the tree's, and the root's zombies (an
  // ordinary user's seed asks for their PIDs too).
  const bool tree = img.procs.size() > 1 || proc.zombies_size() > 0;
  int ready_rd = -1;
  if (tree) {
    int ready[2], token[2];
    if (pipe2(ready, O_CLOEXEC) != 0 || pipe2(token, O_CLOEXEC) != 0) return Status::Errno("pipe2");
    int fds[4] = {ready[0], ready[1], token[0], token[1]};
    for (int& fd : fds) {
      int moved = fcntl(fd, F_DUPFD_CLOEXEC, keep + 1);
      close(fd);
      if (moved < 0) return Status::Errno("fcntl F_DUPFD");
      fd = moved;
    }
    ready_rd = fds[0];
    ctx.ready_fd = fds[1];
    ctx.token_rd = fds[2];
    ctx.token_wr = fds[3];
    if (write(ctx.token_wr, "t", 1) != 1) return Status::Errno("write the pid token");
    ctx.ask_pid = ask_pid;
  }
  ResetDispositions();
  Status st = SeedOpenFiles(ctx);
  if (!st.ok()) return st;
  InPlaceSeed seed;
  for (const pb::ProcessImage& child : img.procs) {
    if (!st.ok()) break;
    if (child.ppid() != self || child.pid() == self) continue;
    ShareStagedWith(ctx, child.pid());
    Result<pid_t> got = CreateChild(ctx, child.pid());
    if (got.ok() && *got == 0) SeedMain(ctx, child, false);
    st = got.status();
  }
  if (st.ok()) st = MakeZombies(ctx, proc);
  if (st.ok()) st = KeepOwnStaged(ctx, self);
  if (st.ok() && tree) st = CollectChildReports(img, ready_rd, &seed.children);
  if (tree) {
    for (int fd : {ready_rd, ctx.ready_fd, ctx.token_rd, ctx.token_wr}) close(fd);
  }
  Result<uint64_t> helper = st.ok() ? SeedPlaceFds(ctx, proc) : Result<uint64_t>(st);
  if (!helper.ok()) {
    if (tree) {
      std::vector<pid_t> pids;
      for (const pb::ProcessImage& p : img.procs) pids.push_back(p.pid());
      KillInPlaceChildren(pids, self);
    }
    return helper.status();
  }
  seed.base = ctx.base;
  seed.helper = *helper;
  seed.pages_fd = ctx.pages_fd[proc.pid()];
  return seed;
}

class TreeRestore {
 public:
  TreeRestore(Image image, const RestoreOptions& options) : image_(std::move(image)), options_(options) {}
  ~TreeRestore() {
    if (!done_) KillAll();
  }
  // Everything up to the registers: the tree is held, not running.
  Status Run();
  // `loaded`: whether the image could be read (if not, the fallback at once).
  Status RunInPlace(pid_t pid, const InPlaceSeed& seed, InPlaceFallback fallback, const Status& loaded);
  // Before the fallback's exec: drops the image's pending signals the
  // rebuild queued in the root (DropDumpedSignals).
  void DropQueuedSignals(Tracee& t);
  Status TakeLocks();
  Status Release();
  void KillAll();
  pid_t root() const { return root_; }
  std::vector<pid_t> pids() const {
    std::vector<pid_t> out;
    for (const pb::ProcessImage& p : image_.procs) out.push_back(p.pid());
    return out;
  }

 private:
  Status CheckCompatible();
  Status CreateSeeds();
  // Every seed under ptrace, its signals blocked, in the image's order.
  Status SeizeSeeds();
  // Process groups the tree made itself, leaders first; a group outside
  // the tree is the caller's. In place, the root's group and session are
  // the deputy's, which are the home's truth (the image has the guest's):
  // kept, and the others that shared them share them again by inheritance.
  Status JoinGroups();
  // The above, then every process rebuilt, held.
  Status RebuildAll();
  // The fd of TCP connection `d` in its owner, once rebuilt (-1 if none).
  int ConnectionFd(const pb::FileDesc& d) const;
  // An in-place seed's report, taken from its InPlaceSeed.
  void Reported(pid_t pid, uint64_t helper, int pages_fd);
  Status Rebuild(const pb::ProcessImage& proc, Tracee& t);
  void Fallback();

  Image image_;
  RestoreOptions options_;
  SysvObjects sysv_;  // destroyed after the tree: what it made goes if the restore fails
  CowStage cow_;      // pages shared copy-on-write, staged for the seeds
  SeedContext ctx_;
  std::map<int, SeedReport> reports_;
  std::vector<std::unique_ptr<Tracee>> tracees_;
  ThreadTracees threads_;  // each process's threads besides its leader, held
  uint64_t vdso_syscall_offset_ = 0;
  pid_t root_ = 0;
  bool created_ = false, done_ = false;
  bool in_place_ = false;  // the root existed before: never killed, it execs fallback_
  bool root_signals_queued_ = false;          // in place: the image's pending signals queued in the root
  std::vector<StagedPiece> staged_in_place_;  // the tree's pre-copied memory (InPlaceSeed::staged)
  InPlaceFallback fallback_;
};

Status TreeRestore::CheckCompatible() {
  const pb::Inventory& inv = image_.inventory;
  Result<std::pair<uint64_t, std::string>> vdso = OwnVdso();
  if (!vdso.ok()) return vdso.status();
  if (inv.vdso_size() != 0 &&
      (inv.vdso_size() != vdso->second.size() || inv.vdso_xxh3() != XXH3_64bits(vdso->second.data(), vdso->second.size()))) {
    return Status::Error("the image was taken under another kernel (its vDSO differs from this one's: " +
                         inv.kernel_release() + ")");
  }
  uint64_t ip = 0;
  size_t at = vdso->second.find(std::string("\x0f\x05", 2));
  if (at == std::string::npos) return Status::Error("no syscall instruction in the vDSO");
  ip = at;
  vdso_syscall_offset_ = ip;
  if (const uint64_t xcr0 = ProbeXsave().xcr0; (inv.xfeatures() & ~xcr0) != 0) {
    return Status::Error(StatusCode::kMismatch, "the image uses CPU register state this CPU lacks (XSAVE features 0x" +
                                                    fmt::format("{:x}", inv.xfeatures()) + ", here 0x" +
                                                    fmt::format("{:x}", xcr0) + ")");
  }
  for (const pb::ProcessImage& p : image_.procs) {
    if (in_place_) break;  // the seed made them all
    if (options_.stage != nullptr && p.pid() == options_.stage->pid()) continue;  // the staged root: ours
    if (access(("/proc/" + std::to_string(p.pid())).c_str(), F_OK) == 0) return Status::Error(StatusCode::kBusy, PidTakenBy(p.pid()));
  }
  for (const pb::ProcessImage& p : image_.procs) {  // threads are made by the rebuild, in place too
    for (const pb::ThreadImage& t : p.threads()) {
      if (access(("/proc/" + std::to_string(t.tid())).c_str(), F_OK) == 0) return Status::Error(StatusCode::kBusy, PidTakenBy(t.tid()));
    }
  }
  return Status::Ok();
}

Status TreeRestore::CreateSeeds() {
  // A staged root holds the fds it is passed at its lowest numbers.
  ctx_.base = StagingBase(image_, options_.stage != nullptr ? image_.files.files_size() + 16 : 0);
  rlimit lim;
  getrlimit(RLIMIT_NOFILE, &lim);
  rlim_t need = static_cast<rlim_t>(ctx_.base) + StagingFds(image_);
  // An image whose fds leave no room for the seeds' own below the limit:
  // raised for the restore where we may (CAP_SYS_RESOURCE); each process
  // gets its own limit back (RestoreRlimits) once those are closed.
  if (need > lim.rlim_max) {
    rlimit raised{need, need};
    if (setrlimit(RLIMIT_NOFILE, &raised) != 0) {
      return Status::Error("the image needs " + std::to_string(need) + " file descriptors, the limit is " +
                           std::to_string(lim.rlim_max));
    }
    lim = raised;
  }
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  ctx_.image = &image_;
  ctx_.own_session = options_.own_session;
  ctx_.opened.Plan(image_.files, ctx_.base);
  ctx_.opened.set_inherited(options_.inherited_fds);
  int next = ctx_.opened.next_free();
  for (const pb::ProcessImage& p : image_.procs) ctx_.pages_fd[p.pid()] = next++;
  int ready[2];
  if (pipe2(ready, O_CLOEXEC) != 0) return Status::Errno("pipe2");
  ctx_.ready_fd = ready[1];
  root_ = image_.inventory.root_pid();
  if (PageStage* stage = options_.stage) {
    if (stage->pid() != root_ || SharesPages(image_)) {
      close(ready[0]);
      close(ready[1]);
      if (stage->pid() == root_) return Status::Error("an image with pages shared copy-on-write cannot be restored into a staged process");
      return Status::Error("the staged process is pid " + std::to_string(stage->pid()) + ", the image's root " +
                           std::to_string(root_));
    }
    // Every fd that led outside the tree, from the caller's fd it maps to.
    std::vector<std::pair<int, int>> inherited;
    std::set<int> taken;
    for (const pb::FileDesc& d : image_.files.files()) {
      if (d.kind() != pb::FILE_INHERITED && d.kind() != pb::FILE_TERMINAL) continue;
      if (!taken.insert(d.inherit_fd()).second) continue;
      auto from = options_.inherited_fds.find(d.inherit_fd());
      inherited.emplace_back(d.inherit_fd(), from == options_.inherited_fds.end() ? d.inherit_fd() : from->second);
    }
    created_ = true;  // ours from here, whatever happens (KillAll)
    Status st = Status::Ok();
    // The staged root waits: in before it makes anything.
    if (!options_.cgroup.empty()) st = MoveToCgroup(options_.cgroup, stage->pid());
    if (st.ok()) st = stage->Become(image_.dir, ctx_.base, ready[1], inherited, options_.own_session);
    close(ready[1]);
    if (!st.ok()) {
      close(ready[0]);
      return st;
    }
  } else {
    // Pages shared copy-on-write: regions mapped here, inherited by every
    // seed through the forks below, each seed filling its copy.
    Status st = cow_.Stage(image_);
    if (!st.ok()) {
      close(ready[0]);
      close(ready[1]);
      return st;
    }
    ctx_.staged = cow_.pieces();
    ctx_.shared_regions = !cow_.pieces().empty();
    UniqueFd cgroup;
    if (!options_.cgroup.empty()) {
      cgroup.reset(open(options_.cgroup.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (!cgroup.ok()) {
        Status err = Status::Errno("open " + options_.cgroup);
        close(ready[0]);
        close(ready[1]);
        return err;
      }
    }
    pid_t got = CloneWithPid(root_, cgroup.get());
    if (got == 0) {
      close(ready[0]);
      SeedMain(ctx_, image_.procs.front(), true);
    }
    int err = errno;
    close(ready[1]);
    if (got < 0) {
      close(ready[0]);
      if (err == EEXIST) return Status::Error(StatusCode::kBusy, PidTakenBy(root_));
      return Status::Errno("clone3 with pid " + std::to_string(root_), err);
    }
  }
  created_ = true;
  reports_[root_].pid = 0;  // created, not yet reported
  Status st;
  while (st.ok() && static_cast<size_t>(std::count_if(reports_.begin(), reports_.end(), [](auto& r) {
                      return r.second.ok == 1;
                    })) < image_.procs.size()) {
    pollfd pfd{ready[0], POLLIN, 0};
    if (poll(&pfd, 1, 20000) <= 0) {
      st = Status::Error("the new processes did not get ready in 20 s");
      break;
    }
    SeedReport r;
    ssize_t n = read(ready[0], &r, sizeof(r));
    if (n != sizeof(r)) {
      st = Status::Error("a new process died while being set up");
      break;
    }
    r.error[sizeof(r.error) - 1] = '\0';
    reports_[r.pid] = r;
    if (!r.ok) st = Status::Error("pid " + std::to_string(r.pid) + ": " + r.error);
  }
  close(ready[0]);
  cow_.Release();  // the seeds hold their copies
  return st;
}

Status TreeRestore::Rebuild(const pb::ProcessImage& proc, Tracee& t) {
  // On the engine's CPU while it is rebuilt (a seed made by an earlier job
  // may sit on another); a deputy rebuilt in place gets its own mask back if
  // the rebuild fails, the recorded one if it succeeds.
  t.HoldOnThisCpu();
  const SeedReport& r = reports_[proc.pid()];
  SeedLayout seed;
  seed.helper = r.helper;
  seed.helper_size = kHelperSize;
  seed.pages_fd = r.pages_fd;
  // /proc/PID/exe: a new exe file needs CAP_SYS_ADMIN or
  // CAP_CHECKPOINT_RESTORE in the process itself. A restorer's seed has it
  // (root); a deputy rebuilt in place has it only if its user has.
  seed.set_exe = !in_place_ || MayChangeExe(t.pid());
  seed.sysv = &sysv_;
  if (options_.stage != nullptr) seed.staged = PiecesOf(options_.stage->pieces(), proc.pid());
  if (in_place_) seed.staged = PiecesOf(staged_in_place_, proc.pid());
  if (options_.stage == nullptr && !in_place_) {
    seed.staged = PiecesOf(cow_.pieces(), proc.pid());
    seed.from_staged = cow_.FromStaged(proc.pid());
  }
  uint64_t scratch = seed.helper + kScratchOffset;
  t.set_syscall_ip(seed.helper);
  Status st = DropSeedRseq(t);
  if (st.ok()) st = RestoreMemory(t, proc, ctx_.opened, seed);
  if (st.ok()) st = RestoreMmFields(t, proc, ctx_.opened, seed);
  if (st.ok()) st = RestoreSignalHandlers(t, scratch, proc);
  if (st.ok()) st = RestoreTimers(t, scratch, proc);
  if (st.ok()) st = RestoreTaskMisc(t, scratch, proc, proc.cwd_file() != 0 ? ctx_.opened.FdOf(proc.cwd_file()) : -1);
  if (st.ok()) st = RestoreKnobs(t, proc, /*from_outside=*/!in_place_);
  if (st.ok() && in_place_ && proc.pid() == root_) root_signals_queued_ = true;
  if (st.ok()) st = RestorePendingSignals(t, scratch, proc);
  if (st.ok()) st = RestoreRseq(t, proc);
  if (st.ok() && proc.pid() == root_) st = sysv_.FillFrom(t, scratch, kHelperSize - kScratchOffset);
  // Its semaphore adjustments, before its threads are made to share them.
  if (st.ok()) st = GiveSemUndo(t, scratch, kHelperSize - kScratchOffset, {proc.sem_undo().begin(), proc.sem_undo().end()},
                                sysv_.sem_ids());
  std::vector<std::unique_ptr<Tracee>>& threads = threads_[proc.pid()];
  if (st.ok()) st = MakeThreads(t, scratch, proc, in_place_ ? options_.ask_pid : nullptr, &threads);
  // Through the planned fd of its terminal, before those are closed.
  // (A foreground group that left the tree, e.g. a job reparented away,
  // is not there to get it back: the leader's group keeps it.)
  const bool fg_in_tree = std::any_of(image_.procs.begin(), image_.procs.end(),
                                      [&](const pb::ProcessImage& p) { return p.pgid() == proc.tpgid(); });
  if (st.ok() && proc.ctty_file() != 0 && fg_in_tree) {
    st = RestoreForeground(t, scratch, proc, ctx_.opened.FdOf(proc.ctty_file()), /*best_effort=*/in_place_);
  }
  if (st.ok()) st = CloseAbove(t, proc, ctx_.base);
  // Its file locks, through its own fds, now that no fd of theirs closes
  // (a move's target: later, TakeLocks).
  if (st.ok() && !options_.defer_locks) st = roam::TakeLocks(t, scratch, {proc.locks().begin(), proc.locks().end()});
  if (st.ok()) st = RestoreRlimits(t, scratch, proc, /*from_outside=*/!in_place_);
  // Credentials are each thread's own; in place: checked unchanged.
  for (size_t i = 0; st.ok() && !in_place_ && i < threads.size(); ++i) {
    const pb::ThreadImage& ti = proc.threads(static_cast<int>(i));  // made in this order (MakeThreads)
    st = RestoreCreds(*threads[i], scratch, ti.has_creds() ? ti.creds() : proc.creds());
  }
  if (st.ok() && !in_place_) st = RestoreCreds(t, scratch, proc.creds());
  if (!st.ok()) return st;
  // The helper area goes last, with a syscall instruction of the vDSO, or
  // for a process without one of its own code (the dump's).
  uint64_t vdso = 0;
  for (const pb::Vma& v : proc.vmas()) {
    if (v.kind() == pb::VMA_VDSO) vdso = v.start();
  }
  if (vdso == 0) {
    char insn[2] = {};
    if (proc.syscall_ip() == 0 || !t.ReadMemory(proc.syscall_ip(), insn, sizeof(insn)).ok() || insn[0] != 0x0f ||
        insn[1] != 0x05) {
      return Status::Error(fmt::format("process {} has no vDSO, and its image no syscall instruction (at 0x{:x})",
                                       proc.pid(), proc.syscall_ip()));
    }
  }
  t.set_syscall_ip(vdso != 0 ? vdso + vdso_syscall_offset_ : proc.syscall_ip());
  st = t.SyscallOk("munmap helper", SYS_munmap, seed.helper, seed.helper_size).status();
  if (st.ok()) st = RestoreSeccomp(t, proc);
  if (st.ok()) st = t.SetSigmask(proc.blocked());
  if (st.ok()) st = t.SetXstate(proc.xsave());
  if (st.ok()) {
    user_regs_struct regs;
    memcpy(&regs, proc.gpregs().data(), sizeof(regs));
    st = t.SetRegs(Tracee::ResumeRegs(regs, false));
  }
  for (size_t i = 0; st.ok() && i < threads.size(); ++i) {
    st = FinishThread(*threads[i], proc.threads(static_cast<int>(i)), /*from_outside=*/!in_place_);
  }
  // Last: a new mask may move it off the engine's CPU (EngineWorker).
  if (st.ok()) st = RestoreSched(t.pid(), proc, /*from_outside=*/!in_place_);
  if (st.ok()) t.KeepAffinity();
  if (!st.ok()) return Status::Error("restore pid " + std::to_string(proc.pid()) + ": " + st.message());
  return Status::Ok();
}

void TreeRestore::KillAll() {
  if (in_place_) return Fallback();
  done_ = true;
  if (!created_) return;
  created_ = false;
  tracees_.clear();  // detaching from a killed tracee is harmless
  // Every PID of the image: the seeds created so far, and nothing else
  // (a PID that was never created here is somebody else's).
  // Seeds that never reported are ours if their parent is (the image lists
  // parents before children).
  std::vector<pid_t> ours;
  auto is_ours = [&](pid_t pid) { return std::find(ours.begin(), ours.end(), pid) != ours.end(); };
  for (const pb::ProcessImage& p : image_.procs) {
    if (p.pid() <= 0) continue;
    bool mine = reports_.count(p.pid()) || p.pid() == root_;
    if (!mine) {
      Result<std::string> stat = ReadFile("/proc/" + std::to_string(p.pid()) + "/stat");
      ProcStat ps;
      mine = stat.ok() && ParseProcStat(*stat, &ps) && (is_ours(ps.ppid) || ps.ppid == getpid());
    }
    if (mine) ours.push_back(p.pid());
  }
  for (pid_t pid : ours) kill(pid, SIGKILL);
  for (pid_t pid : ours) ReapThreads(threads_, pid);
  // A seed's children go to its parent's subreaper when it dies; reap the
  // ones that came to us, leave the others to theirs. Bounded: 2 s.
  for (int round = 0; round < 200 && !ours.empty(); ++round) {
    for (auto it = ours.begin(); it != ours.end();) {
      int status;
      pid_t got = waitpid(*it, &status, WNOHANG | __WALL);
      if (got == *it || (got < 0 && errno == ECHILD && access(("/proc/" + std::to_string(*it)).c_str(), F_OK) != 0)) {
        it = ours.erase(it);
      } else if (got < 0 && errno == ECHILD) {
        kill(*it, SIGKILL);  // not ours to reap (yet): a zombie of a seed, or reparented elsewhere
        ++it;
      } else {
        ++it;
      }
    }
    if (!ours.empty()) usleep(10000);
  }
}

Status TreeRestore::SeizeSeeds() {
  for (const pb::ProcessImage& p : image_.procs) {
    auto t = std::make_unique<Tracee>(p.pid());
    Status st = t->Seize();
    tracees_.push_back(std::move(t));
    if (!st.ok()) return st;
    tracees_.back()->set_syscall_ip(reports_[p.pid()].helper);
    st = tracees_.back()->BlockSignals();
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Status TreeRestore::JoinGroups() {
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < image_.procs.size(); ++i) {
      const pb::ProcessImage& p = image_.procs[i];
      const bool leader = p.pgid() == p.pid();
      if ((pass == 0) != leader || LeadsSession(image_, p, options_.own_session)) continue;
      if (!leader && image_.Find(p.pgid()) == nullptr) continue;
      if (in_place_ && (p.pid() == root_ || p.pgid() == root_)) continue;  // the deputy's group: kept, inherited
      Status st = tracees_[i]->SyscallOk("setpgid", SYS_setpgid, 0, static_cast<uint64_t>(p.pgid())).status();
      if (!st.ok()) return st;
    }
  }
  return Status::Ok();
}

Status TreeRestore::RebuildAll() {
  Status st = SeizeSeeds();
  if (st.ok()) st = JoinGroups();
  // memfd seals: taken through the root's fds before its rebuild closes
  // them, added once every process has mapped its memfds.
  MemfdSeals seals;
  if (st.ok()) st = seals.Hold(image_.files, root_, ctx_.opened);
  // System V objects, before any process attaches or adjusts them.
  if (st.ok()) st = sysv_.Make(image_.files, image_.procs, image_.dir);
  for (size_t i = 0; st.ok() && i < image_.procs.size(); ++i) st = Rebuild(image_.procs[i], *tracees_[i]);
  if (st.ok()) st = seals.Apply();
  if (st.ok()) st = sysv_.Finish();
  // TCP connections their opener could not repair (a deputy rebuilding as
  // its user): placed now, so that one that cannot be fails the restore
  // while the tree is still held.
  for (const pb::FileDesc& d : image_.files.files()) {
    if (!st.ok()) break;
    if (d.kind() != pb::FILE_INET_SOCKET || !d.inet_socket().has_connection()) continue;
    const int fd = ConnectionFd(d);
    st = fd < 0 ? Status::Error("a TCP connection held by no process of the image")
                : PlaceConnection(d.owner_pid(), fd, d.inet_socket());
  }
  return st;
}

int TreeRestore::ConnectionFd(const pb::FileDesc& d) const {
  const pb::ProcessImage* owner = image_.Find(d.owner_pid());
  for (int i = 0; owner != nullptr && i < owner->fds_size(); ++i) {
    if (owner->fds(i).file_id() == d.id()) return owner->fds(i).fd();
  }
  return -1;
}

void TreeRestore::Reported(pid_t pid, uint64_t helper, int pages_fd) {
  SeedReport& r = reports_[pid];
  memset(&r, 0, sizeof(r));
  r.pid = pid;
  r.ok = 1;
  r.helper = helper;
  r.pages_fd = pages_fd;
}

Status TreeRestore::Run() {
  Status st = CheckCompatible();
  if (!st.ok()) return st;
  st = CreateSeeds();
  if (!st.ok()) return st;
  return RebuildAll();
}

Status TreeRestore::RunInPlace(pid_t pid, const InPlaceSeed& seed, InPlaceFallback fallback, const Status& loaded) {
  in_place_ = true;
  fallback_ = std::move(fallback);
  created_ = true;  // from here, whatever fails ends in the fallback
  root_ = pid;
  reports_[pid].helper = seed.helper;
  staged_in_place_ = seed.staged;
  for (const InPlaceSeed::Child& c : seed.children) reports_[c.pid].pid = 0;  // the seed's: they go on failure
  if (!loaded.ok()) return loaded;
  if (SharesPages(image_)) return Status::Error("an image with pages shared copy-on-write cannot be rebuilt in place");
  const pb::ProcessImage& proc = image_.procs.front();
  if (image_.inventory.root_pid() != pid || proc.pid() != pid) {
    return Status::Error("the image is of pid " + std::to_string(proc.pid()) + ", not " + std::to_string(pid));
  }
  // The seed reports every other process of the tree, made as its
  // descendants: each must be there, with its parent and the user's rights.
  std::map<pid_t, InPlaceSeed::Child> children;
  for (const InPlaceSeed::Child& c : seed.children) children[c.pid] = c;
  for (const pb::ProcessImage& p : image_.procs) {
    if (p.pid() == pid) continue;
    auto c = children.find(p.pid());
    if (c == children.end()) return Status::Error("the seed did not make pid " + std::to_string(p.pid()));
    Result<std::string> stat = ReadFile("/proc/" + std::to_string(p.pid()) + "/stat");
    ProcStat ps;
    if (!stat.ok() || !ParseProcStat(*stat, &ps) || ps.ppid != p.ppid()) {
      return Status::Error("pid " + std::to_string(p.pid()) + " is not the seed's child of pid " + std::to_string(p.ppid()));
    }
    Reported(p.pid(), c->second.helper, c->second.pages_fd);
  }
  if (children.size() + 1 != image_.procs.size()) return Status::Error("the seed made processes the image does not have");
  Status st = CheckCompatible();
  for (const pb::ProcessImage& p : image_.procs) {
    if (st.ok()) st = CheckCredsUnchanged(p.pid(), p);
  }
  if (!st.ok()) return st;
  // The seed opened its files where this plan puts them.
  ctx_.base = seed.base;
  ctx_.opened.Plan(image_.files, seed.base);
  Reported(pid, seed.helper, seed.pages_fd);
  return RebuildAll();
}

void TreeRestore::Fallback() {
  if (done_ || !created_) return;
  done_ = true;
  created_ = false;
  if (tracees_.empty()) {  // failed before it was taken: take it now
    auto t = std::make_unique<Tracee>(root_);
    if (t->Seize().ok()) {
      t->set_syscall_ip(reports_[root_].helper);
      tracees_.push_back(std::move(t));
    }
  }
  // The tree's other processes go (the seed made them for this move only):
  // killed while still traced (a half-rebuilt one must never run), their
  // exits taken as their tracer, then reaped by the root, their parent.
  std::vector<pid_t> tree = {root_};
  for (const auto& [pid, report] : reports_) {
    if (pid != root_) tree.push_back(pid);
  }
  if (tree.size() > 1) {
    KillInPlaceChildren(tree, root_, &threads_);
    while (tracees_.size() > 1) tracees_.pop_back();
    if (!tracees_.empty()) ReapChildren(*tracees_.front());
  }
  // The root's own threads end with the exec (which waits for us to take
  // their exits).
  std::vector<pid_t> tids;
  for (const auto& t : threads_[root_]) tids.push_back(t->pid());
  if (!tracees_.empty()) tracees_.front()->ReapWhileWaiting(tids);
  // Every signal blocked from here (a rebuild that got to the end gave it
  // the image's mask): a timer of the image's firing into an injected call
  // would stop it halfway. The new deputy starts so.
  if (!tracees_.empty()) (void)tracees_.front()->BlockSignals();
  // The image's pending signals are its copy's, which resumes at the
  // source: the new deputy must not pass them on a second time.
  if (root_signals_queued_ && !tracees_.empty()) DropQueuedSignals(*tracees_.front());
  // The rebuild may have given it the image's fd limit, lower than the
  // program needs and not to be raised: with no way back from here, it
  // execs all the same.
  Status st = tracees_.empty() ? Status::Error("cannot take pid " + std::to_string(root_))
                               : tracees_.front()->ExecProgram(fallback_.argv, fallback_.env, fallback_.min_open_files);
  if (!st.ok() && st.code() == StatusCode::kCantMove) st = tracees_.front()->ExecProgram(fallback_.argv, fallback_.env);
  if (!st.ok()) {
    kill(root_, SIGKILL);
    ReapThreads(threads_, root_);
  }
  threads_.clear();
  if (st.ok()) {
    // A new program: its signal mask stays all-blocked (a signal that came
    // meanwhile waits for the new deputy, which passes it on; the image's
    // were dropped above, its interval timers disarmed by the exec).
    (void)tracees_.front()->Detach(0);
  } else {
    kill(root_, SIGKILL);  // half rebuilt and no way back: never left running
  }
  tracees_.clear();
}

void TreeRestore::DropQueuedSignals(Tracee& t) {
  for (const pb::ProcessImage& p : image_.procs) {
    if (p.pid() != root_) continue;
    // (The area goes with the exec.)
    Result<long> area =
        t.SyscallOk("mmap", SYS_mmap, 0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
    Result<DroppedSignals> dropped = area.ok() ? DropDumpedSignals(t, static_cast<uint64_t>(*area), p) : area.status();
    if (!dropped.ok())
      fprintf(stderr, "roam: pid %d: its pending signals stay: %s\n", root_, dropped.status().message().c_str());
  }
}

Status TreeRestore::TakeLocks() {
  for (size_t i = 0; i < image_.procs.size() && i < tracees_.size(); ++i) {
    const pb::ProcessImage& p = image_.procs[i];
    if (p.locks().empty()) continue;
    Tracee& t = *tracees_[i];
    // Its helper area is gone: the fcntl arguments go below its stack,
    // past the red zone, where nothing of its lives while it is held.
    user_regs_struct regs;
    Status st = t.GetRegs(&regs);
    if (!st.ok()) return st;
    const uint64_t scratch = (regs.rsp - 4096) & ~uint64_t{63};
    char saved[64];
    st = t.ReadMemory(scratch, saved, sizeof(saved));
    if (st.ok()) st = t.BlockSignals();
    if (st.ok()) st = roam::TakeLocks(t, scratch, {p.locks().begin(), p.locks().end()});
    Status back = t.RestoreSigmask();
    Status put = t.WriteMemory(scratch, saved, sizeof(saved));
    if (!st.ok()) return st;
    if (!back.ok()) return back;
    if (!put.ok()) return put;
  }
  return Status::Ok();
}

Status TreeRestore::Release() {
  // TCP connections leave repair mode only now: a restore that failed
  // before closed them silently, the image still holding them.
  Status st;
  for (const pb::FileDesc& d : image_.files.files()) {
    if (d.kind() != pb::FILE_INET_SOCKET || !d.inet_socket().has_connection()) continue;
    const int fd = ConnectionFd(d);
    Status c = fd < 0 ? Status::Error("a TCP connection held by no process of the image")
                      : FinishConnection(d.owner_pid(), fd, d.inet_socket());
    if (st.ok() && !c.ok()) st = c;
  }
  for (size_t i = 0; i < image_.procs.size() && i < tracees_.size(); ++i) {
    Status d = DetachProcess(*tracees_[i], threads_[image_.procs[i].pid()], image_.procs[i].stopped());
    if (st.ok() && !d.ok()) st = d;
  }
  tracees_.clear();
  done_ = true;
  return st;
}

RestoredTree::RestoredTree(std::unique_ptr<TreeRestore> restore) : restore_(std::move(restore)) {}
RestoredTree::~RestoredTree() = default;

Result<std::unique_ptr<RestoredTree>> RestoredTree::Restore(const std::string& dir, const RestoreOptions& options) {
  Result<Image> image = LoadImage(dir, /*verify_payloads=*/false);
  if (!image.ok()) return image.status();
  // The payloads' checksums (0.2 s a GiB) are computed on another thread
  // while the tree is made, which is mostly page faults of the seeds: the
  // records were checked already, nothing of the tree runs before this
  // returns, and a payload that does not match kills what was made.
  std::future<Status> verified;
  if (options.verify_payloads) {
    verified = std::async(std::launch::async, [dir, inventory = image->inventory] { return VerifyPayloads(dir, inventory); });
  }
  auto restore = std::make_unique<TreeRestore>(std::move(*image), options);
  Status st = restore->Run();
  if (verified.valid()) {
    Status v = verified.get();
    if (!v.ok()) return v;  // before the restore's own error: the cause
  }
  if (!st.ok()) return st;  // ~TreeRestore kills what was created
  return std::unique_ptr<RestoredTree>(new RestoredTree(std::move(restore)));
}

Result<std::unique_ptr<RestoredTree>> RestoredTree::RestoreInPlace(const std::string& dir, pid_t pid,
                                                                   const InPlaceSeed& seed, InPlaceFallback fallback,
                                                                   const RestoreOptions& options) {
  Result<Image> image = LoadImage(dir, options.verify_payloads);
  RestoreOptions in_place;
  in_place.ask_pid = options.ask_pid;
  in_place.defer_locks = options.defer_locks;
  auto restore = std::make_unique<TreeRestore>(image.ok() ? std::move(*image) : Image(), in_place);
  Status st = restore->RunInPlace(pid, seed, std::move(fallback), image.status());
  if (!st.ok()) return st;  // ~TreeRestore: the fallback
  return std::unique_ptr<RestoredTree>(new RestoredTree(std::move(restore)));
}

void RestoredTree::AbandonInPlace(pid_t pid, const InPlaceSeed& seed, InPlaceFallback fallback) {
  TreeRestore restore{Image(), RestoreOptions()};
  (void)restore.RunInPlace(pid, seed, std::move(fallback), Status::Error("abandoned"));
}  // ~TreeRestore: the fallback

pid_t RestoredTree::root() const { return restore_->root(); }
std::vector<pid_t> RestoredTree::pids() const { return restore_->pids(); }
Status RestoredTree::TakeLocks() { return restore_->TakeLocks(); }
Status RestoredTree::Release() { return restore_->Release(); }
void RestoredTree::Kill() { restore_->KillAll(); }

}  // namespace roam
