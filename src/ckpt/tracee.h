// A process held under ptrace by the engine: frozen, its registers read or
// written, and system calls injected into it. Used by both sides: the dump
// seizes a live process; the restore seizes its own seed processes.
//
// Injection runs a system call in the tracee's own context: the registers
// are saved, RIP is pointed at a `syscall` instruction inside the tracee
// (set_syscall_ip), the call runs between two PTRACE_SYSCALL stops, and the
// registers are put back. Signals stay blocked in the tracee while the
// engine works (BlockSignals), so no signal is delivered, or lost, meanwhile.
//
// A Tracee is one thread (a task): a multi-threaded process is held as one
// Tracee per thread, each seized, read and resumed on its own (threads.cc);
// memory is the process's, reached through any of them.
//
// Not thread-safe; ptrace binds every tracee to the one thread of ours that
// seized it, so all calls on a tree's Tracees come from that thread.
#pragma once

#include <sched.h>
#include <sys/types.h>
#include <sys/user.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

class Tracee {
 public:
  // `pid`: the task (a thread's TID); `tgid`: its process, if another.
  explicit Tracee(pid_t pid, pid_t tgid = 0) : pid_(pid), tgid_(tgid != 0 ? tgid : pid) {}
  ~Tracee();
  Tracee(const Tracee&) = delete;
  Tracee& operator=(const Tracee&) = delete;

  // PTRACE_SEIZE + PTRACE_INTERRUPT, then waits for the stop. A signal that
  // was being delivered at that moment is taken out of the way and kept in
  // stolen_signals() (it must be queued again: the caller decides where).
  Status Seize();
  // Seize in two halves: Attach (PTRACE_SEIZE + PTRACE_INTERRUPT) and
  // WaitSeized (the stop). The threads of a stopped process are attached
  // before its leader lifts the group stop, so that none runs meanwhile.
  Status Attach();
  Status WaitSeized();
  bool waited() const { return waited_; }
  // A thread that the tracee's injected clone made: it is traced already
  // (PTRACE_O_TRACECLONE) and stops before running any of its code. Waits
  // for that stop.
  Status Adopt();
  // Makes a thread of its process by an injected clone3 with the
  // clone_args at `args` (its memory). The new thread is traced and held
  // (Adopt it). Returns the raw result: its TID, or -errno.
  Result<long> CloneThread(uint64_t args, uint64_t size);
  // Ends this thread (not the process) by an injected exit(0), and takes
  // its exit. REQUIRES: not the leader; syscall_ip() set.
  Status ExitThread();
  // While waiting for this tracee's stops, reap these threads of its
  // process as they exit: an execve (Exec) waits for its other threads to
  // be reaped, and we are their tracer.
  void ReapWhileWaiting(std::vector<pid_t> tids) { reap_ = std::move(tids); }
  // Leaves the process; `signal` is delivered on the way out (0: none).
  // A process held on a CPU (HoldOnThisCpu) gets its own CPU mask back first.
  Status Detach(int signal = 0);
  // Keeps the frozen process on the CPU the calling thread runs on, so that
  // the ptrace stops of injected calls do not cross CPUs (each crossing is a
  // VM wake-up, ~80 us here; see EngineWorker, which pins its thread). Its
  // own mask is kept (original_affinity) and given back by Detach; if the
  // tracer dies first, the process keeps the one-CPU mask. Best effort.
  void HoldOnThisCpu();
  // Its mask is set for good (a restore set the recorded one): Detach
  // leaves it as it is.
  void KeepAffinity() { held_on_cpu_ = false; }
  // The mask it had before HoldOnThisCpu, or null if it was not held.
  const cpu_set_t* original_affinity() const { return held_on_cpu_ ? &affinity_ : nullptr; }

  pid_t pid() const { return pid_; }
  pid_t tgid() const { return tgid_; }
  bool was_stopped() const { return was_stopped_; }  // in group stop when seized
  const std::vector<std::string>& stolen_signals() const { return stolen_; }

  Status GetRegs(user_regs_struct* regs);
  Status SetRegs(const user_regs_struct& regs);
  Result<std::string> GetXstate();
  Status SetXstate(const std::string& xstate);
  Result<uint64_t> GetSigmask();
  Status SetSigmask(uint64_t mask);
  // Blocks every signal for the time of the engine's work; RestoreSigmask
  // puts back the mask read here.
  Status BlockSignals();
  Status RestoreSigmask();
  uint64_t saved_sigmask() const { return saved_mask_; }

