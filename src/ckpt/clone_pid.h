// clone3 with set_tid: a child process with the PID asked for, fork-like
// (a copy of the caller's memory, the calling thread only, SIGCHLD on
// exit). The engine's one way of making a process with a given PID: the
// restore's seeds and pre-copy's staged root.
#pragma once

#include <linux/sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstring>
#include <functional>

#include "common/status.h"

namespace roam {

// Makes `pid` the next PID the kernel gives out, or says why not: how a
// process that may not choose PIDs (clone3 set_tid needs CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE) gets them from its restorer, which writes
// ns_last_pid. Used for processes and threads alike.
using PidAsker = std::function<Status(pid_t pid)>;

// As fork(): 0 in the child, its PID in the caller, or -1 with errno
// (EEXIST: the PID is taken). With `cgroup_fd` (a cgroup v2 directory) the
// child starts in that cgroup.
inline pid_t CloneWithPid(pid_t want, int cgroup_fd = -1) {
  clone_args args;
  memset(&args, 0, sizeof(args));
  args.exit_signal = SIGCHLD;
  pid_t tid = want;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  if (cgroup_fd >= 0) {
    args.flags |= CLONE_INTO_CGROUP;
    args.cgroup = static_cast<uint64_t>(cgroup_fd);
  }
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

}  // namespace roam
