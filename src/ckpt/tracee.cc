#include "ckpt/tracee.h"

#include <elf.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "common/file_util.h"
#include "common/proc_maps.h"
#include "common/proc_stat.h"
#include "common/proc_status.h"
#include "common/unique_fd.h"

namespace roam {

namespace {

constexpr long kErestartSys = 512;
constexpr long kErestartNoIntr = 513;
constexpr long kErestartNoHand = 514;
constexpr long kErestartRestartBlock = 516;

std::string Who(pid_t pid) { return "pid " + std::to_string(pid); }

// Attach's look at a thread in restart_syscall (Tracee::NameRestartedCall):
// the call it resumes, or -1.
long PeekRestartedCall(pid_t tid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(tid) + "/syscall");
  if (!text.ok()) return -1;
  const char* p = text->c_str();
  char* end = nullptr;
  if (strtol(p, &end, 10) != SYS_restart_syscall || end == p) return -1;
  const uint64_t first = strtoull(end, nullptr, 16);
  Result<std::string> stack = ReadFile("/proc/" + std::to_string(tid) + "/stack");
  if (!stack.ok() || stack->empty()) return -1;  // not root: unknown
  if (stack->find("do_restart_poll") != std::string::npos) return SYS_poll;
  if (stack->find("futex_wait_restart") != std::string::npos) return SYS_futex;
  // A sleep: clock_nanosleep(clockid, flags, ...), a clock id being small
  // or (a CPU clock) negative as an int; nanosleep(req, rem), a pointer.
  const bool clock_id = first <= 0xffffffffu && static_cast<int32_t>(first) < 16;
  return clock_id ? SYS_clock_nanosleep : SYS_nanosleep;
}

}  // namespace

Tracee::~Tracee() {
  if (mem_fd_ >= 0) close(mem_fd_);
}

Status Tracee::WaitStop(int* status) {
  for (;;) {
    // Looked at first, not taken: an exit must reach the process's parent.
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WSTOPPED | __WALL | WNOWAIT | (reap_.empty() ? 0 : WNOHANG)) != 0) {
      if (errno == EINTR) continue;
      return Status::Errno("wait for " + Who(pid_));
    }
    if (info.si_pid == pid_ && (info.si_code == CLD_EXITED || info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED)) {
      // Ended while we held it. Our own child (a guest of roamd) is left
      // for our reaper, which reports its exit home; anyone else's is
      // taken, which hands it to its parent (we were its tracer).
      // (A thread, not a leader, is always taken: only its tracer can.)
      seized_ = false;
      // A zombie's status lacks some lines: only these two are read.
      Result<std::string> text = ReadFile("/proc/" + std::to_string(pid_) + "/status");
      Result<ProcLineage> l = text.ok() ? ParseProcLineage(*text) : Result<ProcLineage>(text.status());
      const bool ours = l.ok() && l->tgid == pid_ && l->ppid == getpid();
      if (!ours) (void)waitpid(pid_, status, __WALL | WNOHANG);
      return Status::Error(Who(pid_) + " exited while frozen");
    }
    pid_t r = info.si_pid == 0 ? 0 : waitpid(pid_, status, __WALL | WNOHANG);
    if (r == 0) {  // not yet: take the exits of the threads meanwhile
      for (auto it = reap_.begin(); it != reap_.end();) {
        int s = 0;
        pid_t got = waitpid(*it, &s, __WALL | WNOHANG);
        it = (got == *it && (WIFEXITED(s) || WIFSIGNALED(s))) || (got < 0 && errno == ECHILD) ? reap_.erase(it) : it + 1;
      }
      usleep(200);
      continue;
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::Errno("wait for " + Who(pid_));
    }
    if (WIFEXITED(*status) || WIFSIGNALED(*status)) {  // ended between the look and the take
      seized_ = false;
      return Status::Error(Who(pid_) + " exited while frozen");
    }
    return Status::Ok();
  }
}

Status Tracee::Seize() {
  Status st = Attach();
  return st.ok() ? WaitSeized() : st;
}

