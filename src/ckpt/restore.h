// The restore side of the engine, as a library: brings an image back to
// life with the same PIDs.
//
// The whole image is verified before any process is created. Then the root
// "seed" is created with clone3(set_tid); it opens every file of the tree
// and creates its children the same way, each seed putting its fds at
// their numbers; then the calling thread takes every seed under ptrace and
// rebuilds it into the dumped process by injected system calls (memory,
// signals, timers, credentials...) and loads its registers. The tree is
// then held, rebuilt but not running, until Release(). If anything fails,
// or the RestoredTree goes without Release(), every process created is
// killed and reaped: nothing is left running.
//
// The caller owns process-wide policy: the restored root is the calling
// thread's child (its parent-death signal, if the image has one, follows
// that thread), and waiting for it, forwarding signals to it and being the
// subreaper of orphans are the caller's business (the CLI does all three;
// roamd has its own reaper). The engine waits only for PIDs it created.
//
// Threads: every call, the destructor included, from the thread that called
// Restore() (ptrace is per thread).
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"

namespace roam {

struct RestoreOptions {
  // Fds that led outside the tree at dump time (stdio of a pipeline or of
  // a guest's relay) are taken from the caller: image fd number -> the
  // caller's fd. Numbers not listed come from the caller's own fd of that
  // number.
  std::map<int, int> inherited_fds;
};

class TreeRestore;

class RestoredTree {
 public:
  static Result<std::unique_ptr<RestoredTree>> Restore(const std::string& dir, const RestoreOptions& options);
  ~RestoredTree();  // kills and reaps the tree unless released
  RestoredTree(const RestoredTree&) = delete;
  RestoredTree& operator=(const RestoredTree&) = delete;

  pid_t root() const;
  std::vector<pid_t> pids() const;
  // Lets every process run (a process dumped stopped stays stopped).
  Status Release();
  // SIGKILL to every process created, and reaps them.
  void Kill();

 private:
  explicit RestoredTree(std::unique_ptr<TreeRestore> restore);
  std::unique_ptr<TreeRestore> restore_;
};

}  // namespace roam
