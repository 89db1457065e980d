// Cgroups for the nodes of a local cluster. Every node has a cgroup that
// carries the cpu controller (always, even without a quota: its cgroup.procs
// is how `down` finds and kills every process of the node) and, when the
// memory controller is available, one that carries memory.
//
// cgroup v1 (preferred when its cpu controller is mounted, as on our
// machines): the cluster's cgroups are <ours>/roam-C/nI in the cpu and in the
// memory hierarchy, <ours> being the cgroup the calling process is in there
// (so they work inside a delegated sub-tree such as /process_api/<hash>).
// Quota: cpu.cfs_quota_us over cpu.cfs_period_us = 100000; limit:
// memory.limit_in_bytes.
//
// cgroup v2 (a stock Debian 12): one directory <v2 root>/roam-C/nI carries
// both; the cpu and memory controllers are enabled in the subtree_control of
// the root and of roam-C when available. Quota: cpu.max; limit: memory.max.
//
// All paths are absolute directories under the cgroup mounts. Callers that
// share directories must not run concurrently.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/cgroup_fs.h"
#include "common/status.h"

namespace roam::localcluster {

// Where the cgroups of one cluster live.
struct CgroupRoots {
  std::string cpu;     // the cluster's directory carrying cpu
  std::string memory;  // the one carrying memory; equals `cpu` on v2; "" if none
};

// The directories named `dir_name` (e.g. "roam-C") where this process would
// create the cluster's cgroups; creates nothing. An error if no cgroup
// hierarchy is usable.
Result<CgroupRoots> ClusterCgroupRoots(const std::string& dir_name);

// Creates the cluster's directories and, on v2, enables the cpu and memory
// controllers for their children where the kernel offers them.
Status CreateClusterCgroups(const CgroupRoots& roots);

// The directories of cgroups process `pid` is in, one per mounted hierarchy
// (v1 cpu and memory, and v2); empty if it is gone.
std::vector<std::string> ProcessCgroupDirs(int pid);

// mkdir -p; an existing directory is fine.
Status CreateCgroup(const std::string& dir);
// cores > 0: quota = cores * 100000 us per 100000 us; cores == 0: no quota.
// An error if a quota is asked for and `dir` has no cpu controller.
Status SetCpuQuota(const std::string& dir, double cores);
// bytes == 0: no limit. An error if a limit is asked for and `dir` has no
// memory controller.
Status SetMemoryLimit(const std::string& dir, uint64_t bytes);
// Moving a process into one: MoveToCgroup (common/cgroup_fs.h).
// PIDs in <dir>/cgroup.procs; empty if the directory does not exist.
std::vector<int> CgroupProcs(const std::string& dir);
// Names of the sub-cgroups of `dir`; empty if it does not exist.
std::vector<std::string> ChildCgroups(const std::string& dir);
// rmdir, retried while the kernel still counts exiting tasks (EBUSY) for up
// to `timeout_ms`; a directory that does not exist is fine.
// REQUIRES: no sub-cgroups, no processes left.
Status RemoveCgroup(const std::string& dir, int timeout_ms = 3000);

}  // namespace roam::localcluster
