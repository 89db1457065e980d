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

namespace roam {

// As fork(): 0 in the child, its PID in the caller, or -1 with errno
// (EEXIST: the PID is taken).
inline pid_t CloneWithPid(pid_t want) {
  clone_args args;
  memset(&args, 0, sizeof(args));
  args.exit_signal = SIGCHLD;
  pid_t tid = want;
  args.set_tid = reinterpret_cast<uint64_t>(&tid);
  args.set_tid_size = 1;
  return static_cast<pid_t>(syscall(SYS_clone3, &args, sizeof(args)));
}

}  // namespace roam