Status Tracee::Attach() {
  Result<std::string> stat = ReadFile("/proc/" + std::to_string(pid_) + "/stat");
  ProcStat ps;
  if (!stat.ok() || !ParseProcStat(*stat, &ps)) return Status::Error(Who(pid_) + ": no such process");
  if (ps.state == 'Z') return Status::Error(Who(pid_) + " is a zombie");
  was_stopped_ = ps.state == 'T';
  restarted_call_ = PeekRestartedCall(pid_);
  if (ptrace(PTRACE_SEIZE, pid_, 0, PTRACE_O_TRACESYSGOOD) != 0) return Status::Errno("ptrace seize " + Who(pid_));
  seized_ = true;
  if (ptrace(PTRACE_INTERRUPT, pid_, 0, 0) != 0) return Status::Errno("ptrace interrupt " + Who(pid_));
  return Status::Ok();
}

Status Tracee::WaitSeized() {
  waited_ = true;
  for (;;) {
    int status = 0;
    Status st = WaitStop(&status);
    if (!st.ok()) return st;
    if (!WIFSTOPPED(status)) continue;
    if ((status >> 16) == PTRACE_EVENT_STOP) {
      int sig = WSTOPSIG(status);
      if (sig == SIGTRAP) return Status::Ok();  // our interrupt
      // A group stop: injected calls could not run while it holds. Lift it
      // with SIGCONT, swallow that SIGCONT below, and stop the process
      // again on the way out (Detach(SIGSTOP)).
      was_stopped_ = true;
      kill(pid_, SIGCONT);
      if (ptrace(PTRACE_INTERRUPT, pid_, 0, 0) != 0) return Status::Errno("ptrace interrupt " + Who(pid_));
      if (ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return Status::Errno("ptrace cont " + Who(pid_));
      continue;
    }
    if (WSTOPSIG(status) == SIGCONT && was_stopped_) {
      if (ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return Status::Errno("ptrace cont " + Who(pid_));
      continue;
    }
    // A signal on its way to the process: take it aside, let the interrupt
    // stop happen, and let the caller queue it again.
    siginfo_t si;
    if (ptrace(PTRACE_GETSIGINFO, pid_, 0, &si) == 0) {
      stolen_.emplace_back(reinterpret_cast<const char*>(&si), sizeof(si));
    }
    if (ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return Status::Errno("ptrace cont " + Who(pid_));
  }
}

Status Tracee::Adopt() {
  seized_ = true;
  waited_ = true;
  for (;;) {
    int status = 0;
    Status st = WaitStop(&status);
    if (!st.ok()) return st;
    if (WIFSTOPPED(status) && (status >> 16) == PTRACE_EVENT_STOP) return Status::Ok();
    // Anything else first (a signal sent to it already): let the stop come.
    if (ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return Status::Errno("ptrace cont " + Who(pid_));
  }
}

Result<long> Tracee::CloneThread(uint64_t args, uint64_t size) {
  if (ptrace(PTRACE_SETOPTIONS, pid_, 0, PTRACE_O_TRACESYSGOOD | PTRACE_O_TRACECLONE) != 0) {
    return Status::Errno("ptrace setoptions " + Who(pid_));
  }
  cloned_ = 0;
  Result<long> r = Syscall(SYS_clone3, args, size);
  (void)ptrace(PTRACE_SETOPTIONS, pid_, 0, PTRACE_O_TRACESYSGOOD);
  if (r.ok() && *r > 0 && *r != cloned_) {
    return Status::Error(Who(pid_) + ": clone3 made thread " + std::to_string(*r) + " but ptrace reported " +
                         std::to_string(cloned_));
  }
  return r;
}

Status Tracee::ExitThread() {
  if (pid_ == tgid_) return Status::Error(Who(pid_) + " leads its process: it cannot end alone");
  user_regs_struct regs;
  Status st = GetRegs(&regs);
  if (!st.ok()) return st;
  regs.rip = syscall_ip_;
  regs.rax = SYS_exit;
  regs.orig_rax = ~0ULL;
  regs.rdi = 0;
  st = SetRegs(regs);
  if (!st.ok()) return st;
  if (ptrace(PTRACE_CONT, pid_, 0, 0) != 0) return Status::Errno("ptrace cont " + Who(pid_));
  for (;;) {
    int status = 0;
    pid_t r = waitpid(pid_, &status, __WALL);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Errno("wait for " + Who(pid_));
    if (WIFEXITED(status) || WIFSIGNALED(status)) break;
    (void)ptrace(PTRACE_CONT, pid_, 0, 0);  // a stop on its way out
  }
  seized_ = false;
  return Status::Ok();
}

void Tracee::HoldOnThisCpu() {
  const int cpu = sched_getcpu();
  if (held_on_cpu_ || cpu < 0 || sched_getaffinity(pid_, sizeof(affinity_), &affinity_) != 0) return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(cpu, &one);
  held_on_cpu_ = sched_setaffinity(pid_, sizeof(one), &one) == 0;
}

Status Tracee::Detach(int signal) {
  if (!seized_) return Status::Ok();
  seized_ = false;
  if (held_on_cpu_) {
    held_on_cpu_ = false;
    (void)sched_setaffinity(pid_, sizeof(affinity_), &affinity_);
  }
  if (ptrace(PTRACE_DETACH, pid_, 0, signal) != 0) return Status::Errno("ptrace detach " + Who(pid_));
  return Status::Ok();
}

Status Tracee::GetRegs(user_regs_struct* regs) {
  iovec iov{regs, sizeof(*regs)};
  if (ptrace(PTRACE_GETREGSET, pid_, NT_PRSTATUS, &iov) != 0) return Status::Errno("read registers of " + Who(pid_));
  return Status::Ok();
}

Status Tracee::SetRegs(const user_regs_struct& regs) {
  iovec iov{const_cast<user_regs_struct*>(&regs), sizeof(regs)};
  if (ptrace(PTRACE_SETREGSET, pid_, NT_PRSTATUS, &iov) != 0) return Status::Errno("set registers of " + Who(pid_));
  return Status::Ok();
}

Result<std::string> Tracee::GetXstate() {
  std::string buf(64 * 1024, '\0');
  iovec iov{buf.data(), buf.size()};
  if (ptrace(PTRACE_GETREGSET, pid_, NT_X86_XSTATE, &iov) != 0) return Status::Errno("read XSAVE area of " + Who(pid_));
  buf.resize(iov.iov_len);
  return buf;
}

Status Tracee::SetXstate(const std::string& xstate) {
  std::string copy = xstate;
  iovec iov{copy.data(), copy.size()};
  if (ptrace(PTRACE_SETREGSET, pid_, NT_X86_XSTATE, &iov) != 0) return Status::Errno("set XSAVE area of " + Who(pid_));
  return Status::Ok();
}

Result<uint64_t> Tracee::GetSigmask() {
  uint64_t mask = 0;
  if (ptrace(PTRACE_GETSIGMASK, pid_, sizeof(mask), &mask) != 0) return Status::Errno("read signal mask of " + Who(pid_));
  return mask;
}

Status Tracee::SetSigmask(uint64_t mask) {
  if (ptrace(PTRACE_SETSIGMASK, pid_, sizeof(mask), &mask) != 0) return Status::Errno("set signal mask of " + Who(pid_));
  return Status::Ok();
}

Status Tracee::BlockSignals() {
  Result<uint64_t> m = GetSigmask();
  if (!m.ok()) return m.status();
  saved_mask_ = *m;
  signals_blocked_ = true;
  return SetSigmask(~uint64_t{0});
}

Status Tracee::RestoreSigmask() {
  if (!signals_blocked_) return Status::Ok();
  signals_blocked_ = false;
  return SetSigmask(saved_mask_);
}

Status Tracee::StepToSyscallStop(const char* which) {
  if (ptrace(PTRACE_SYSCALL, pid_, 0, 0) != 0) return Status::Errno(std::string("ptrace syscall ") + Who(pid_));
  int status = 0;
  Status st = WaitStop(&status);
  if (!st.ok()) return st;
  // A job-control notification (PTRACE_EVENT_STOP, e.g. after a SIGCONT)
  // may come first, or the report of a thread an injected clone made
  // (PTRACE_EVENT_CLONE, its TID kept for CloneThread): step on.
  while (WIFSTOPPED(status) && ((status >> 16) == PTRACE_EVENT_STOP || (status >> 16) == PTRACE_EVENT_CLONE)) {
    if ((status >> 16) == PTRACE_EVENT_CLONE) {
      unsigned long msg = 0;
      if (ptrace(PTRACE_GETEVENTMSG, pid_, 0, &msg) == 0) cloned_ = static_cast<long>(msg);
    }
    if (ptrace(PTRACE_SYSCALL, pid_, 0, 0) != 0) return Status::Errno(std::string("ptrace syscall ") + Who(pid_));
    st = WaitStop(&status);
    if (!st.ok()) return st;
  }
  if (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80)) {
    return Status::Error(Who(pid_) + ": unexpected stop (status " + std::to_string(status) + ") at syscall " + which);
  }
  return Status::Ok();
}

// Runs syscall `nr` from `saved` (the tracee's registers now) and leaves
// the registers as the kernel left them at the syscall-exit stop, in *after.
Status Tracee::Inject(const user_regs_struct& saved, long nr, const uint64_t (&args)[6], user_regs_struct* after) {
  if (syscall_ip_ == 0) return Status::Error(Who(pid_) + ": no syscall instruction to inject with");
  user_regs_struct regs = saved;
  regs.rip = syscall_ip_;
  regs.rax = static_cast<uint64_t>(nr);
  regs.orig_rax = ~0ULL;  // no restart handling on the way out of the stop
  regs.rdi = args[0];
  regs.rsi = args[1];
  regs.rdx = args[2];
  regs.r10 = args[3];
  regs.r8 = args[4];
  regs.r9 = args[5];
  Status st = SetRegs(regs);
  if (st.ok()) st = StepToSyscallStop("entry");
  if (st.ok()) st = StepToSyscallStop("exit");
  if (st.ok()) st = GetRegs(after);
  return st;
}

Result<long> Tracee::Syscall(long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6) {
  user_regs_struct saved, regs;
  Status st = GetRegs(&saved);
  if (st.ok()) st = Inject(saved, nr, {a1, a2, a3, a4, a5, a6}, &regs);
  if (!st.ok()) return st;
  st = SetRegs(saved);
  if (!st.ok()) return st;
  return static_cast<long>(regs.rax);
}

Status Tracee::Exec(uint64_t path, uint64_t argv, uint64_t envp) {
  user_regs_struct saved, regs;
  Status st = GetRegs(&saved);
  if (st.ok()) st = Inject(saved, SYS_execve, {path, argv, envp, 0, 0, 0}, &regs);
  if (!st.ok()) return st;
  if (regs.rax == 0) return Status::Ok();  // the new program, at its entry point
  const int err = -static_cast<int>(regs.rax);
  st = SetRegs(saved);
  if (!st.ok()) return st;
  return Status::Errno(Who(pid_) + ": execve", err);
}

Status Tracee::ExecProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                           uint64_t min_open_files) {
  if (argv.empty()) return Status::Error("nothing to exec");
  if (syscall_ip_ == 0) {
    Result<uint64_t> ip = FindSyscallInstruction(pid_);
    if (!ip.ok()) return ip.status();
    syscall_ip_ = *ip;
  }
  // The strings, then the two pointer arrays, in one scratch mapping.
  std::string blob;
  std::vector<uint64_t> arg_off, env_off;
  for (const std::string& a : argv) {
    arg_off.push_back(blob.size());
    blob.append(a).push_back('\0');
  }
  for (const std::string& e : env) {
    env_off.push_back(blob.size());
    blob.append(e).push_back('\0');
  }
  while (blob.size() % 8) blob.push_back('\0');
  // Room at the end for a zero itimerval, the three timers as they were,
  // and two rlimits (the fd limit as it was, and raised).
  const uint64_t tail = 4 * sizeof(itimerval) + 2 * sizeof(rlimit);
  const uint64_t size = ((blob.size() + 8 * (argv.size() + env.size() + 2)) + tail + 4095) & ~4095ULL;
  Result<long> area = SyscallOk("mmap exec area", SYS_mmap, 0, size, PROT_READ | PROT_WRITE,
                                MAP_PRIVATE | MAP_ANONYMOUS, ~0ULL, 0);
  if (!area.ok()) return area.status();
  const uint64_t base = static_cast<uint64_t>(*area);
  std::vector<uint64_t> ptrs;
  for (uint64_t o : arg_off) ptrs.push_back(base + o);
  ptrs.push_back(0);
  const size_t envp_index = ptrs.size();
  for (uint64_t o : env_off) ptrs.push_back(base + o);
  ptrs.push_back(0);
  std::string all = blob;
  all.append(reinterpret_cast<const char*>(ptrs.data()), ptrs.size() * 8);
  Status st = WriteMemory(base, all.data(), all.size());
  const uint64_t argv_at = base + blob.size();
  // The mapping is fresh: zeroes at `zero`.
  const uint64_t zero = base + size - tail, old = zero + sizeof(itimerval);
  const uint64_t files_was = zero + 4 * sizeof(itimerval), files_now = files_was + sizeof(rlimit);
  // The fd limit, by the process itself (prlimit on another user's
  // process needs CAP_SYS_RESOURCE, which root may lack): a soft one up to
  // its hard one, which only a process with CAP_SYS_RESOURCE may raise.
  rlimit files{};
  bool raised = false;
  if (st.ok() && min_open_files > 0) {
    st = SyscallOk("prlimit", SYS_prlimit64, 0, RLIMIT_NOFILE, 0, files_was).status();
    if (st.ok()) st = ReadMemory(files_was, &files, sizeof(files));
    if (st.ok() && files.rlim_cur < min_open_files) {
      const rlimit more{min_open_files, std::max<rlim_t>(files.rlim_max, min_open_files)};
      st = WriteMemory(files_now, &more, sizeof(more));
      if (st.ok() && SyscallOk("prlimit", SYS_prlimit64, 0, RLIMIT_NOFILE, files_now, 0).ok()) {
        raised = true;
      } else if (st.ok()) {
        st = Status::Error(StatusCode::kCantMove, Who(pid_) + " may open " + std::to_string(files.rlim_max) +
                                                      " files at most (ulimit -n), " + argv[0] + " needs " +
                                                      std::to_string(min_open_files));
      }
    }
  }
  const int kTimers[] = {ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF};
  int disarmed = 0;
  for (; st.ok() && disarmed < 3; ++disarmed) {
    st = SyscallOk("setitimer", SYS_setitimer, kTimers[disarmed], zero, old + disarmed * sizeof(itimerval)).status();
  }
  if (st.ok()) st = Exec(base + arg_off[0], argv_at, argv_at + 8 * envp_index);
  if (!st.ok()) {
    for (int i = 0; i < disarmed; ++i) (void)Syscall(SYS_setitimer, kTimers[i], old + i * sizeof(itimerval), 0);
    if (raised) (void)Syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, files_was, 0);
    (void)Syscall(SYS_munmap, base, size);
  }
  return st;
}

Result<long> Tracee::SyscallOk(const std::string& what, long nr, uint64_t a1, uint64_t a2, uint64_t a3, uint64_t a4,
                               uint64_t a5, uint64_t a6) {
  Result<long> r = Syscall(nr, a1, a2, a3, a4, a5, a6);
  if (!r.ok()) return r;
  if (*r < 0 && *r > -4096) return Status::Errno(Who(pid_) + ": " + what, static_cast<int>(-*r));
  return r;
}

user_regs_struct Tracee::ResumeRegs(user_regs_struct regs, bool same_process) {
  if (static_cast<long>(regs.orig_rax) < 0) return regs;
  long ret = -static_cast<long>(regs.rax);
  switch (ret) {
    case kErestartSys:
    case kErestartNoIntr:
    case kErestartNoHand:
      regs.rax = regs.orig_rax;
      regs.rip -= 2;
      break;
    case kErestartRestartBlock:
      if (!same_process && static_cast<long>(regs.orig_rax) == SYS_restart_syscall) {
        regs.rax = static_cast<uint64_t>(-EINTR);  // the call it resumed is not known
        break;
      }
      regs.rax = same_process ? SYS_restart_syscall : regs.orig_rax;
      regs.rip -= 2;
      break;
    default:
      break;
  }
  return regs;
}

Status Tracee::ResumeInterruptedCall() {
  user_regs_struct regs;
  Status st = GetRegs(&regs);
  return st.ok() ? SetRegs(ResumeRegs(regs, true)) : st;
}

bool Tracee::NameRestartedCall(user_regs_struct* regs) const {
  if (restarted_call_ < 0 || static_cast<long>(regs->orig_rax) != SYS_restart_syscall ||
      -static_cast<long>(regs->rax) != kErestartRestartBlock) {
    return false;
  }
  regs->orig_rax = static_cast<uint64_t>(restarted_call_);
  return true;
}

Status Tracee::ReadMemory(uint64_t addr, void* buf, size_t len) {
  if (mem_fd_ < 0) {
    mem_fd_ = open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDWR | O_CLOEXEC);
    if (mem_fd_ < 0) return Status::Errno("open /proc/" + std::to_string(pid_) + "/mem");
  }
  ssize_t n = pread(mem_fd_, buf, len, static_cast<off_t>(addr));
  if (n != static_cast<ssize_t>(len)) return Status::Errno("read memory of " + Who(pid_), n < 0 ? errno : EIO);
  return Status::Ok();
}

