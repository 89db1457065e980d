#include "node/guest_spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char** environ;

#include "node/job_terminal.h"

namespace roam {

namespace {

// What the child reports through its CLOEXEC pipe when it cannot exec.
enum Stage : int { kStageTty = 1, kStageCreds, kStageCwd, kStageExec };
struct ChildError {
  int stage;
  int err;
};

void CloseAll(std::initializer_list<int> fds) {
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
}

[[noreturn]] void ChildFail(int pipe_fd, Stage stage) {
  ChildError e{stage, errno};
  ssize_t ignored = ::write(pipe_fd, &e, sizeof e);
  (void)ignored;
  _exit(127);
}

// Raising a hard limit needs CAP_SYS_RESOURCE; without it the limit is
// clamped to ours rather than failing the run.
void ApplyRlimits(const pb::RunSpec& spec) {
  for (const pb::Rlimit& l : spec.rlimits()) {
    rlimit r{static_cast<rlim_t>(l.cur()), static_cast<rlim_t>(l.max())};
    const auto res = static_cast<__rlimit_resource>(l.resource());
    if (::setrlimit(res, &r) == 0) continue;
    rlimit mine{};
    if (::getrlimit(res, &mine) != 0) continue;
    r.rlim_max = std::min(r.rlim_max, mine.rlim_max);
    r.rlim_cur = std::min(r.rlim_cur, r.rlim_max);
    ::setrlimit(res, &r);
  }
}

// What the child needs, prepared by the parent: the child only makes
// syscalls and must not allocate (it shares the parent's memory).
struct ChildContext {
  const pb::RunSpec* spec;
  int slave, stdin_r, stdout_w, stderr_w, report_w;
  pid_t parent;
  uid_t uid;
  gid_t gid;
  const std::vector<gid_t>* groups;
  const char* cwd;
  char** argv;
  char** envp;
};

alignas(64) char g_child_stack[256 << 10];

// Runs in the child, on g_child_stack, until execve or _exit.
int ChildMain(void* arg) {
  const ChildContext& c = *static_cast<const ChildContext*>(arg);
  ::setsid();
  if (c.slave >= 0) {
    if (::ioctl(c.slave, TIOCSCTTY, 0) != 0) ChildFail(c.report_w, kStageTty);
    ::dup2(c.slave, 0);
    ::dup2(c.slave, 1);
    ::dup2(c.slave, 2);
  } else {
    ::dup2(c.stdin_r, 0);
    ::dup2(c.stdout_w, 1);
    ::dup2(c.stderr_w, 2);
  }
  ::syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
  ApplyRlimits(*c.spec);
  // The caller's nice, not roamd's (roamd.cc, kRoamdNice), while still root.
  ::setpriority(PRIO_PROCESS, 0, c.spec->nice());
  ::umask(static_cast<mode_t>(c.spec->umask() & 0777));
  // Raw syscalls: they change this task only (glibc's wrappers would try to
  // change every thread of the process whose memory we borrow).
  if (::syscall(SYS_setgroups, c.groups->size(), c.groups->data()) != 0 ||
      ::syscall(SYS_setresgid, c.gid, c.gid, c.gid) != 0 || ::syscall(SYS_setresuid, c.uid, c.uid, c.uid) != 0) {
    ChildFail(c.report_w, kStageCreds);
  }
  // After the credentials change, which would clear it.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != c.parent) _exit(255);
  if (::chdir(c.cwd) != 0) ChildFail(c.report_w, kStageCwd);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; ++s) ::sigaction(s, &dfl, nullptr);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  environ = c.envp;  // for execvp's PATH search; the parent restores its own
  ::execvp(c.argv[0], c.argv);
  ChildFail(c.report_w, kStageExec);
}

// clone3 whose child runs fn(arg) on the stack given in args and exits with
// its result: with CLONE_VM the child cannot return into the caller's frames.
long Clone3Run(clone_args* args, int (*fn)(void*), void* arg) {
  register long rax asm("rax") = SYS_clone3;
  register clone_args* rdi asm("rdi") = args;
  register size_t rsi asm("rsi") = sizeof *args;
  register int (*r12)(void*) asm("r12") = fn;
  register void* r13 asm("r13") = arg;
  asm volatile(
      "syscall\n\t"
      "testq %%rax, %%rax\n\t"
      "jnz 1f\n\t"
      "xorl %%ebp, %%ebp\n\t"  // the child: a fresh, 16-byte aligned stack
      "movq %%r13, %%rdi\n\t"
      "callq *%%r12\n\t"
      "movl %%eax, %%edi\n\t"
      "movl $60, %%eax\n\t"  // exit
      "syscall\n\t"
      "ud2\n\t"
      "1:\n\t"
      : "+r"(rax)
      : "r"(rdi), "r"(rsi), "r"(r12), "r"(r13)
      : "rcx", "r11", "memory", "cc");
  return rax;
}

}  // namespace

