#include "localcluster/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace roam::localcluster {

int ShellExitStatus(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return 255;
}

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Status::Errno("pipe");
  // Reports a failed exec: the child writes its errno here before dying.
  int err[2];
  if (::pipe2(err, O_CLOEXEC) != 0) {
    Status st = Status::Errno("pipe");
    ::close(out[0]);
    ::close(out[1]);
    return st;
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    Status st = Status::Errno("fork");
    for (int fd : {out[0], out[1], err[0], err[1]}) ::close(fd);
    return st;
  }
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (devnull >= 0) ::dup2(devnull, 0);
    ::dup2(out[1], 1);
    ::dup2(out[1], 2);
    ::signal(SIGPIPE, SIG_DFL);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execvp(args[0], args.data());
    int e = errno;
    (void)!::write(err[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  CommandOutput result;
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(out[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  ::close(out[0]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(err[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(err[0]);
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  if (got == static_cast<ssize_t>(sizeof exec_errno)) return Status::Errno("exec " + argv[0], exec_errno);
  result.exit_status = ShellExitStatus(ws);
  return result;
}

Status RunChecked(const std::vector<std::string>& argv) {
  Result<CommandOutput> r = RunCommand(argv);
  if (!r.ok()) return r.status();
  if (r->exit_status == 0) return Status::Ok();
  std::string joined;
  for (const std::string& a : argv) joined += (joined.empty() ? "" : " ") + a;
  std::string line = r->output.substr(0, r->output.find('\n'));
  if (line.empty()) line = "exit status " + std::to_string(r->exit_status);
  return Status::Error(joined + ": " + line);
}

}  // namespace roam::localcluster
