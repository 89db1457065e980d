// Where the cgroup hierarchies are mounted and where a process is in them:
// the one reading of /proc/self/mountinfo and /proc/PID/cgroup for the
// nodes' cgroups of `roam cluster` (localcluster/cgroup.h) and the jobs'
// cgroups of roamd (node/job_cgroup.h). Reads only, except MoveToCgroup.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"

namespace roam {

// A mounted cgroup hierarchy: the v1 one carrying a controller, or v2.
struct CgroupMount {
  std::string root;   // the cgroup mounted there ("/" unless bind-mounted)
  std::string point;  // where it is mounted
};

// The hierarchy carrying `controller` ("cpu", "memory"); "" means the v2
// (unified) one. False if none is mounted.
bool FindCgroupMount(const std::string& controller, CgroupMount* out);

// The directory of process `pid` ("self" or a number) in `mount`, the
// hierarchy of `controller` ("" for v2). False if the process is gone or
// not in that hierarchy.
bool ProcessCgroupDir(const std::string& pid, const std::string& controller, const CgroupMount& mount,
                      std::string* dir);

// Moves process `pid` (all its threads) into the cgroup at `dir`.
Status MoveToCgroup(const std::string& dir, pid_t pid);

}  // namespace roam
