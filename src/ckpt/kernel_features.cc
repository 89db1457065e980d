#include "ckpt/kernel_features.h"

#include <cpuid.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/rseq.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <optional>

#include "ckpt/uapi_dirty.h"
#include "common/file_util.h"
#include "common/status.h"
#include "common/unique_fd.h"

// ---- constants Debian 12's headers may lack ----------------------------------
#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif
#ifndef AUDIT_ARCH_X86_64
#define AUDIT_ARCH_X86_64 0xc000003eu
#endif
#ifndef KCMP_FILE
#define KCMP_FILE 0
#endif
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef PR_SET_MM
#define PR_SET_MM 35
#endif
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#endif
#ifndef PR_SET_MM_MAP_SIZE
#define PR_SET_MM_MAP_SIZE 15
#endif

namespace roam {
namespace {

constexpr int kWaitMs = 3000;  // the longest any probe waits for a child
constexpr uint64_t kPagemapPresent = 1ULL << 63;
constexpr uint64_t kPagemapSoftDirty = 1ULL << 55;
constexpr uint64_t kPagemapPfnMask = (1ULL << 55) - 1;
constexpr int kCapSysResource = 24;

// Same layout as the kernel's struct prctl_mm_map (include/uapi/linux/prctl.h).
struct PrctlMmMap {
  uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
  uint64_t arg_start, arg_end, env_start, env_end;
  uint64_t* auxv;
  uint32_t auxv_size;
  uint32_t exe_fd;
};

// Same layout as the kernel's struct clone_args (5.7+, with cgroup).
struct CloneArgs {
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
  uint64_t set_tid, set_tid_size, cgroup;
};

// ---- words -------------------------------------------------------------------

// "EPERM", or "errno 4095" for a number glibc does not name.
std::string ErrName(int err) {
  const char* name = strerrorname_np(err);
  return name ? name : "errno " + std::to_string(err);
}

Status ErrStatus(const std::string& operation, int err = errno) {
  return Status::Error(operation + ": " + ErrName(err));
}

std::string Hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, v);
  return buf;
}

std::string SignalName(int sig) {
  const char* abbrev = sigabbrev_np(sig);
  return abbrev ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

Result<long long> ReadProcNumber(const std::string& path) {
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (end == text->c_str()) return Status::Error(path + ": not a number");
  return v;
}

// Whether this process holds capability cap in its effective set.
bool HasCapability(int cap) {
  Result<std::string> status = ReadFile("/proc/self/status");
  if (!status.ok()) return false;
  size_t at = status->find("CapEff:");
  if (at == std::string::npos) return false;
  uint64_t eff = std::strtoull(status->c_str() + at + 7, nullptr, 16);
  return (eff >> cap) & 1;
}

// ---- children: fork, trace, reap, never hang ---------------------------------

// Waits up to timeout_ms for the next wait status of pid: a stop of a tracee,
// or its end. False on timeout, or when pid is not (or no longer) our child.
bool WaitStatus(pid_t pid, int* status, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    pid_t r = ::waitpid(pid, status, WNOHANG | __WALL);
    if (r == pid) return true;
    if (r < 0 && errno != EINTR) return false;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    ::usleep(1000);
  }
}

// SIGKILLs pid and reaps it. Returns its final wait status, or nullopt when
// it could not be reaped in time (or was reaped elsewhere).
std::optional<int> KillAndReap(pid_t pid) {
  ::kill(pid, SIGKILL);
  int status = 0;
  while (WaitStatus(pid, &status, kWaitMs)) {
    if (WIFEXITED(status) || WIFSIGNALED(status)) return status;
  }
  return std::nullopt;
}

// A forked child with SIGUSR1 and SIGUSR2 blocked, asleep in pause() until it
// is killed. It is a fork of this thread: same memory layout, same fds, same
// rseq registration. The destructor kills and reaps it, which also ends any
// tracing of it.
class PausedChild {
 public:
  PausedChild() = default;
  ~PausedChild() {
    if (pid_ > 0) KillAndReap(pid_);
  }
  PausedChild(const PausedChild&) = delete;
  PausedChild& operator=(const PausedChild&) = delete;

  Status Start() {
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &old);  // inherited by the child
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);
      for (;;) ::pause();
    }
    int err = errno;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (pid < 0) return ErrStatus("fork", err);
    pid_ = pid;
    return Status::Ok();
  }

  // Seizes the child and stops it with PTRACE_INTERRUPT.
  // REQUIRES: Start() succeeded.
  Status SeizeAndStop() {
    if (::ptrace(PTRACE_SEIZE, pid_, nullptr, nullptr) != 0) {
      int err = errno;
      std::string why = err == EPERM ? " (needs CAP_SYS_PTRACE, or see kernel.yama.ptrace_scope)" : "";
      return Status::Error("PTRACE_SEIZE: " + ErrName(err) + why);
    }
    if (::ptrace(PTRACE_INTERRUPT, pid_, nullptr, nullptr) != 0) return ErrStatus("PTRACE_INTERRUPT");
    int status = 0;
    if (!WaitStatus(pid_, &status, kWaitMs)) return Status::Error("PTRACE_INTERRUPT: no stop within 3 s");
    if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
      return Status::Error("PTRACE_INTERRUPT: unexpected wait status " + Hex(status));
    }
    return Status::Ok();
  }

  // Starts the child, then seizes and stops it.
  Status StartStopped() {
    Status st = Start();
    return st.ok() ? SeizeAndStop() : st;
  }

  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