  void set_syscall_ip(uint64_t ip) { syscall_ip_ = ip; }
  uint64_t syscall_ip() const { return syscall_ip_; }
  // Runs syscall `nr` in the tracee; returns its raw result (-errno on
  // failure, as the kernel returns it) or an error if ptrace failed.
  Result<long> Syscall(long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0, uint64_t a4 = 0,
                       uint64_t a5 = 0, uint64_t a6 = 0);
  // Same, and a negative result becomes an error naming `what`.
  Result<long> SyscallOk(const std::string& what, long nr, uint64_t a1 = 0, uint64_t a2 = 0, uint64_t a3 = 0,
                         uint64_t a4 = 0, uint64_t a5 = 0, uint64_t a6 = 0);

  // Makes the tracee call execve(path, argv, envp), all three addresses in
  // its own memory. On success it now runs the new program (its old
  // registers are gone: detach it without touching them); on failure it is
  // as it was.
  Status Exec(uint64_t path, uint64_t argv, uint64_t envp);
  // The same with strings of ours: they are laid out in a scratch mapping
  // of the tracee (removed again if the exec fails). argv[0] is the path.
  // An exec keeps the interval timers (setitimer) the old program armed,
  // and the new one would die of their first SIGALRM, SIGVTALRM or SIGPROF:
  // they are disarmed with it, and put back as they were if it fails.
  // It keeps the resource limits too: `min_open_files`, the new program's
  // need, raises the soft RLIMIT_NOFILE to it (and the hard one, if the
  // process holds CAP_SYS_RESOURCE), or fails before the exec (kCantMove)
  // if it cannot; put back if the exec fails.
  // REQUIRES: syscall_ip() set, or a syscall instruction to find (FindSyscallInstruction).
  Status ExecProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                     uint64_t min_open_files = 0);

  // Registers to resume with after an injection session: a system call
  // the process was interrupted in (-ERESTART*) is set up to run again, as
  // the kernel would have done. `same_process`: the kernel's restart block
  // is still there (dump with --leave-running), so -ERESTART_RESTARTBLOCK
  // resumes through restart_syscall; otherwise (restore) the call is
  // issued again with its original arguments. A restore of a thread whose
  // call is not known (restart_syscall, see NameRestartedCall) gets EINTR
  // from it, as the kernel gives when a restart is impossible.
  static user_regs_struct ResumeRegs(user_regs_struct regs, bool same_process);
  // Sets this held thread's registers to ResumeRegs(current, true): it goes
  // on into the call it was interrupted in.
  Status ResumeInterruptedCall();

  // The kernel forgets which call restart_syscall resumes: the restart
  // block (poll(2), a relative sleep or futex wait) is not visible from
  // user space, and a thread resumed so (by the engine after it was
  // interrupted, or by the kernel after a stop and SIGCONT) reports only
  // restart_syscall when interrupted again. A dump for another process
  // must name the real call. Attach, before it interrupts the thread,
  // reads /proc/TID/syscall and, for restart_syscall, the kernel stack
  // (root only): do_restart_poll names poll, futex_wait_restart futex, and
  // a restart that names neither is a sleep's (hrtimer_nanosleep_restart
  // and its kin do not show), clock_nanosleep if its first argument is a
  // clock id, nanosleep if it is a pointer.
  // NameRestartedCall: if `regs` (of this thread, as interrupted) are in
  // restart_syscall and Attach named the call, sets their orig_rax to it
  // and returns true. Otherwise leaves them.
  bool NameRestartedCall(user_regs_struct* regs) const;

  // Memory of the tracee, through /proc/PID/mem (works on read-only pages).
  Status ReadMemory(uint64_t addr, void* buf, size_t len);
  Status WriteMemory(uint64_t addr, const void* buf, size_t len);

 private:
  Status WaitStop(int* status);
  Status StepToSyscallStop(const char* which);
  Status Inject(const user_regs_struct& saved, long nr, const uint64_t (&args)[6], user_regs_struct* after);

  pid_t pid_ = 0;
  pid_t tgid_ = 0;
  std::vector<pid_t> reap_;
  long cloned_ = 0;  // the TID a PTRACE_EVENT_CLONE reported
  bool seized_ = false;
  bool waited_ = false;
  bool was_stopped_ = false;
  long restarted_call_ = -1;  // the call restart_syscall resumes (Attach), or -1
  bool signals_blocked_ = false;
  cpu_set_t affinity_;
  bool held_on_cpu_ = false;
  uint64_t saved_mask_ = 0;
  uint64_t syscall_ip_ = 0;
  int mem_fd_ = -1;
  std::vector<std::string> stolen_;  // siginfo_t bytes
};

// The address of a `syscall` instruction (0f 05) in the code of `pid`, for
// injection without patching program code: in its [vdso], or for a
// process that unmapped it (valgrind's, some sandboxes) in the code of one
// of its files, else in any code it maps. An error (kCantMove) if it has
// none.
Result<uint64_t> FindSyscallInstruction(pid_t pid);

}  // namespace roam
