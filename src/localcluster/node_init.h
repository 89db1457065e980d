// The init (PID 1) of one local-cluster node: the hidden command
//   roam cluster node-init --name C --node nI --address A --shared DIR --roamd PATH
// started by NodeLauncher (node_launcher.h) in fresh network, PID, mount,
// UTS and IPC namespaces, with stdin/stdout/stderr on /dev/null and two pipes:
//   fd 3 (kGoFd)      read: the host writes one byte once the node's cgroups
//                     and veth are in place; EOF instead means "abort".
//   fd 4 (kReportFd)  write: one line, "ok" once roamd has been exec'd, or
//                     "error: <why>"; then closed.
//
// Once told to go, the init sets the hostname to nI; makes every mount
// private (nothing propagates to or from the host); mounts its own /proc and
// tmpfs on /tmp, /run and /dev/shm; keeps the shared directory visible at its own path;
// starts the node's PIDs in a range of their own (below); brings up lo and
// eth0 (address A/24, multicast route); writes
// /run/roam/roamd.conf; starts roamd with stdout/stderr to
// /run/roam/roamd.log; then reaps every child forever. It never restarts
// roamd. On SIGTERM, SIGINT or SIGHUP it kills every process of the node and
// exits. Its own messages go to /run/roam/node-init.log.
#pragma once

#include <string>

namespace roam::localcluster {

inline constexpr int kGoFd = 3;
inline constexpr int kReportFd = 4;

struct NodeInitConfig {
  std::string cluster;
  std::string node;     // n<i>
  std::string address;  // 10.213.X.i
  std::string shared;   // absolute path of the shared directory
  std::string roamd;    // absolute path of the roamd binary
  std::string key_file;
  int index = 1;  // i of nI
  int nodes = 1;  // N of the cluster
};

// Separate machines number their processes independently, so the same PID
// rarely names a live process on two of them. Fresh PID namespaces all
// count from 1 and would collide at once: a job of n1 with PID 9 could
// not run on n2 where PID 9 is taken, nor could a child forked on n2 come
// home. So node i of N starts counting at (i-1) * pid_max / N, where
// pid_max is the namespace's (0 for n1, or when that range is under 1000).
int FirstPidOfNode(int index, int nodes, int pid_max);

// The text of /run/roam/roamd.conf: one `key = value` per line.
std::string RenderRoamdConf(const NodeInitConfig& config);

// Runs the node's init; returns only on failure or after SIGTERM, with the
// process exit status. REQUIRES: the caller is PID 1 of a new PID namespace
// and has fds kGoFd and kReportFd as described above.
int RunNodeInit(const NodeInitConfig& config);

}  // namespace roam::localcluster
