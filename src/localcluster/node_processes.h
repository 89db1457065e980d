// What the host's /proc says about the processes of local-cluster nodes: all
// /proc parsing of this part lives here. PIDs are host PIDs. Every function
// tolerates processes vanishing while it reads (they are simply skipped).
//
// A node's init is recognised by its command line
// `<roam> cluster node-init --name C --node nI ...` (see node_init.h), which
// guards against a recorded PID having been reused by an unrelated process.
#pragma once

#include <string>
#include <vector>

#include "common/proc_stat.h"

namespace roam::localcluster {

using roam::ProcStat;

// /proc/PID/stat of `pid`; false if it is gone.
bool ReadProcStat(int pid, ProcStat* out);
// Exists and is not a zombie.
bool ProcessAlive(int pid);
// argv from /proc/PID/cmdline; empty if gone (or a kernel thread).
std::vector<std::string> ProcessArgv(int pid);
// Every PID in /proc, ascending.
std::vector<int> AllPids();

// True if argv is that of the init of node `node` of `cluster` (any node if
// `node` is empty).
bool IsNodeInitArgv(const std::vector<std::string>& argv, const std::string& cluster, const std::string& node);
// Live processes that are inits of nodes of `cluster`.
std::vector<int> FindNodeInits(const std::string& cluster);
// ProcessAlive(pid) and its argv is that of the init of `node` of `cluster`.
bool IsLiveNodeInit(int pid, const std::string& cluster, const std::string& node);

// Live processes in the same PID namespace as `init_pid` (including it).
std::vector<int> ProcessesInPidNamespaceOf(int init_pid);
// The roamd among `pids`: a live process whose comm is "roamd" and whose
// parent is not itself a roamd; the lowest such PID, or 0.
int FindRoamd(const std::vector<int>& pids);

}  // namespace roam::localcluster
