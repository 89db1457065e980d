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

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/clone_pid.h"
#include "ckpt/memory.h"
#include "common/status.h"

namespace roam {

class PageStage;

struct RestoreOptions {
  // Fds that led outside the tree at dump time (stdio of a pipeline or of
  // a guest's relay) are taken from the caller: image fd number -> the
  // caller's fd. Numbers not listed come from the caller's own fd of that
  // number.
  std::map<int, int> inherited_fds;
  // Pre-copy: the root was created early and its memory staged
  // (page_stage.h); it becomes the root seed. Created on this thread.
  PageStage* stage = nullptr;
  // Recompute every page file's checksum before acting (`roam restore`).
  // A move's target turns it off: its image came over an authenticated
  // link into this node's own tmpfs, and a GiB of hashing would sit in the
  // process's frozen window.
  bool verify_payloads = true;
  // The cgroup (v2) directory the tree is made in, if any: its root is
  // put there before it makes anything (files, sockets, children), so that
  // the cgroup's socket hooks see the sockets as the tree's (a job's own
  // address, src/node/job_cgroup.h). A restore that cannot fails.
  std::string cgroup;
  // A tree whose session was outside it (a job that left its home shell's
  // session) gets a session and process group of its own, led by its root,
  // as a job started on a guest has: never the restorer's (roamd's, which
  // a kill(0, sig) of the job would reach). Off: the tree joins the
  // restorer's session (`roam restore` in a terminal).
  bool own_session = false;
  // A rebuild in place (RestoreInPlace): how the process's threads get
  // their TIDs, the process running as its user (see PidAsker). Unset: a
  // process with threads cannot be rebuilt in place by an ordinary user.
  PidAsker ask_pid;
  // The processes' file locks (file_locks.h) are not taken by the
  // restore but by RestoredTree::TakeLocks, before Release: a move's
  // target, whose source copy holds them until the move commits.
  bool defer_locks = false;
};

class TreeRestore;

// ---- restoring into a process that exists: a deputy becomes its process ----------
//
// A process coming back to its home node must get its old PID, which its
// deputy holds (docs/MIGRATION.md, "Coming home"). The deputy cannot be
// replaced by a new process: it is the user's shell's child. So it becomes
// the root seed itself, in two halves:
//   1. in the deputy (single-threaded, freshly exec'd, running as the user):
//      PrepareInPlaceSeed() opens the image's files at their planned fds,
//      creates the tree's other processes as its descendants with their
//      PIDs (seeds, as a restore's), maps the helper area, then the deputy
//      reports the InPlaceSeed to its restorer and waits (pause);
//   2. in the restorer (root): RestoredTree::RestoreInPlace() takes them
//      under ptrace and rebuilds them by injected calls, as any seeds. The
//      calls run with the deputy's credentials, so only what a process may
//      do to itself is done: every process's credentials must be the
//      deputy's own, and /proc/PID/exe keeps naming the deputy's binary
//      unless the user may set it.
// The root is never killed: if anything fails, or the tree is dropped
// unreleased, the other processes are killed and reaped and the root execs
// `fallback` instead (a new deputy), keeping its PID, parent and fds 0-2.
//
// PIDs: a seed makes its children with clone3(set_tid) when it may (its
// user has CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE, e.g. root). Otherwise
// it asks its restorer, through `ask_pid`, to make the PID the next one
// the kernel gives out (the restorer writes ns_last_pid), forks, and tries
// again if another process of the node took it first; one process of the
// tree asks at a time.
struct InPlaceSeed {
  struct Child {
    pid_t pid = 0;
    uint64_t helper = 0;
    int pages_fd = -1;
  };
  int base = 0;         // the first planned fd
  uint64_t helper = 0;  // the root's helper area (a syscall instruction at +0)
  int pages_fd = -1;    // the root's page file
  std::vector<Child> children;  // the tree's other processes, parents first
  // The tree's pre-copied memory, staged in the root before it became the
  // seed (PageStage::Adopt), each process's moved into place, as a staged
  // root's are. Set by the restorer.
  std::vector<StagedPiece> staged;
};

// Half 1. REQUIRES: the caller is single-threaded, its PID is the image's
// root, all its signals are blocked. `keep_fd` (the caller's line to its
// restorer) is moved above the planned fds and its new number stored back;
// `ask_pid` may use it (it is called in the tree's other processes too).
// Its fds 0-2 stand for the image's fds that led outside the tree.
// `staged`: the pre-copied pieces it holds (of any process of the tree);
// each child made gets its subtree's (page_stage.h). On failure, every
// process it created is killed and reaped.
Result<InPlaceSeed> PrepareInPlaceSeed(const std::string& dir, int* keep_fd, const PidAsker& ask_pid,
                                       const std::vector<StagedPiece>& staged = {});

struct InPlaceFallback {
  std::vector<std::string> argv;  // argv[0]: the program's path
  std::vector<std::string> env;
  uint64_t min_open_files = 0;  // its need (an exec keeps the limits: Tracee::ExecProgram)
};

class RestoredTree {
 public:
  static Result<std::unique_ptr<RestoredTree>> Restore(const std::string& dir, const RestoreOptions& options);
  // Half 2 of the above: `pid` reported `seed`. On failure the process has
  // exec'd `fallback` (or, if even that failed, was killed). Only
  // `options.verify_payloads`, `options.ask_pid` and `options.defer_locks`
  // apply.
  static Result<std::unique_ptr<RestoredTree>> RestoreInPlace(const std::string& dir, pid_t pid,
                                                             const InPlaceSeed& seed, InPlaceFallback fallback,
                                                             const RestoreOptions& options = RestoreOptions());
  // A seed that will not be rebuilt after all: it execs `fallback`.
  static void AbandonInPlace(pid_t pid, const InPlaceSeed& seed, InPlaceFallback fallback);
  ~RestoredTree();  // kills and reaps the tree unless released (in place: the fallback)
  RestoredTree(const RestoredTree&) = delete;
  RestoredTree& operator=(const RestoredTree&) = delete;

  pid_t root() const;
  std::vector<pid_t> pids() const;
  // With RestoreOptions::defer_locks: takes the processes' file locks
  // (calls injected into them, signals blocked meanwhile). kBusy, naming
  // the lock, while another process holds one: try again (those taken
  // stay taken; taking them again is harmless).
  Status TakeLocks();
  // Lets every process run (a process dumped stopped stays stopped).
  Status Release();
  // SIGKILL to every process created, and reaps them (in place: the
  // process execs the fallback instead).
  void Kill();

 private:
  explicit RestoredTree(std::unique_ptr<TreeRestore> restore);
  std::unique_ptr<TreeRestore> restore_;
};

}  // namespace roam