// What a probe body reports from inside a forked child: step 0 on success,
// else the step that failed and its errno; value[] as the body documents.
struct ChildReport {
  int step = 0;
  int err = 0;
  uint64_t value[4] = {};
};
using ChildBody = ChildReport (*)(const void* arg);

// Runs body(arg) in a forked child and returns its report. The body runs in
// a fork of a possibly multi-threaded process: only async-signal-safe calls
// (raw system calls), no allocation. Fails if the child dies without
// reporting (a crash) or does not report within timeout_ms.
Result<ChildReport> RunInChild(ChildBody body, const void* arg, int timeout_ms = kWaitMs) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrStatus("pipe2");
  UniqueFd rd(fds[0]);
  pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    ChildReport report = body(arg);
    ssize_t n = ::write(fds[1], &report, sizeof report);
    ::_exit(n == static_cast<ssize_t>(sizeof report) ? 0 : 1);
  }
  int fork_err = errno;
  ::close(fds[1]);
  if (pid < 0) return ErrStatus("fork", fork_err);

  ChildReport report;
  ssize_t got = -1;
  pollfd pfd{rd.get(), POLLIN, 0};
  int ready;
  do {
    ready = ::poll(&pfd, 1, timeout_ms);
  } while (ready < 0 && errno == EINTR);
  if (ready > 0) got = ::read(rd.get(), &report, sizeof report);
  std::optional<int> status = KillAndReap(pid);
  if (got == static_cast<ssize_t>(sizeof report)) return report;
  if (ready == 0) return Status::Error("child timed out after " + std::to_string(timeout_ms) + " ms");
  if (status && WIFSIGNALED(*status)) return Status::Error("child killed by " + SignalName(WTERMSIG(*status)));
  return Status::Error("child ended without a report");
}

// An anonymous private read-write mapping, unmapped when it goes out of scope.
class ScopedMapping {
 public:
  explicit ScopedMapping(size_t size)
      : size_(size), addr_(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)) {}
  ~ScopedMapping() {
    if (addr_ != MAP_FAILED) ::munmap(addr_, size_);
  }
  ScopedMapping(const ScopedMapping&) = delete;
  ScopedMapping& operator=(const ScopedMapping&) = delete;
  bool ok() const { return addr_ != MAP_FAILED; }
  char* data() const { return static_cast<char*>(addr_); }

 private:
  size_t size_;
  void* addr_;
};

// Reads the 64-bit /proc/PID/pagemap entry of the page holding addr.
Result<uint64_t> PagemapEntry(pid_t pid, const void* addr) {
  std::string path = "/proc/" + std::to_string(pid) + "/pagemap";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return ErrStatus("open " + path);
  uint64_t entry = 0;
  off_t off = static_cast<off_t>(reinterpret_cast<uintptr_t>(addr) / ::getpagesize() * sizeof entry);
  if (::pread(fd.get(), &entry, sizeof entry, off) != static_cast<ssize_t>(sizeof entry)) {
    return ErrStatus("read " + path);
  }
  return entry;
}

// ---- probes: the detail of success, or a Status naming the failure ------------

using ProbeResult = Result<std::string>;

ProbeResult ProbeArchitecture() {
#if !defined(__x86_64__)
  return Status::Error("roam was built for another architecture; the engine supports x86_64 only");
#endif
  utsname u;
  if (::uname(&u) != 0) return ErrStatus("uname");
  if (std::strcmp(u.machine, "x86_64") != 0) {
    return Status::Error(std::string("machine is ") + u.machine + "; the engine supports x86_64 only");
  }
  return std::string("x86_64, kernel ") + u.release;
}

ProbeResult ProbeXsaveState() {
  CpuXsaveInfo x = ProbeXsave();
  if (x.xcr0 == 0) return Status::Error("XSAVE is not enabled by the OS (CPUID.1:ECX.OSXSAVE clear)");
  static const char* const kComponents[] = {"x87",      "sse", "avx",  "bndregs",  "bndcsr",    "opmask", "zmm_hi256",
                                            "hi16_zmm", "pt",  "pkru", "pasid",    "cet_u",     "cet_s",  "hdc",
                                            "uintr",    "lbr", "hwp",  "xtilecfg", "xtiledata", "apx"};
  std::string names;
  for (size_t bit = 0; bit < 64; ++bit) {
    if (!((x.xcr0 >> bit) & 1)) continue;
    if (!names.empty()) names += ' ';
    names += bit < std::size(kComponents) ? kComponents[bit] : "bit" + std::to_string(bit);
  }
  if ((x.xcr0 & 3) != 3) return Status::Error("xcr0 " + Hex(x.xcr0) + " lacks x87 or sse state");
  return "xcr0 " + Hex(x.xcr0) + " (" + names + "), xsave size " + std::to_string(x.xsave_size) + " bytes";
}

ProbeResult ProbePtraceSeize() {
  PausedChild child;
  Status st = child.StartStopped();
  if (!st.ok()) return st;
  return "stopped pid " + std::to_string(child.pid()) + " with PTRACE_EVENT_STOP";
}