Status Tracee::WriteMemory(uint64_t addr, const void* buf, size_t len) {
  if (mem_fd_ < 0) {
    mem_fd_ = open(("/proc/" + std::to_string(pid_) + "/mem").c_str(), O_RDWR | O_CLOEXEC);
    if (mem_fd_ < 0) return Status::Errno("open /proc/" + std::to_string(pid_) + "/mem");
  }
  ssize_t n = pwrite(mem_fd_, buf, len, static_cast<off_t>(addr));
  if (n != static_cast<ssize_t>(len)) return Status::Errno("write memory of " + Who(pid_), n < 0 ? errno : EIO);
  return Status::Ok();
}

namespace {

// The address of the first `syscall` (0f 05) in [lo, hi) of `pid`'s memory,
// read through `fd` (its /proc/PID/mem) a piece at a time, or 0.
uint64_t FindSyscallIn(int fd, uint64_t lo, uint64_t hi) {
  const std::string insn("\x0f\x05", 2);
  std::string piece(64 << 10, '\0');
  for (uint64_t at = lo; at < hi;) {
    const size_t len = static_cast<size_t>(std::min<uint64_t>(piece.size(), hi - at));
    ssize_t n = pread(fd, piece.data(), len, static_cast<off_t>(at));
    if (n < 2) return 0;
    size_t pos = std::string_view(piece.data(), static_cast<size_t>(n)).find(insn);
    if (pos != std::string::npos) return at + pos;
    at += static_cast<uint64_t>(n) - 1;  // an instruction may straddle two pieces
  }
  return 0;
}

}  // namespace