bool SpawnGuest(const pb::SpawnRequest& req, const std::string& node, SpawnedGuest* out, SpawnFailure* fail,
                int cgroup_fd) {
  const pb::RunSpec& spec = req.spec();
  auto failure = [&](std::string msg, int code = 255) {
    fail->message = std::move(msg);
    fail->exit_code = code;
    return false;
  };
  if (spec.argv().empty()) return failure("no command given");

  // Everything the child needs is prepared here: it only makes syscalls.
  std::vector<std::string> argv_s(spec.argv().begin(), spec.argv().end());
  std::vector<std::string> env_s(spec.env().begin(), spec.env().end());
  std::vector<char*> argv, envp;
  for (auto& s : argv_s) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : env_s) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<gid_t> groups(req.creds().groups().begin(), req.creds().groups().end());
  const uid_t uid = req.creds().uid();
  const gid_t gid = req.creds().gid();
  const std::string cwd = spec.cwd().empty() ? "/" : spec.cwd();

  int in[2] = {-1, -1}, outp[2] = {-1, -1}, errp[2] = {-1, -1}, report[2] = {-1, -1};
  int master = -1, slave = -1;
  if (::pipe2(report, O_CLOEXEC) != 0) return failure(std::string("pipe: ") + strerror(errno));
  if (spec.tty()) {
    Result<JobPty> pty = OpenJobPty(uid, spec.has_termios() ? &spec.termios() : nullptr,
                                    spec.has_winsize() ? &spec.winsize() : nullptr);
    if (!pty.ok()) {
      CloseAll({report[0], report[1]});
      return failure(pty.status().message());
    }
    master = pty->master;
    slave = pty->slave;
  } else if (::pipe2(in, O_CLOEXEC) != 0 || ::pipe2(outp, O_CLOEXEC) != 0 || ::pipe2(errp, O_CLOEXEC) != 0) {
    CloseAll({in[0], in[1], outp[0], outp[1], errp[0], errp[1], report[0], report[1]});
    return failure(std::string("pipe: ") + strerror(errno));
  }

  ChildContext ctx{&spec, slave, in[0], outp[1], errp[1], report[1], ::getpid(), uid, gid, &groups,
                   cwd.c_str(), argv.data(), envp.data()};
  pid_t want = static_cast<pid_t>(req.pid());
  clone_args args{};
  // vfork-like: the child borrows our memory until it execs, so there is no
  // page table to copy and no copy-on-write fault afterwards in roamd (a
  // fault costs ~15 us here). We are suspended meanwhile; signals are
  // blocked so that no handler of ours runs in the child.
  args.flags = CLONE_VM | CLONE_VFORK;
  args.exit_signal = SIGCHLD;
  args.set_tid = reinterpret_cast<uint64_t>(&want);
  args.set_tid_size = 1;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  args.stack = reinterpret_cast<uint64_t>(g_child_stack);
  args.stack_size = sizeof g_child_stack;
  sigset_t all, saved;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &saved);
  char** saved_environ = environ;
  long pid = Clone3Run(&args, ChildMain, &ctx);
  const int clone_errno = pid < 0 ? static_cast<int>(-pid) : 0;
  environ = saved_environ;  // the child pointed it at the user's environment
  ::pthread_sigmask(SIG_SETMASK, &saved, nullptr);
  CloseAll({in[0], outp[1], errp[1], slave, report[1]});
  if (pid < 0) {
    CloseAll({in[1], outp[0], errp[0], master, report[0]});
    if (clone_errno == EEXIST) {
      return failure("pid " + std::to_string(want) + " is taken on " + node + " (a job keeps its home PID on every node)");
    }
    return failure(std::string("clone3: ") + strerror(clone_errno));
  }
  ChildError e{};
  ssize_t n;
  do {
    n = ::read(report[0], &e, sizeof e);
  } while (n < 0 && errno == EINTR);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof e)) {
    // The child has exited (127); roamd's reaper collects it.
    CloseAll({in[1], outp[0], errp[0], master});
    const std::string cmd = argv_s[0];
    switch (e.stage) {
      case kStageCwd:
        return failure("working directory " + cwd + " does not exist on " + node + " (" + strerror(e.err) + ")");
      case kStageCreds:
        return failure("cannot take the user's identity on " + node + ": " + strerror(e.err));
      case kStageTty:
        return failure(std::string("cannot set up the pseudo-terminal: ") + strerror(e.err));
      default:
        if (e.err == ENOENT) return failure(cmd + ": command not found on " + node, 127);
        return failure(cmd + ": " + strerror(e.err), 126);
    }
  }
  out->pid = static_cast<pid_t>(pid);
  out->tty = spec.tty();
  if (spec.tty()) {
    out->stdin_fd = out->stdout_fd = master;
  } else {
    out->stdin_fd = in[1];
    out->stdout_fd = outp[0];
    out->stderr_fd = errp[0];
  }
  return true;
}

}  // namespace roam