ProbeResult ProbeXstateRegset() {
  PausedChild child;
  Status st = child.StartStopped();
  if (!st.ok()) return st;
  CpuXsaveInfo x = ProbeXsave();
  std::vector<uint8_t> buf(std::max<size_t>(x.xsave_size, 4096) * 2);
  iovec iov{buf.data(), buf.size()};
  if (::ptrace(PTRACE_GETREGSET, child.pid(), NT_X86_XSTATE, &iov) != 0) {
    return ErrStatus("PTRACE_GETREGSET NT_X86_XSTATE");
  }
  if (iov.iov_len < 576) return Status::Error("only " + std::to_string(iov.iov_len) + " bytes of XSAVE state");
  // The kernel puts its user XCR0 in the FXSAVE area's software bytes at
  // offset 464 (where gdb reads it); XSTATE_BV opens the header at 512.
  uint64_t xcr0 = 0, xstate_bv = 0;
  std::memcpy(&xcr0, buf.data() + 464, sizeof xcr0);
  std::memcpy(&xstate_bv, buf.data() + 512, sizeof xstate_bv);
  std::string detail = std::to_string(iov.iov_len) + " bytes, xcr0 " + Hex(xcr0) + ", xstate_bv " + Hex(xstate_bv);
  if (iov.iov_len != x.xsave_size) detail += "; CPUID says " + std::to_string(x.xsave_size) + " bytes";
  if (xcr0 != x.xcr0) detail += "; xgetbv says xcr0 " + Hex(x.xcr0);
  return detail;
}

ProbeResult ProbeSyscallInfo() {
  PausedChild child;
  Status st = child.StartStopped();
  if (!st.ok()) return st;
  __ptrace_syscall_info info;
  std::memset(&info, 0, sizeof info);
  long n = ::ptrace(static_cast<__ptrace_request>(PTRACE_GET_SYSCALL_INFO), child.pid(), sizeof info, &info);
  if (n <= 0) return ErrStatus("PTRACE_GET_SYSCALL_INFO");
  if (info.arch != AUDIT_ARCH_X86_64) return Status::Error("reports arch " + Hex(info.arch) + ", not x86_64");
  if (info.instruction_pointer == 0) return Status::Error("reports instruction pointer 0");
  return "interrupt stop reported as op " + std::to_string(info.op) + ", arch x86_64";
}

ProbeResult ProbeRseqConfiguration() {
  PausedChild child;
  Status st = child.StartStopped();
  if (!st.ok()) return st;
  __ptrace_rseq_configuration conf;
  std::memset(&conf, 0, sizeof conf);
  long n = ::ptrace(static_cast<__ptrace_request>(PTRACE_GET_RSEQ_CONFIGURATION), child.pid(), sizeof conf, &conf);
  if (n <= 0) return ErrStatus("PTRACE_GET_RSEQ_CONFIGURATION");
  if (__rseq_size == 0) {  // glibc registered none here (glibc.pthread.rseq=0), nor in the fork
    if (conf.rseq_abi_pointer != 0)
      return Status::Error("reports rseq at " + Hex(conf.rseq_abi_pointer) + " though none was registered");
    return std::string("answers (no rseq registered here: glibc.pthread.rseq=0, so the address went unchecked)");
  }
  // glibc registered this thread's area; the fork's is at the same address.
  uintptr_t thread_pointer;
  asm("mov %%fs:0, %0" : "=r"(thread_pointer));
  uint64_t expected = thread_pointer + __rseq_offset;
  if (conf.rseq_abi_pointer != expected) {
    return Status::Error("reports rseq at " + Hex(conf.rseq_abi_pointer) + ", glibc registered it at " + Hex(expected));
  }
  if (conf.signature != RSEQ_SIG) return Status::Error("rseq signature " + Hex(conf.signature));
  return "rseq at " + Hex(conf.rseq_abi_pointer) + ", " + std::to_string(conf.rseq_abi_size) + " bytes, signature " +
         Hex(conf.signature);
}

ProbeResult ProbeSigmask() {
  PausedChild child;
  Status st = child.StartStopped();
  if (!st.ok()) return st;
  uint64_t mask = 0;
  if (::ptrace(PTRACE_GETSIGMASK, child.pid(), sizeof mask, &mask) != 0) return ErrStatus("PTRACE_GETSIGMASK");
  uint64_t want = (1ULL << (SIGUSR1 - 1)) | (1ULL << (SIGUSR2 - 1));
  if ((mask & want) != want) return Status::Error("mask " + Hex(mask) + " lacks the blocked SIGUSR1 and SIGUSR2");
  return "mask " + Hex(mask) + " (SIGUSR1 and SIGUSR2 blocked, as set)";
}

// The signal number of the first siginfo in one queue of pid, 0 if empty.
Result<int> PeekFirstSignal(pid_t pid, uint32_t flags) {
  __ptrace_peeksiginfo_args args{0, flags, 4};
  siginfo_t infos[4];
  long n = ::ptrace(PTRACE_PEEKSIGINFO, pid, &args, infos);
  if (n < 0) return ErrStatus("PTRACE_PEEKSIGINFO");
  return n == 0 ? 0 : infos[0].si_signo;
}

