// cgroup v1 directories for the nodes of a local cluster. Every node has a
// cpu cgroup (always: its cgroup.procs is how `down` finds and kills every
// process of the node) with `cpu.cfs_quota_us` set from the node's quota over
// a 100000 us period, and a memory cgroup with `memory.limit_in_bytes` when
// the memory controller is mounted. Cluster cgroups are created under the
// cgroup the calling process is in (e.g. <ours>/roam-C/n1), so they work
// inside a delegated sub-tree such as /process_api/<hash>.
//
// All paths are absolute directories under /sys/fs/cgroup. Not thread-safe
// only in that concurrent callers may race on the same directories.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam::localcluster {

// Directory of the cgroup the calling process is in, in the v1 hierarchy
// that carries `controller` ("cpu", "memory"), found from /proc/self/cgroup
// and /proc/self/mountinfo. An error if that controller is not mounted.
Result<std::string> OwnCgroupDir(const std::string& controller);

// mkdir -p; an existing directory is fine.
Status CreateCgroup(const std::string& dir);
// cores > 0: quota = cores * 100000 us per 100000 us; cores == 0: no quota.
Status SetCpuQuota(const std::string& dir, double cores);
// bytes == 0: no limit.
Status SetMemoryLimit(const std::string& dir, uint64_t bytes);
// Moves process `pid` (all its threads) into the cgroup.
Status MoveToCgroup(const std::string& dir, int pid);
// PIDs in <dir>/cgroup.procs; empty if the directory does not exist.
std::vector<int> CgroupProcs(const std::string& dir);
// Names of the sub-cgroups of `dir`; empty if it does not exist.
std::vector<std::string> ChildCgroups(const std::string& dir);
// rmdir, retried while the kernel still counts exiting tasks (EBUSY) for up
// to `timeout_ms`; a directory that does not exist is fine.
// REQUIRES: no sub-cgroups, no processes left.
Status RemoveCgroup(const std::string& dir, int timeout_ms = 3000);

}  // namespace roam::localcluster
