#include "localcluster/node_init.h"

#include <algorithm>

#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "common/file_util.h"
#include "common/status.h"
#include "localcluster/child_process.h"
#include "localcluster/cluster_layout.h"
#include "localcluster/netns_links.h"

namespace roam::localcluster {

int FirstPidOfNode(int index, int nodes, int pid_max) {
  if (index <= 1 || nodes <= 1 || index > nodes || pid_max <= 0) return 0;
  const int stride = pid_max / nodes;
  return stride < 1000 ? 0 : (index - 1) * stride;
}

std::string RenderRoamdConf(const NodeInitConfig& c) {
  std::string out;
  out += "name = " + c.node + "\n";
  out += "cluster = " + c.cluster + "\n";
  out += "key_file = " + c.key_file + "\n";
  out += "bind = " + c.address + "\n";
  out += "port = " + std::to_string(kRoamdPort) + "\n";
  out += "multicast = " + std::string(kMulticastGroup) + "\n";
  out += "control_socket = " + std::string(kRoamdSocketPath) + "\n";
  out += "job_tmpdir = " + JobTmpdir(c.shared) + "\n";
  // The dashboard on the node's own address (docs/DASHBOARD.md): the host
  // reaches it over the bridge; `roam cluster exec NODE roam web`.
  out += "http = " + c.address + ":" + std::to_string(kDashboardPort) + "\n";
  // Jobs' own addresses: the top of the /24 above the nodes' (.1-.N) and
  // below the host's bridge (.254).
  const size_t dot = c.address.rfind('.');
  if (dot != std::string::npos && c.nodes < kBridgeHostOctet - 1) {
    const std::string net = c.address.substr(0, dot + 1);
    const int first = std::max(128, c.nodes + 1);
    out += "job_addresses = " + net + std::to_string(first) + "-" + net + std::to_string(kBridgeHostOctet - 1) + "\n";
  }
  return out;
}

namespace {

// ---- logging and the report pipe ------------------------------------------

void Log(const NodeInitConfig& c, const std::string& message) {
  char stamp[32];
  std::time_t now = std::time(nullptr);
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", std::localtime(&now));
  std::fprintf(stderr, "%s node-init %s: %s\n", stamp, c.node.c_str(), message.c_str());
  std::fflush(stderr);
}

void Report(const std::string& line) {
  std::string text = line + "\n";
  (void)!::write(kReportFd, text.data(), text.size());
  ::close(kReportFd);
}

// Blocks until the host says go (true) or closes the pipe (false).
bool WaitForGo() {
  char byte = 0;
  for (;;) {
    ssize_t n = ::read(kGoFd, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    ::close(kGoFd);
    return n == 1 && byte == 'g';
  }
}

// ---- the node's filesystem view -------------------------------------------

Status MountTmpfs(const char* target, const char* options) {
  if (::mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV, options) != 0)
    return Status::Errno(std::string("mount tmpfs on ") + target);
  return Status::Ok();
}

bool SameInode(const struct stat& a, const struct stat& b) { return a.st_dev == b.st_dev && a.st_ino == b.st_ino; }

// A directory under /tmp or /run that must stay visible inside the node:
// the top-level entry there that holds `path` ("/tmp/ci/main/build/bin/roamd"
// gives "/tmp/ci"), or "" if `path` is elsewhere.
std::string CarriedDirFor(const std::string& path) {
  for (const char* top : {"/tmp/", "/run/"}) {
    std::string t = top;
    if (path.compare(0, t.size(), t) != 0) continue;
    size_t slash = path.find('/', t.size());
    return slash == std::string::npos ? "" : path.substr(0, slash);
  }
  return "";
}

// The node's private /tmp, /run and /dev/shm hide whatever the host has
// there; the directories in `keep` are bound back at the same paths (the
// shared directory, and roam's own checkout when it lives under /tmp).
Status PrepareMounts(const std::vector<std::string>& keep) {
  struct Kept {
    std::string path;
    int fd;
    struct stat sb;
  };
  std::vector<Kept> kept;
  auto close_all = [&] {
    for (auto& k : kept) ::close(k.fd);
  };
  for (const auto& path : keep) {
    if (path.empty()) continue;
    int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
      Status st = Status::Errno("open " + path);
      close_all();
      return st;
    }
    Kept k{path, fd, {}};
    ::fstat(fd, &k.sb);
    kept.push_back(k);
  }

  Status st;
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) st = Status::Errno("make / private");
  if (st.ok() && ::mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0)
    st = Status::Errno("mount proc on /proc");
  if (st.ok()) st = MountTmpfs("/tmp", "mode=1777");
  if (st.ok()) st = MountTmpfs("/run", "mode=0755");
  if (st.ok() && ::access("/dev/shm", F_OK) == 0) st = MountTmpfs("/dev/shm", "mode=1777");
  if (st.ok()) st = MakeDirs("/run/lock", 01777);