ProbeResult ProbePeekSiginfo() {
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  // Both are blocked in the child, so they stay queued: one per thread, one
  // process-wide.
  if (::syscall(SYS_tgkill, child.pid(), child.pid(), SIGUSR1) != 0) return ErrStatus("tgkill");
  if (::kill(child.pid(), SIGUSR2) != 0) return ErrStatus("kill");
  st = child.SeizeAndStop();
  if (!st.ok()) return st;
  Result<int> own = PeekFirstSignal(child.pid(), 0);
  if (!own.ok()) return own.status();
  Result<int> shared = PeekFirstSignal(child.pid(), PTRACE_PEEKSIGINFO_SHARED);
  if (!shared.ok()) return shared.status();
  if (*own != SIGUSR1 || *shared != SIGUSR2) {
    return Status::Error("queues hold signal " + std::to_string(*own) + " and " + std::to_string(*shared) +
                         ", expected SIGUSR1 (thread) and SIGUSR2 (shared)");
  }
  return std::string("thread queue: SIGUSR1, shared queue: SIGUSR2");
}

ProbeResult ProbeProcessVmReadv() {
  volatile uint64_t marker = 0x726f616d00000000ULL | static_cast<uint32_t>(::getpid());
  const uint64_t at_fork = marker;
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  marker = ~at_fork;  // ours changes; the child's copy keeps the value at fork
  uint64_t got = 0;
  iovec local{&got, sizeof got};
  iovec remote{const_cast<uint64_t*>(&marker), sizeof got};
  ssize_t n = ::process_vm_readv(child.pid(), &local, 1, &remote, 1, 0);
  if (n != static_cast<ssize_t>(sizeof got)) return ErrStatus("process_vm_readv");
  if (got != at_fork) return Status::Error("read " + Hex(got) + ", expected " + Hex(at_fork));
  return std::string("read 8 bytes of the child's stack");
}

ProbeResult ProbeMapFiles() {
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  std::string proc = "/proc/" + std::to_string(child.pid());
  Result<std::string> maps = ReadFile(proc + "/maps");
  if (!maps.ok()) return maps.status();
  // The first file-backed mapping: "start-end perms offset dev inode /path".
  size_t line = 0;
  while (line < maps->size()) {
    size_t eol = maps->find('\n', line);
    if (eol == std::string::npos) eol = maps->size();
    std::string text = maps->substr(line, eol - line);
    line = eol + 1;
    size_t slash = text.find(" /");
    if (slash == std::string::npos) continue;
    std::string range = text.substr(0, text.find(' '));
    std::string file = text.substr(slash + 1);
    std::string link = proc + "/map_files/" + range;
    UniqueFd fd(::open(link.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) {
      int err = errno;
      std::string why = err == EPERM ? " (needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN)" : "";
      return Status::Error("open " + link + ": " + ErrName(err) + why);
    }
    struct stat via_link, via_path;
    if (::fstat(fd.get(), &via_link) == 0 && ::stat(file.c_str(), &via_path) == 0 &&
        (via_link.st_ino != via_path.st_ino || via_link.st_dev != via_path.st_dev)) {
      return Status::Error(link + " opens a different file than " + file);
    }
    return "opened " + file + " through map_files/" + range;
  }
  return Status::Error(proc + "/maps has no file-backed mapping");
}

ProbeResult ProbePagemap() {
  ScopedMapping page(::getpagesize());
  if (!page.ok()) return ErrStatus("mmap");
  page.data()[0] = 1;  // present here, and so in the child (fork copies the page table)
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  Result<uint64_t> entry = PagemapEntry(child.pid(), page.data());
  if (!entry.ok()) return entry.status();
  if (!(*entry & kPagemapPresent)) return Status::Error("entry " + Hex(*entry) + " of a touched page lacks bit 63");
  return std::string("present bit set, ") +
         ((*entry & kPagemapPfnMask) ? "pfn visible" : "pfn hidden (needs CAP_SYS_ADMIN)");
}

// Picks a PID that is likely free: a little past the last one handed out.
pid_t CandidatePid(long long last, long long pid_max, int attempt) {
  long long pid = last + 16 + attempt * 7;
  if (pid >= pid_max) pid = 300 + pid % (pid_max - 300);
  return static_cast<pid_t>(pid);
}

ProbeResult ProbeClone3SetTid() {
  Result<long long> pid_max = ReadProcNumber("/proc/sys/kernel/pid_max");
  if (!pid_max.ok()) return pid_max.status();
  for (int attempt = 0; attempt < 16; ++attempt) {
    Result<long long> last = ReadProcNumber("/proc/sys/kernel/ns_last_pid");
    if (!last.ok()) return last.status();
    pid_t want = CandidatePid(*last, *pid_max, attempt);
    if (::access(("/proc/" + std::to_string(want)).c_str(), F_OK) == 0) continue;
    uint64_t set_tid[1] = {static_cast<uint64_t>(want)};
    CloneArgs args{};
    args.exit_signal = SIGCHLD;
    args.set_tid = reinterpret_cast<uintptr_t>(set_tid);
    args.set_tid_size = 1;
    long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid == 0) ::syscall(SYS_exit_group, 0);  // the child: a bare copy of us, leave at once
    if (pid < 0) {
      int err = errno;
      if (err == EEXIST) continue;  // taken between the check and the call
      std::string why = err == EPERM    ? " (needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE over the PID namespace)"
                        : err == ENOSYS ? " (clone3 needs kernel 5.5+)"
                                        : "";
      return Status::Error("clone3 with set_tid: " + ErrName(err) + why);
    }
    std::optional<int> status = KillAndReap(static_cast<pid_t>(pid));
    if (!status) return Status::Error("child " + std::to_string(pid) + " was not reaped");
    if (pid != want) {
      return Status::Error("asked for pid " + std::to_string(want) + ", got " + std::to_string(pid));
    }
    return "created pid " + std::to_string(pid) + " on request";
  }
  return Status::Error("no free pid found in 16 attempts (every choice was taken)");
}

