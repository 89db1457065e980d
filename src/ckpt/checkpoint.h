// The dump side of the engine, as a library.
//
// FrozenTree freezes a process and its descendants (ptrace) and holds them:
// the caller dumps them, then either resumes them (a refused or abandoned
// migration, `--leave-running`) or kills them (the image now speaks for
// them). Checkpoint() is `roam checkpoint`: freeze, dump, resume or kill.
//
// Anything the engine cannot carry is refused before anything is written,
// and the processes are left running as they were, untouched.
//
// Threads: ptrace ties a tracee to the thread that seized it, so every call
// on a FrozenTree, its destructor included, must come from the thread that
// called Freeze(). The engine changes no process-wide state (no signal
// handlers, no subreaper flag, no waitpid(-1)); it waits only for the PIDs
// it holds.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/dirty_tracker.h"
#include "ckpt/image_sink.h"
#include "ckpt/range_set.h"
#include "common/status.h"

namespace roam {

struct CheckpointOptions {
  bool leave_running = false;
};

struct DumpOptions {
  // The root's fds 0-2 stay with the caller, whatever they are: a process
  // leaving its home keeps them there (its deputy does), and its copy
  // elsewhere gets the restorer's (RestoreOptions::inherited_fds).
  bool stdio_stays = false;
  // With stdio_stays, for a -t job leaving home: its copy elsewhere leads
  // a session of its own, whose controlling terminal (in the foreground)
  // is the one the restorer gives for its fds 0-2.
  bool root_leads_session = false;
  // Per PID: pages the restorer already holds (pre-copied, not written
  // since); they are recorded as kept instead of saved (memory.h).
  std::map<pid_t, std::vector<PageRange>> kept;
  // Pages a child shares copy-on-write with its parent are saved once, in
  // the parent, and shared again at the restore (ProcessImage.inherited).
  // Only a restore that makes the seeds from the restorer can: not a
  // rebuild in place, nor a pre-copied one (nothing is shared with kept).
  bool share_cow = false;
};

struct CheckpointReport {
  int processes = 0;
  uint64_t pages_saved = 0;
  uint64_t zero_pages_skipped = 0;
  uint64_t image_bytes = 0;  // every image file, headers included
  int64_t freeze_ns = 0;     // from the first freeze to the end of the dump (or the release)
};

class TreeDump;

class FrozenTree {
 public:
  // Freezes `root` and its descendants, after checking that each can be
  // carried. On failure nothing stays frozen.
  static Result<std::unique_ptr<FrozenTree>> Freeze(pid_t root);
  ~FrozenTree();  // resumes whatever is still held
  FrozenTree(const FrozenTree&) = delete;
  FrozenTree& operator=(const FrozenTree&) = delete;

  // Writes every record and page file of the image into `sink` (which
  // must outlive the tree), but not the inventory: the image is not
  // complete until Seal(). On failure the sink is told to Abort(); the tree
  // stays frozen.
  Result<CheckpointReport> Dump(ImageSink& sink, const DumpOptions& options = DumpOptions());
  // Syncs the sink and writes the inventory, last. REQUIRES: Dump()
  // succeeded.
  Status Seal();

  std::vector<pid_t> pids() const;
  pid_t root() const;
  int64_t frozen_ns() const;  // since the freeze began
  // Starts dirty tracking of `ranges` of `pid`, one of the tree's, while it
  // is frozen; the tracker goes on after Resume() (pre-copy:
  // docs/MIGRATION.md).
  Result<DirtyTracker> Track(pid_t pid, const std::vector<PageRange>& ranges);
  // Lets every process go on as it was (stopped ones stay stopped).
  void Resume();
  // SIGKILL to every process of the tree, and reaps them.
  void Kill();
  // After a move, once the tree is killed or exec'd: the System V objects
  // the last Dump carried are removed from this node (the tree took them
  // along; sysv_ipc.h), and its TCP connections, which live on at the
  // target, are no longer held here (net_lock.h).
  void RemoveCarried();
  // The root execs `argv` (argv[0] is the path) with environment `env`,
  // keeping its PID, parent, session, fds 0-2 (close-on-exec or not: node
  // and others set it on their stdio) and its other fds without
  // close-on-exec; its file locks let go first (file_locks.h: the tree's
  // copy elsewhere takes them), and what the image carries that an exec
  // would keep taken off: its pending signals and interval timers. The new
  // program starts with every signal blocked, and may open at least
  // `min_open_files` (Tracee::ExecProgram). Then every other process of the
  // tree is killed. On failure the tree is still held, untouched. (A
  // process leaving its home becomes its own deputy this way.)
  Status ExecRoot(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  uint64_t min_open_files = 0);

 private:
  explicit FrozenTree(std::unique_ptr<TreeDump> dump);
  std::unique_ptr<TreeDump> dump_;
};

Result<CheckpointReport> Checkpoint(pid_t root, const std::string& dir, const CheckpointOptions& options);

// Why the tree of `root` could not move now, in one word for `roam ps`'s
// CANTMOVE ("socket", "namespace", "seccomp", "traced", "pipe" for a pipe above
// stdio to a process outside the tree, "shm" for POSIX shared memory a
// process outside the tree uses too, an anonymous inode's name such as
// "io_uring" ...), or "" if nothing the engine refuses outright is in
// sight. Looks only at /proc (status, fd links, maps; every process's fds
// only for a pipe the tree holds one end of above stdio, every process's
// fds and maps only for POSIX shared memory the tree uses): cheap enough for
// every process once a second. A move may
// still be refused for what only the dump finds. `own_address`: the tree's
// own IPv4 address (node/job_address.h), which moves with it: its
// established TCP connections move too.
std::string CantMoveReason(pid_t root, const std::string& own_address = "");

}  // namespace roam
