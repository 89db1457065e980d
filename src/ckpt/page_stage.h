// Pre-copy, the receiving side of a live migration (docs/MIGRATION.md,
// "Pre-copy"): the process that will become the restored root is created
// as soon as pre-copy begins, with its PID (clone3 set_tid), and the pages
// that arrive while the original still runs elsewhere are written into it
// at once, in mappings of its own ("pieces", one per mapping of the
// original, at addresses the kernel chose). Populating memory (~0.8 s a GiB
// on our VMs) thus happens before the freeze, not inside it.
//
// The pages of the tree's other processes are staged in the same process,
// in pieces of their own (StagedPiece::pid): those processes do not exist
// yet, and the root is their ancestor. At the restore (RestoreOptions::stage)
// the staged process becomes the root seed: it receives the seed's orders
// and fds over its socket, loads the image's records and carries on exactly
// as a seed created then would. Each seed hands its children, as it forks
// them, the pieces of their subtrees and no others (MADV_DONTFORK on the
// rest), then unmaps every piece but its own; RestoreMemory moves each
// process's own pieces into place with mremap (page tables move; no page
// is copied) and drops every staged page the image does not list as kept.
// A child's pages are shared copy-on-write with its parent's unmapped copy,
// so its first write to each costs a minor fault after the move (~0.2 s a
// GiB here), not inside the freeze. Pieces of a process that is not in the
// image (it exited) are dropped.
//
// Ownership: the stage's process is a child of the thread that called
// Create(), which must be the thread that restores (ptrace, reaping). The
// destructor kills and reaps it, unless a restore has taken it over (then
// the restore owns it: released, or killed with the rest of the tree).
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/memory.h"
#include "ckpt/range_set.h"
#include "common/status.h"

namespace roam {

class PageStage {
 public:
  // Creates the process with PID `pid`; it waits, doing nothing but what
  // Write() and the restore ask. Fails if the PID is taken.
  static Result<std::unique_ptr<PageStage>> Create(pid_t pid);
  // Stages into a process that exists (a deputy at home: docs/MIGRATION.md,
  // "Coming home"), which reserved [at, at + len) of its address space for
  // it (MAP_NORESERVE, read-write, anonymous): pieces are carved from there
  // instead of mapped on request. The process is not ours: never killed.
  static std::unique_ptr<PageStage> Adopt(pid_t pid, uint64_t at, uint64_t len);
  ~PageStage();
  PageStage(const PageStage&) = delete;
  PageStage& operator=(const PageStage&) = delete;

  // `data` (whole pages) belongs at `vaddr` of the future process `owner`
  // (0: the root, pid()), inside the original's mapping `piece`. The parts
  // of `piece` not staged yet are staged first (whole); a later write to
  // the same pages replaces them.
  Status Write(pid_t owner, uint64_t vaddr, const void* data, size_t len, PageRange piece);

  pid_t pid() const { return pid_; }
  // Every process's pieces.
  const std::vector<StagedPiece>& pieces() const { return pieces_; }

  // ---- for the restore (restore.cc) ----
  // Tells the process to become the root seed of the image in `dir`, its
  // planned fds from `base`, `ready_fd` its line to the restorer, and each
  // image fd number of `inherited` taken from the restorer's fd it maps to
  // (it knows its pieces); `own_session`: RestoreOptions::own_session. From
  // here the restore owns the process, whether this succeeds or not.
  Status Become(const std::string& dir, int base, int ready_fd, const std::vector<std::pair<int, int>>& inherited,
                bool own_session);

 private:
  PageStage() = default;
  Result<uint64_t> MapPiece(pid_t owner, uint64_t vaddr, uint64_t len);

  pid_t pid_ = 0;
  int sock_ = -1;
  bool taken_ = false;
  bool adopted_ = false;                        // Adopt(): the reservation
  uint64_t reserve_at_ = 0, reserve_end_ = 0, reserve_next_ = 0;
  std::vector<StagedPiece> pieces_;
  std::map<pid_t, RangeSet> covered_;  // per process, vaddr ranges that have a piece
};

// Runs in the staged process when the restore calls Become(): defined in
// restore.cc, with the seed it turns into. `staged`: the pieces it holds.
[[noreturn]] void BecomeStagedSeed(const std::string& dir, int base, int ready_fd,
                                   const std::vector<std::pair<int, int>>& inherited,
                                   const std::vector<StagedPiece>& staged, bool own_session);

}  // namespace roam