// Sets the mm fields to the values they already have (a no-op restore).
ChildReport SetOwnMmMap(const void* arg) {
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP, reinterpret_cast<unsigned long>(arg), sizeof(PrctlMmMap), 0) != 0) {
    return ChildReport{1, errno, {}};
  }
  return ChildReport{};
}

// This process's mm fields, from /proc/self/stat, brk(0) and /proc/self/auxv.
// auxv must outlive the map, which points into it.
Result<PrctlMmMap> OwnMmMap(std::vector<uint64_t>* auxv) {
  Result<std::string> stat = ReadFile("/proc/self/stat");
  if (!stat.ok()) return stat.status();
  size_t close = stat->rfind(')');
  if (close == std::string::npos) return Status::Error("/proc/self/stat: no ')'");
  std::vector<uint64_t> field(3);  // field[n] is stat field n, counted from 1
  const char* p = stat->c_str() + close + 2;
  while (*p) {
    char* end = nullptr;
    field.push_back(std::strtoull(p, &end, 10));  // the state letter reads as 0
    p = end == p ? p + 1 : end;
    while (*p == ' ' || *p == '\n') ++p;
  }
  if (field.size() <= 51) return Status::Error("/proc/self/stat: fewer than 51 fields");
  Result<std::string> aux = ReadFile("/proc/self/auxv");
  if (!aux.ok()) return aux.status();
  auxv->assign(aux->size() / sizeof(uint64_t), 0);
  std::memcpy(auxv->data(), aux->data(), auxv->size() * sizeof(uint64_t));
  PrctlMmMap map{};
  map.start_code = field[26];
  map.end_code = field[27];
  map.start_stack = field[28];
  map.start_data = field[45];
  map.end_data = field[46];
  map.start_brk = field[47];
  map.brk = static_cast<uint64_t>(::syscall(SYS_brk, 0));
  map.arg_start = field[48];
  map.arg_end = field[49];
  map.env_start = field[50];
  map.env_end = field[51];
  map.auxv = auxv->data();
  map.auxv_size = static_cast<uint32_t>(auxv->size() * sizeof(uint64_t));
  map.exe_fd = static_cast<uint32_t>(-1);  // keep /proc/PID/exe
  return map;
}

ProbeResult ProbePrctlMmMap() {
  unsigned int size = 0;
  if (::prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, reinterpret_cast<unsigned long>(&size), 0, 0) != 0) {
    int err = errno;
    std::string why = err == EINVAL ? " (kernel without CONFIG_CHECKPOINT_RESTORE)" : "";
    return Status::Error("prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE): " + ErrName(err) + why);
  }
  if (size != sizeof(PrctlMmMap)) {
    return Status::Error("struct prctl_mm_map is " + std::to_string(size) + " bytes, roam knows " +
                         std::to_string(sizeof(PrctlMmMap)));
  }
  std::vector<uint64_t> auxv;
  Result<PrctlMmMap> map = OwnMmMap(&auxv);
  if (!map.ok()) return map.status();
  Result<ChildReport> r = RunInChild(SetOwnMmMap, &*map);
  if (!r.ok()) return r.status();
  if (r->step != 0) {
    std::string why = r->err == EPERM ? " (needs CAP_SYS_RESOURCE)" : "";
    return Status::Error("PR_SET_MM_MAP with the process's own layout: " + ErrName(r->err) + why);
  }
  return "struct prctl_mm_map is " + std::to_string(size) + " bytes; a fork set its own layout back; " +
         "CAP_SYS_RESOURCE " + (HasCapability(kCapSysResource) ? "held" : "not held");
}

ProbeResult ProbeKcmp() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrStatus("pipe2");
  UniqueFd rd(fds[0]), wr(fds[1]);
  PausedChild child;  // inherits both ends
  Status st = child.Start();
  if (!st.ok()) return st;
  long same = ::syscall(SYS_kcmp, ::getpid(), child.pid(), KCMP_FILE, rd.get(), rd.get());
  if (same < 0) {
    int err = errno;
    std::string why = err == ENOSYS ? " (kernel without CONFIG_KCMP)" : "";
    return Status::Error("kcmp KCMP_FILE: " + ErrName(err) + why);
  }
  long different = ::syscall(SYS_kcmp, ::getpid(), child.pid(), KCMP_FILE, rd.get(), wr.get());
  if (same != 0 || different <= 0) {
    return Status::Error("kcmp KCMP_FILE answered " + std::to_string(same) + " for a shared file and " +
                         std::to_string(different) + " for different ones");
  }
  return std::string("tells an inherited file from a different one");
}

ProbeResult ProbePidfdGetfd() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return ErrStatus("pipe2");
  UniqueFd rd(fds[0]), wr(fds[1]);
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, child.pid(), 0)));
  if (pidfd.get() < 0) return ErrStatus("pidfd_open");
  UniqueFd copy(static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd.get(), rd.get(), 0)));
  if (copy.get() < 0) return ErrStatus("pidfd_getfd");
  struct stat ours, theirs;
  if (::fstat(rd.get(), &ours) != 0 || ::fstat(copy.get(), &theirs) != 0) return ErrStatus("fstat");
  if (ours.st_ino != theirs.st_ino) return Status::Error("pidfd_getfd returned a different file");
  return "copied the child's fd " + std::to_string(rd.get());
}