  for (const Kept& k : kept) {
    struct stat now_sb;
    if (!st.ok() || (::stat(k.path.c_str(), &now_sb) == 0 && SameInode(now_sb, k.sb))) continue;
    st = MakeDirs(k.path);
    std::string source = "/proc/self/fd/" + std::to_string(k.fd);
    if (st.ok() && ::mount(source.c_str(), k.path.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0)
      st = Status::Errno("bind " + k.path + " back into the node");
  }
  close_all();
  return st;
}

// After /proc is this namespace's: sets its PID counter (node_init.h).
Status StartPidRange(const NodeInitConfig& c) {
  Result<std::string> max = ReadFile("/proc/sys/kernel/pid_max");
  const int first = max.ok() ? FirstPidOfNode(c.index, c.nodes, std::atoi(max->c_str())) : 0;
  if (first <= 1) return Status::Ok();
  return WriteFileInPlace("/proc/sys/kernel/ns_last_pid", std::to_string(first - 1));
}

Status PrepareNode(const NodeInitConfig& c) {
  if (::getpid() != 1) return Status::Error("node-init must be PID 1 of a new PID namespace");
  if (::sethostname(c.node.data(), c.node.size()) != 0) return Status::Errno("sethostname " + c.node);
  Status st = PrepareMounts({c.shared, CarriedDirFor(c.roamd)});
  if (!st.ok()) return st;
  st = StartPidRange(c);
  if (!st.ok()) return st;
  st = ConfigureNodeNetwork(c.address, kSubnetPrefixLength);
  if (!st.ok()) return st;
  st = MakeDirs(kNodeRunDir);
  if (!st.ok()) return st;
  st = WriteFileAtomic(kRoamdConfPath, RenderRoamdConf(c), 0644);
  if (!st.ok()) return st;
  int log = ::open(kNodeInitLogPath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return Status::Errno(std::string("open ") + kNodeInitLogPath);
  ::dup2(log, 1);
  ::dup2(log, 2);
  ::close(log);
  return Status::Ok();
}

// ---- roamd and the reaper -------------------------------------------------

// Forks and execs roamd with the signal state of a fresh process; returns its
// PID once the exec has succeeded.
Result<int> StartRoamd(const NodeInitConfig& c, const sigset_t& original_mask) {
  int errp[2];
  if (::pipe2(errp, O_CLOEXEC) != 0) return Status::Errno("pipe");
  pid_t pid = ::fork();
  if (pid < 0) {
    Status st = Status::Errno("fork");
    ::close(errp[0]);
    ::close(errp[1]);
    return st;
  }
  if (pid == 0) {
    for (int sig = 1; sig < NSIG; ++sig) ::signal(sig, SIG_DFL);
    ::sigprocmask(SIG_SETMASK, &original_mask, nullptr);
    ::setsid();
    int in = ::open("/dev/null", O_RDONLY);
    int out = ::open(kRoamdLogPath, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in >= 0) ::dup2(in, 0);
    if (out >= 0) {
      ::dup2(out, 1);
      ::dup2(out, 2);
    }
    if (in > 2) ::close(in);
    if (out > 2) ::close(out);
    ::chdir("/");
    // roamd must read the node's /run/roam/roamd.conf, whatever the caller of
    // `cluster up` had in its environment.
    ::unsetenv("ROAM_CONFIG");
    ::unsetenv("ROAM_SOCKET");
    char* argv[] = {const_cast<char*>("roamd"), nullptr};
    ::execv(c.roamd.c_str(), argv);
    int e = errno;
    (void)!::write(errp[1], &e, sizeof e);
    ::_exit(127);
  }
  ::close(errp[1]);
  int exec_errno = 0;
  ssize_t got;
  do {
    got = ::read(errp[0], &exec_errno, sizeof exec_errno);
  } while (got < 0 && errno == EINTR);
  ::close(errp[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    ::waitpid(pid, nullptr, 0);
    return Status::Errno("exec " + c.roamd, exec_errno);
  }
  return static_cast<int>(pid);
}

// Reaps children until told to stop; then kills the node and returns 0.
int ReapForever(const NodeInitConfig& c, const sigset_t& handled, int roamd_pid) {
  for (;;) {
    siginfo_t info;
    int sig = ::sigwaitinfo(&handled, &info);
    if (sig < 0) continue;
    if (sig == SIGCHLD) {
      int ws;
      pid_t pid;
      while ((pid = ::waitpid(-1, &ws, WNOHANG)) > 0) {
        if (pid == roamd_pid)
          Log(c, "roamd (pid " + std::to_string(pid) + ") ended with status " + std::to_string(ShellExitStatus(ws)) +
                     "; not restarting it");
      }
      continue;
    }
    Log(c, std::string("got ") + ::strsignal(sig) + ", killing every process of the node");
    ::kill(-1, SIGKILL);
    while (::waitpid(-1, nullptr, 0) > 0 || errno == EINTR) {
    }
    return 0;
  }
}

}  // namespace

int RunNodeInit(const NodeInitConfig& c) {
  ::fcntl(kGoFd, F_SETFD, FD_CLOEXEC);
  ::fcntl(kReportFd, F_SETFD, FD_CLOEXEC);
  sigset_t handled, original;
  sigemptyset(&handled);
  for (int sig : {SIGCHLD, SIGTERM, SIGINT, SIGHUP}) sigaddset(&handled, sig);
  ::sigprocmask(SIG_BLOCK, &handled, &original);

  if (!WaitForGo()) return 1;
  Status st = PrepareNode(c);
  if (!st.ok()) {
    Report("error: " + st.message());
    return 1;
  }
  Result<int> roamd = StartRoamd(c, original);
  if (!roamd.ok()) {
    Log(c, roamd.status().message());
    Report("error: " + roamd.status().message());
    return 1;
  }
  Log(c, "roamd started as pid " + std::to_string(*roamd));
  Report("ok");
  return ReapForever(c, handled, *roamd);
}

}  // namespace roam::localcluster
