// A thread resumed through restart_syscall reports only that when it is
// interrupted again; the dump must name the call it resumes
// (Tracee::NameRestartedCall), or a restore elsewhere gets EINTR from it.
// Real children, real ptrace (as root: the kernel stack is read).
#include <linux/futex.h>
#include <poll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <ctime>
#include <string>

#include <gtest/gtest.h>

#include "ckpt/tracee.h"
#include "common/file_util.h"
#include "test_child.h"

namespace roam {
namespace {

// The system call `pid` is in (/proc/PID/syscall), or -2.
long SyscallOf(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/syscall");
  return text.ok() && !text->empty() && isdigit(static_cast<unsigned char>((*text)[0])) ? strtol(text->c_str(), nullptr, 10)
                                                                                         : -2;
}

bool WaitSyscall(pid_t pid, long nr) {
  for (int i = 0; i < 3000; ++i) {
    if (SyscallOf(pid) == nr) return true;
    usleep(1000);
  }
  return false;
}

pid_t Sleeper() {
  pid_t pid = fork();
  if (pid == 0) {
    OnlyDevNullFds();
    for (;;) {
      timespec req{30, 0};
      nanosleep(&req, nullptr);
    }
  }
  return pid;
}

pid_t Poller() {
  pid_t pid = fork();
  if (pid == 0) {
    OnlyDevNullFds();
    int p[2];
    if (pipe(p) != 0) _exit(1);
    for (;;) {
      pollfd f{p[0], POLLIN, 0};
      poll(&f, 1, -1);
    }
  }
  return pid;
}

pid_t Futexer() {
  pid_t pid = fork();
  if (pid == 0) {
    OnlyDevNullFds();
    static int word = 0;
    for (;;) {
      timespec timeout{30, 0};  // relative: a restart block
      syscall(SYS_futex, &word, FUTEX_WAIT, 0, &timeout, nullptr, 0);
    }
  }
  return pid;
}

// Seizes `pid` and returns its registers as a dump records them (the call
// restart_syscall resumes named, if it can be).
user_regs_struct Dumped(pid_t pid, bool* named = nullptr) {
  Tracee t(pid);
  user_regs_struct regs{};
  EXPECT_TRUE(t.Seize().ok());
  EXPECT_TRUE(t.GetRegs(&regs).ok());
  const bool n = t.NameRestartedCall(&regs);
  if (named) *named = n;
  EXPECT_TRUE(t.Detach().ok());
  return regs;
}

// Stops and continues `pid`: the kernel resumes its call through
// restart_syscall.
void StopAndContinue(pid_t pid) {
  kill(pid, SIGSTOP);
  kill(pid, SIGCONT);
}

TEST(RestartedCall, ASleepTheEngineResumedIsNamedAtTheNextDump) {
  pid_t pid = Sleeper();
  ASSERT_TRUE(WaitSyscall(pid, SYS_clock_nanosleep));
  {
    Tracee t(pid);
    ASSERT_TRUE(t.Seize().ok());
    ASSERT_TRUE(t.ResumeInterruptedCall().ok());
    ASSERT_TRUE(t.Detach().ok());
  }
  ASSERT_TRUE(WaitSyscall(pid, SYS_restart_syscall));
  bool named = false;
  user_regs_struct regs = Dumped(pid, &named);
  EXPECT_TRUE(named);
  EXPECT_EQ(static_cast<long>(regs.orig_rax), SYS_clock_nanosleep);
  // Restored elsewhere, it sleeps again rather than failing.
  EXPECT_EQ(static_cast<long>(Tracee::ResumeRegs(regs, false).rax), SYS_clock_nanosleep);
  KillChild(pid);
}

// A child blocked in `nr` (made by `make`), stopped and continued: the
// kernel resumes its call through restart_syscall; a dump names `nr`.
void ExpectNamedAfterAStop(pid_t (*make)(), long nr) {
  pid_t pid = make();
  ASSERT_TRUE(WaitSyscall(pid, nr));
  StopAndContinue(pid);
  ASSERT_TRUE(WaitSyscall(pid, SYS_restart_syscall));
  EXPECT_EQ(static_cast<long>(Dumped(pid).orig_rax), nr);
  KillChild(pid);
}

TEST(RestartedCall, APollTheKernelRestartedIsNamed) { ExpectNamedAfterAStop(Poller, SYS_poll); }
TEST(RestartedCall, ASleepTheKernelRestartedIsNamed) { ExpectNamedAfterAStop(Sleeper, SYS_clock_nanosleep); }
TEST(RestartedCall, AFutexWaitTheKernelRestartedIsNamed) { ExpectNamedAfterAStop(Futexer, SYS_futex); }

TEST(RestartedCall, ACallInterruptedFirstHandIsLeftAlone) {
  pid_t pid = Poller();
  ASSERT_TRUE(WaitSyscall(pid, SYS_poll));
  bool named = true;
  user_regs_struct regs = Dumped(pid, &named);
  EXPECT_FALSE(named);
  EXPECT_EQ(static_cast<long>(regs.orig_rax), SYS_poll);
  KillChild(pid);
}

// What no look could name is restored failing with EINTR, as the kernel
// fails a restart it cannot make; never run as restart_syscall in a
// process that has no restart block.
TEST(RestartedCall, AnUnnamedRestartIsRestoredFailingWithEintr) {
  user_regs_struct regs{};
  regs.orig_rax = SYS_restart_syscall;
  regs.rax = static_cast<uint64_t>(-516);
  regs.rip = 0x401002;
  user_regs_struct moved = Tracee::ResumeRegs(regs, false);
  EXPECT_EQ(static_cast<long>(moved.rax), -EINTR);
  EXPECT_EQ(moved.rip, 0x401002u);
  EXPECT_EQ(static_cast<long>(Tracee::ResumeRegs(regs, true).rax), SYS_restart_syscall);
}

}  // namespace
}  // namespace roam