ProbeResult ProbeTaskChildren() {
  PausedChild child;
  Status st = child.Start();
  if (!st.ok()) return st;
  std::string path = "/proc/" + std::to_string(::getpid()) + "/task/" + std::to_string(::gettid()) + "/children";
  Result<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return Status::Error(text.status().message() + " (kernel without CONFIG_PROC_CHILDREN)");
  }
  std::string pid = std::to_string(child.pid());
  std::string padded = " " + *text + " ";
  for (char& c : padded) {
    if (c == '\n') c = ' ';
  }
  if (padded.find(" " + pid + " ") == std::string::npos) {
    return Status::Error(path + " does not list child " + pid);
  }
  return std::string("lists the forked child");
}

ProbeResult ProbeTimerfdTicks() {
  UniqueFd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  if (fd.get() < 0) return ErrStatus("timerfd_create");
  uint64_t ticks = 3;
  if (::ioctl(fd.get(), TFD_IOC_SET_TICKS, &ticks) != 0) {
    int err = errno;
    std::string why = err == ENOTTY ? " (kernel without CONFIG_CHECKPOINT_RESTORE)" : "";
    return Status::Error("ioctl TFD_IOC_SET_TICKS: " + ErrName(err) + why);
  }
  uint64_t read_back = 0;
  if (::read(fd.get(), &read_back, sizeof read_back) != static_cast<ssize_t>(sizeof read_back)) {
    return ErrStatus("read timerfd");
  }
  if (read_back != ticks) return Status::Error("set 3 ticks, read " + std::to_string(read_back));
  return std::string("set 3 ticks and read them back");
}

// The special mappings of the vDSO, in address order, as in /proc/self/maps.
struct VdsoLayout {
  int count = 0;
  uint64_t start[4] = {};
  uint64_t size[4] = {};
};

// What MoveVdsoAway reports in ChildReport::step; value[0] is the index of
// the mapping that failed to move.
enum VdsoStep { kVdsoMoved = 0, kVdsoReserve, kVdsoAway, kVdsoBack, kVdsoClock };

// Moves the mappings of the layout, keeping their relative positions (as the
// restorer will), into a fresh reserved range, then all back, then calls
// clock_gettime (through the vDSO, whose address glibc has cached).
ChildReport MoveVdsoAwayAndBack(const void* arg) {
  const VdsoLayout& l = *static_cast<const VdsoLayout*>(arg);
  const uint64_t first = l.start[0];
  const uint64_t span = l.start[l.count - 1] + l.size[l.count - 1] - first;
  void* reserved = ::mmap(nullptr, span, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (reserved == MAP_FAILED) return ChildReport{kVdsoReserve, errno, {}};
  const uint64_t base = reinterpret_cast<uintptr_t>(reserved);
  for (int i = 0; i < l.count; ++i) {
    void* to = reinterpret_cast<void*>(base + (l.start[i] - first));
    void* at = ::mremap(reinterpret_cast<void*>(l.start[i]), l.size[i], l.size[i], MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (at != to) return ChildReport{kVdsoAway, errno, {static_cast<uint64_t>(i)}};
  }
  for (int i = 0; i < l.count; ++i) {
    void* from = reinterpret_cast<void*>(base + (l.start[i] - first));
    void* back = reinterpret_cast<void*>(l.start[i]);
    if (::mremap(from, l.size[i], l.size[i], MREMAP_MAYMOVE | MREMAP_FIXED, back) != back) {
      return ChildReport{kVdsoBack, errno, {static_cast<uint64_t>(i)}};
    }
  }
  timespec ts{};
  if (::clock_gettime(CLOCK_MONOTONIC, &ts) != 0 || (ts.tv_sec == 0 && ts.tv_nsec == 0)) {
    return ChildReport{kVdsoClock, errno, {}};
  }
  return ChildReport{};
}

ProbeResult ProbeVdsoMremap() {
  Result<std::string> maps = ReadFile("/proc/self/maps");
  if (!maps.ok()) return maps.status();
  VdsoLayout layout;
  std::string names[4];
  size_t line = 0;
  while (line < maps->size() && layout.count < 4) {
    size_t eol = maps->find('\n', line);
    if (eol == std::string::npos) eol = maps->size();
    std::string text = maps->substr(line, eol - line);
    line = eol + 1;
    size_t open = text.rfind(" [");
    if (open == std::string::npos) continue;
    std::string name = text.substr(open + 1);
    if (name != "[vdso]" && name.rfind("[vvar", 0) != 0) continue;
    uint64_t start = std::strtoull(text.c_str(), nullptr, 16);
    uint64_t end = std::strtoull(text.c_str() + text.find('-') + 1, nullptr, 16);
    layout.start[layout.count] = start;
    layout.size[layout.count] = end - start;
    names[layout.count++] = name;
  }
  bool has_vdso = false;
  std::string all;
  for (int i = 0; i < layout.count; ++i) {
    has_vdso |= names[i] == "[vdso]";
    all += (i == 0 ? "" : i + 1 == layout.count ? " and " : ", ") + names[i];
  }
  if (!has_vdso) return Status::Error("this process has no [vdso] mapping");
  Result<ChildReport> r = RunInChild(MoveVdsoAwayAndBack, &layout);
  if (!r.ok()) return Status::Error("after moving " + all + ": " + r.status().message());
  const std::string& which = names[r->value[0] < 4 ? r->value[0] : 0];
  switch (r->step) {
    case kVdsoMoved:
      return "moved " + all + " together and back; clock_gettime still works";
    case kVdsoReserve:
      return ErrStatus("mmap a range for the vDSO", r->err);
    case kVdsoAway:
      return ErrStatus("mremap " + which + " away", r->err);
    case kVdsoBack:
      return ErrStatus("mremap " + which + " back", r->err);
    default:
      return Status::Error("clock_gettime failed after moving " + all + " and back");
  }
}

ProbeResult ProbeUffdWpAsync() {
  UniqueFd uffd(static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK)));
  if (uffd.get() < 0) {
    int err = errno;
    std::string why = err == EPERM ? " (needs CAP_SYS_PTRACE, or vm.unprivileged_userfaultfd=1)" : "";
    return Status::Error("userfaultfd: " + ErrName(err) + why);
  }
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (::ioctl(uffd.get(), UFFDIO_API, &api) != 0) {
    int err = errno;
    std::string why = err == EINVAL ? " (UFFD_FEATURE_WP_ASYNC needs kernel 6.7+)" : "";
    return Status::Error("UFFDIO_API with WP_ASYNC and WP_UNPOPULATED: " + ErrName(err) + why);
  }
  return "granted; kernel features " + Hex(api.features);
}

