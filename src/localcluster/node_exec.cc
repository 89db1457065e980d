#include "localcluster/node_exec.h"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "localcluster/cgroup.h"
#include "localcluster/child_process.h"
#include "localcluster/node_processes.h"
#include "localcluster/node_view.h"

namespace roam::localcluster {

namespace {

volatile sig_atomic_t g_command_pid = 0;

void ForwardSignal(int sig) {
  if (g_command_pid > 0) ::kill(g_command_pid, sig);
}

std::string NodeList(const ClusterState& cluster) {
  std::string out;
  for (const NodeRecord& n : cluster.nodes) out += (out.empty() ? "" : " ") + n.name;
  return out.empty() ? "none" : out;
}

struct NamespaceFd {
  const char* name;
  int type;
  int fd;
};

}  // namespace

Result<int> ExecInNode(const ClusterState& cluster, const std::string& node, const std::vector<std::string>& command,
                       const std::string& extra_path) {
  if (command.empty()) return Status::Error("no command given (usage: roam cluster exec NODE -- CMD...)");
  const NodeRecord* rec = cluster.FindNode(node);
  if (rec == nullptr)
    return Status::Error("cluster " + cluster.cluster + " has no node '" + node + "' (nodes: " + NodeList(cluster) + ")");
  if (!IsLiveNodeInit(rec->init_pid, cluster.cluster, rec->name))
    return Status::Error("node " + node + " of cluster " + cluster.cluster + " is down");

  // Open every namespace before entering any: /proc changes meaning after mnt.
  // The order of setns() below is the order here; mnt comes last.
  NamespaceFd namespaces[] = {{"ipc", CLONE_NEWIPC, -1}, {"uts", CLONE_NEWUTS, -1}, {"net", CLONE_NEWNET, -1},
                              {"pid", CLONE_NEWPID, -1}, {"mnt", CLONE_NEWNS, -1}};
  auto close_all = [&namespaces] {
    for (NamespaceFd& ns : namespaces)
      if (ns.fd >= 0) ::close(ns.fd);
  };
  for (NamespaceFd& ns : namespaces) {
    std::string path = "/proc/" + std::to_string(rec->init_pid) + "/ns/" + ns.name;
    ns.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (ns.fd < 0) {
      Status st = Status::Errno("open " + path);
      close_all();
      return st;
    }
  }

  Status st = MoveToCgroup(NodeCpuCgroup(cluster, rec->name), ::getpid());
  std::string mem = NodeMemoryCgroup(cluster, rec->name);
  if (st.ok() && !mem.empty()) st = MoveToCgroup(mem, ::getpid());
  if (!st.ok()) {
    close_all();
    return Status::Error("join the cgroups of node " + node + ": " + st.message());
  }

  char cwd_buf[4096];
  std::string cwd = ::getcwd(cwd_buf, sizeof cwd_buf) != nullptr ? cwd_buf : "/";
  for (NamespaceFd& ns : namespaces) {
    if (::setns(ns.fd, ns.type) != 0) {
      Status e = Status::Errno(std::string("enter the ") + ns.name + " namespace of node " + node);
      close_all();
      return e;
    }
  }
  close_all();
  if (::chdir(cwd.c_str()) != 0) ::chdir("/");

  if (!extra_path.empty()) {
    const char* path = std::getenv("PATH");
    std::string joined = extra_path + ":" + (path != nullptr ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    ::setenv("PATH", joined.c_str(), 1);
  }

  std::vector<char*> argv;
  for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);

  struct sigaction ignore {}, forward {};
  ignore.sa_handler = SIG_IGN;
  forward.sa_handler = ForwardSignal;
  ::sigaction(SIGINT, &ignore, nullptr);
  ::sigaction(SIGQUIT, &ignore, nullptr);
  ::sigaction(SIGTERM, &forward, nullptr);
  ::sigaction(SIGHUP, &forward, nullptr);

  pid_t pid = ::fork();
  if (pid < 0) return Status::Errno("fork");
  if (pid == 0) {
    for (int sig : {SIGINT, SIGQUIT, SIGTERM, SIGHUP, SIGPIPE}) ::signal(sig, SIG_DFL);
    ::execvp(argv[0], argv.data());
    int e = errno;
    if (e == ENOENT && command[0].find('/') == std::string::npos)
      std::fprintf(stderr, "roam cluster exec: %s: command not found\n", argv[0]);
    else
      std::fprintf(stderr, "roam cluster exec: %s: %s\n", argv[0], std::strerror(e));
    ::_exit(e == ENOENT ? 127 : 126);
  }
  g_command_pid = pid;
  int ws = 0;
  while (::waitpid(pid, &ws, 0) < 0) {
    if (errno != EINTR) return Status::Errno("waitpid");
  }
  return ShellExitStatus(ws);
}

}  // namespace roam::localcluster
