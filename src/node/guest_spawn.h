// GuestSpawn: starts a guest process the way its home asked: with the PID
// it has at home (clone3 set_tid), in a session of its own, as the user who
// started it (groups, gid, uid), with their environment, cwd, umask and
// rlimits, stdio on pipes (or a pseudo-terminal), and SIGKILL as its
// parent-death signal so that it never outlives this roamd.
//
// REQUIRES: called from roamd's single thread (the child runs code between
// clone3 and execve). Blocks until the execve succeeded or failed.
#pragma once

#include <sys/types.h>

#include <string>

#include "common/status.h"
#include "session.pb.h"

namespace roam {

struct SpawnedGuest {
  pid_t pid = -1;
  int stdin_fd = -1;   // write end (the pty master for a tty run)
  int stdout_fd = -1;  // read end (the pty master for a tty run)
  int stderr_fd = -1;  // read end; -1 for a tty run
  bool tty = false;
};

struct SpawnFailure {
  std::string message;  // one line, for roam run's stderr
  int exit_code = 255;  // 127: command not found, 126: cannot execute, 255: roam's own failure
};

// On failure nothing is left running and no fd is left open. With
// `cgroup_fd` (a cgroup v2 directory: the job's, job_cgroup.h) the process
// starts in that cgroup; else in roamd's.
bool SpawnGuest(const pb::SpawnRequest& req, const std::string& node, SpawnedGuest* out, SpawnFailure* fail,
                int cgroup_fd = -1);

}  // namespace roam