// The dirty-page tracking the engine plans for live migration: write-protect
// 16 pages with async userfaultfd, write pages 3, 9 and 10, and expect one
// PAGEMAP_SCAN to return exactly [3,4) and [9,11) and re-protect them, and a
// second scan to return nothing. value[0]/[1] = regions found by scan 1/2.
ChildReport ScanWrittenPages(const void*) {
  constexpr int kPages = 16;
  const uint64_t page = static_cast<uint64_t>(::getpagesize());
  int uffd = static_cast<int>(::syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
  if (uffd < 0) return ChildReport{1, errno, {}};
  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (::ioctl(uffd, UFFDIO_API, &api) != 0) return ChildReport{2, errno, {}};
  char* area =
      static_cast<char*>(::mmap(nullptr, kPages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (area == MAP_FAILED) return ChildReport{3, errno, {}};
  const uint64_t base = reinterpret_cast<uintptr_t>(area);
  uffdio_register reg{};
  reg.range = {base, kPages * page};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (::ioctl(uffd, UFFDIO_REGISTER, &reg) != 0) return ChildReport{4, errno, {}};
  uffdio_writeprotect wp{};
  wp.range = {base, kPages * page};
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (::ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) != 0) return ChildReport{5, errno, {}};
  area[3 * page] = 1;
  area[9 * page] = 1;
  area[10 * page] = 1;
  int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return ChildReport{6, errno, {}};
  ChildReport r;
  for (int scan = 0; scan < 2; ++scan) {
    page_region regions[8] = {};
    pm_scan_arg arg{};
    arg.size = sizeof arg;
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = base;
    arg.end = base + kPages * page;
    arg.vec = reinterpret_cast<uintptr_t>(regions);
    arg.vec_len = 8;
    arg.category_mask = PAGE_IS_WRITTEN;
    arg.return_mask = PAGE_IS_WRITTEN;
    int n = ::ioctl(pagemap, PAGEMAP_SCAN, &arg);
    if (n < 0) return ChildReport{7 + scan, errno, {}};
    r.value[scan] = static_cast<uint64_t>(n);
    if (scan == 0) {
      bool exact = n == 2 && regions[0].start == base + 3 * page && regions[0].end == base + 4 * page &&
                   regions[1].start == base + 9 * page && regions[1].end == base + 11 * page;
      if (!exact) return ChildReport{9, 0, {r.value[0]}};
    } else if (n != 0) {
      return ChildReport{10, 0, {r.value[0], r.value[1]}};
    }
  }
  return r;
}

ProbeResult ProbePagemapScan() {
  Result<ChildReport> r = RunInChild(ScanWrittenPages, nullptr);
  if (!r.ok()) return r.status();
  static const char* const kSteps[] = {"",
                                       "userfaultfd",
                                       "UFFDIO_API with WP_ASYNC (needs kernel 6.7+)",
                                       "mmap",
                                       "UFFDIO_REGISTER in write-protect mode",
                                       "UFFDIO_WRITEPROTECT",
                                       "open /proc/self/pagemap",
                                       "ioctl PAGEMAP_SCAN (needs kernel 6.7+)",
                                       "second PAGEMAP_SCAN"};
  switch (r->step) {
    case 0:
      return std::string("reported exactly the 3 pages written since write-protect, then none");
    case 9:
      return Status::Error("first scan found " + std::to_string(r->value[0]) +
                           " regions, expected [3,4) and [9,11) of 16 pages");
    case 10:
      return Status::Error("second scan found " + std::to_string(r->value[1]) + " regions, expected none");
    default:
      if (r->step > 0 && r->step < 9) return Status::Error(std::string(kSteps[r->step]) + ": " + ErrName(r->err));
      return Status::Error("unknown failure step " + std::to_string(r->step));
  }
}

// After clear_refs 4, writes a page and reads its pagemap entry into value[0].
ChildReport WriteAfterClearRefs(const void*) {
  const size_t page = static_cast<size_t>(::getpagesize());
  char* p = static_cast<char*>(::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (p == MAP_FAILED) return ChildReport{1, errno, {}};
  p[0] = 1;
  int clear = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (clear < 0 || ::write(clear, "4", 1) != 1) return ChildReport{2, errno, {}};
  p[0] = 2;
  int pagemap = ::open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (pagemap < 0) return ChildReport{3, errno, {}};
  ChildReport r;
  off_t off = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / page * 8);
  if (::pread(pagemap, &r.value[0], 8, off) != 8) return ChildReport{3, errno, {}};
  return r;
}

ProbeResult ProbeSoftDirty() {
  Result<ChildReport> r = RunInChild(WriteAfterClearRefs, nullptr);
  if (!r.ok()) return r.status();
  if (r->step == 1) return ErrStatus("mmap", r->err);
  if (r->step == 2) return ErrStatus("write 4 to /proc/self/clear_refs", r->err);
  if (r->step == 3) return ErrStatus("read /proc/self/pagemap", r->err);
  if (!(r->value[0] & kPagemapSoftDirty)) {
    return Status::Error(
        "pagemap bit 55 stays clear after a write (kernel without CONFIG_MEM_SOFT_DIRTY); live migration "
        "must track dirty pages with userfaultfd and PAGEMAP_SCAN");
  }
  return std::string("a write after clear_refs 4 sets pagemap bit 55");
}

ProbeResult ProbePidMax() {
  Result<long long> pid_max = ReadProcNumber("/proc/sys/kernel/pid_max");
  if (!pid_max.ok()) return pid_max.status();
  std::string detail = std::to_string(*pid_max);
  if (*pid_max < 4194304) {
    detail += "; PIDs wrap quickly, so a restore may find its PID taken (kernel.pid_max=4194304 makes that rare)";
  }
  return detail;
}

struct Probe {
  const char* name;
  bool required;
  ProbeResult (*run)();
};

// Every probe, in report order.
constexpr Probe kProbes[] = {
    {"architecture", true, ProbeArchitecture},
    {"xsave", true, ProbeXsaveState},
    {"ptrace seize/interrupt", true, ProbePtraceSeize},
    {"ptrace xstate regset", true, ProbeXstateRegset},
    {"ptrace syscall info", true, ProbeSyscallInfo},
    {"ptrace rseq configuration", true, ProbeRseqConfiguration},
    {"ptrace sigmask", true, ProbeSigmask},
    {"ptrace peeksiginfo", true, ProbePeekSiginfo},
    {"process_vm_readv", true, ProbeProcessVmReadv},
    {"/proc/PID/map_files", true, ProbeMapFiles},
    {"/proc/PID/pagemap", true, ProbePagemap},
    {"clone3 set_tid", true, ProbeClone3SetTid},
    {"prctl PR_SET_MM_MAP", true, ProbePrctlMmMap},
    {"kcmp", true, ProbeKcmp},
    {"pidfd_open/pidfd_getfd", true, ProbePidfdGetfd},
    {"/proc/PID/task/TID/children", true, ProbeTaskChildren},
    {"timerfd set ticks", true, ProbeTimerfdTicks},
    {"vdso mremap", true, ProbeVdsoMremap},
    {"userfaultfd wp-async", false, ProbeUffdWpAsync},
    {"pagemap scan", false, ProbePagemapScan},
    {"soft-dirty", false, ProbeSoftDirty},
    {"pid_max", false, ProbePidMax},
};

}  // namespace

// ---- public ------------------------------------------------------------------

CpuXsaveInfo ProbeXsave() {
  CpuXsaveInfo info;
#if defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return info;
  uint32_t lo, hi;
  asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  info.xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
  __cpuid_count(0xd, 0, eax, ebx, ecx, edx);
  info.xsave_size = ebx;
#endif
  return info;
}

std::vector<FeatureCheck> ProbeKernelFeatures() {
  std::vector<FeatureCheck> checks;
  for (const Probe& p : kProbes) {
    ProbeResult r = p.run();
    checks.push_back(FeatureCheck{p.name, r.ok(), p.required, r.ok() ? *r : r.status().message()});
  }
  return checks;
}

std::string RenderFeatureReport(const std::vector<FeatureCheck>& checks) {
  std::string out, missing;
  for (const FeatureCheck& c : checks) {
    std::string status = c.ok ? "ok" : c.required ? "MISSING" : "no";
    status.resize(8, ' ');
    out += status + c.name + (c.detail.empty() ? "" : ": " + c.detail) + "\n";
    if (c.required && !c.ok) missing += (missing.empty() ? "" : ", ") + c.name;
  }
  out += missing.empty() ? "ok\n" : "missing: " + missing + "\n";
  return out;
}

bool AllRequiredPresent(const std::vector<FeatureCheck>& checks) {
  for (const FeatureCheck& c : checks) {
    if (c.required && !c.ok) return false;
  }
  return true;
}

int RunCheckCommand() {
  std::vector<FeatureCheck> checks = ProbeKernelFeatures();
  std::string report = RenderFeatureReport(checks);
  std::fwrite(report.data(), 1, report.size(), stdout);
  std::fflush(stdout);
  return AllRequiredPresent(checks) ? 0 : 1;
}

}  // namespace roam