Result<uint64_t> FindSyscallInstruction(pid_t pid) {
  Result<std::string> maps = ReadFile("/proc/" + std::to_string(pid) + "/maps");
  if (!maps.ok()) return maps.status();
  UniqueFd mem(open(("/proc/" + std::to_string(pid) + "/mem").c_str(), O_RDONLY | O_CLOEXEC));
  if (!mem.ok()) return Status::Errno("open /proc/" + std::to_string(pid) + "/mem");
  // [vdso] first (the same in every process of a kernel; its line is found
  // without parsing the others, which may be thousands), then the code of a
  // file (what does not change while it runs), then any code.
  const size_t vdso = maps->find("[vdso]");
  if (vdso != std::string::npos) {
    const size_t start = maps->rfind('\n', vdso);
    uint64_t lo = 0, hi = 0;
    if (sscanf(maps->c_str() + (start == std::string::npos ? 0 : start + 1), "%lx-%lx", &lo, &hi) != 2 || hi <= lo) {
      return Status::Error(Who(pid) + ": cannot read the [vdso] range");
    }
    if (uint64_t ip = FindSyscallIn(mem.get(), lo, hi); ip != 0) return ip;
  }
  Result<std::vector<VmaInfo>> vmas = ParseMaps(*maps);
  if (!vmas.ok()) return vmas.status();
  std::vector<const VmaInfo*> code;  // a file's first, then anonymous (a JIT's)
  for (const VmaInfo& v : *vmas) {
    if (v.exec && v.path != "[vsyscall]") code.push_back(&v);  // [vsyscall]: emulated, not readable
  }
  std::stable_partition(code.begin(), code.end(),
                        [](const VmaInfo* v) { return !v->path.empty() && v->path[0] == '/'; });
  for (const VmaInfo* v : code) {
    if (uint64_t ip = FindSyscallIn(mem.get(), v->start, v->end); ip != 0) return ip;
  }
  return Status::Error(StatusCode::kCantMove,
                       Who(pid) + " has no syscall instruction the engine could work through (no vDSO, no code)");
}

}  // namespace roam
