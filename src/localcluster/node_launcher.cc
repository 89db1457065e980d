#include "localcluster/node_launcher.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <vector>

namespace roam::localcluster {

namespace {

constexpr int kNamespaces = CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC;

void CloseFrom(int first) {
  if (::close_range(static_cast<unsigned>(first), ~0u, 0) == 0) return;
  for (int fd = first; fd < 4096; ++fd) ::close(fd);
}

long NowMs() {
  struct timespec ts;
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

// What the intermediate child tells the launcher.
struct ForkReport {
  int pid;   // host PID of the init, or -1
  int err;   // errno of the failed step
  int step;  // 0 unshare, 1 fork
};

}  // namespace

Result<NodeLaunch> NodeLaunch::Launch(const std::string& exe, const NodeInitConfig& c) {
  std::vector<std::string> args = {exe,       "cluster", "node-init", "--name",     c.cluster,
                                   "--node",  c.node,    "--address", c.address,    "--shared",
                                   c.shared,  "--roamd", c.roamd,     "--key-file", c.key_file,
                                   "--index", std::to_string(c.index), "--nodes", std::to_string(c.nodes)};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string exec_failed = "error: cannot exec " + exe + "\n";

  int go[2], report[2], forkp[2];
  if (::pipe2(go, O_CLOEXEC) != 0) return Status::Errno("pipe");
  if (::pipe2(report, O_CLOEXEC) != 0) {
    Status st = Status::Errno("pipe");
    ::close(go[0]);
    ::close(go[1]);
    return st;
  }
  if (::pipe2(forkp, O_CLOEXEC) != 0) {
    Status st = Status::Errno("pipe");
    for (int fd : {go[0], go[1], report[0], report[1]}) ::close(fd);
    return st;
  }

  pid_t middle = ::fork();
  if (middle == 0) {
    ForkReport r{-1, 0, 0};
    if (::unshare(kNamespaces) != 0) {
      r.err = errno;
      (void)!::write(forkp[1], &r, sizeof r);
      ::_exit(1);
    }
    pid_t init = ::fork();
    if (init == 0) {
      // The node's PID 1: fds 3 and 4 are the go and report pipes.
      ::setsid();
      int g = ::fcntl(go[0], F_DUPFD, 10);
      int rp = ::fcntl(report[1], F_DUPFD, 10);
      ::dup2(g, kGoFd);
      ::dup2(rp, kReportFd);
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 0);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      CloseFrom(kReportFd + 1);
      for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::chdir("/");
      ::execv(exe.c_str(), argv.data());
      (void)!::write(kReportFd, exec_failed.data(), exec_failed.size());
      ::_exit(127);
    }
    r.pid = init;
    if (init < 0) {
      r.err = errno;
      r.step = 1;
    }
    (void)!::write(forkp[1], &r, sizeof r);
    ::_exit(0);
  }
  Status st = middle < 0 ? Status::Errno("fork") : Status::Ok();
  ::close(go[0]);
  ::close(report[1]);
  ::close(forkp[1]);
  ForkReport r{-1, 0, 0};
  if (st.ok()) {
    ssize_t n;
    do {
      n = ::read(forkp[0], &r, sizeof r);
    } while (n < 0 && errno == EINTR);
    while (::waitpid(middle, nullptr, 0) < 0 && errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(sizeof r)) st = Status::Error("node launcher child died before reporting");
    else if (r.pid < 0) st = Status::Errno(r.step == 0 ? "unshare network, mount, PID, UTS and IPC namespaces" : "fork node init", r.err);
  }
  ::close(forkp[0]);
  if (!st.ok()) {
    ::close(go[1]);
    ::close(report[0]);
    return st;
  }
  return NodeLaunch(r.pid, go[1], report[0]);
}

NodeLaunch::NodeLaunch(NodeLaunch&& o) noexcept : init_pid_(o.init_pid_), go_fd_(o.go_fd_), report_fd_(o.report_fd_) {
  o.go_fd_ = o.report_fd_ = -1;
}

NodeLaunch& NodeLaunch::operator=(NodeLaunch&& o) noexcept {
  if (this != &o) {
    CloseFds();
    init_pid_ = o.init_pid_;
    go_fd_ = o.go_fd_;
    report_fd_ = o.report_fd_;
    o.go_fd_ = o.report_fd_ = -1;
  }
  return *this;
}

NodeLaunch::~NodeLaunch() { CloseFds(); }

void NodeLaunch::CloseFds() {
  if (go_fd_ >= 0) ::close(go_fd_);
  if (report_fd_ >= 0) ::close(report_fd_);
  go_fd_ = report_fd_ = -1;
}

Status NodeLaunch::Release() {
  char go = 'g';
  // The init may already be dead: EPIPE must not kill us.
  struct sigaction ignore {}, old {};
  ignore.sa_handler = SIG_IGN;
  ::sigaction(SIGPIPE, &ignore, &old);
  ssize_t n = ::write(go_fd_, &go, 1);
  int err = errno;
  ::sigaction(SIGPIPE, &old, nullptr);
  ::close(go_fd_);
  go_fd_ = -1;
  if (n != 1) return Status::Errno("release node init " + std::to_string(init_pid_), err);
  return Status::Ok();
}

Status NodeLaunch::AwaitReport(int timeout_ms) {
  std::string line;
  long deadline = NowMs() + timeout_ms;
  while (line.find('\n') == std::string::npos) {
    long left = deadline - NowMs();
    if (left <= 0) return Status::Error("node init (pid " + std::to_string(init_pid_) + ") did not finish setting up");
    struct pollfd p = {report_fd_, POLLIN, 0};
    int r = ::poll(&p, 1, static_cast<int>(left));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::Errno("poll");
    if (r == 0) continue;
    char buf[512];
    ssize_t n = ::read(report_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    line.append(buf, static_cast<size_t>(n));
  }
  ::close(report_fd_);
  report_fd_ = -1;
  line = line.substr(0, line.find('\n'));
  if (line == "ok") return Status::Ok();
  if (line.compare(0, 7, "error: ") == 0) return Status::Error(line.substr(7));
  return Status::Error("node init (pid " + std::to_string(init_pid_) + ") died while setting up");
}

}  // namespace roam::localcluster
