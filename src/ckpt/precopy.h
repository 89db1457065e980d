// Pre-copy, the sending side of a live migration (docs/MIGRATION.md,
// "Pre-copy"): the memory of a process tree is read and handed out while it
// runs, first whole, then in rounds only what it wrote since the previous
// round (one DirtyTracker per process); at the freeze, Finish() says which
// of the pages handed out are still right, per process, and the dump
// leaves those out (DumpOptions::kept), so the frozen window carries only
// the last round.
//
// Which memory: the private anonymous mappings that a process can write and
// that do not grow down (heap, malloc arenas, mmap'd buffers), of the root
// and of every other process of the tree that holds at least
// kPreCopyMinBytes of anonymous memory when pre-copy starts (a shell or a
// `make` between the root and the real work; tracking one costs a few ms of
// ptrace while the tree is held). Everything else (stacks, file and shared
// mappings, small processes, processes forked after the start) goes with
// the final image, as in a stop-and-copy.
//
// A page is "kept" when it was handed out and has not been written, zeroed
// or unmapped since: the receiver must then hold exactly those bytes at
// that address of that process. Pages handed out and then changed are
// simply not kept: the final image carries them (or they are zero), and
// the receiver must drop what it staged for any page it is not told to
// keep. A process other than the root that exits, execs or cannot be
// tracked any more is dropped from pre-copy: none of its pages is kept (its
// image, if it is still there at the freeze, carries them all). The root
// cannot be dropped: that is an error, and the caller gives up pre-copy.
//
// Threads: Start() and Finish() use ptrace and must run on the thread that
// will freeze the process for the dump; the other calls need no ptrace.
// Not thread-safe.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ckpt/dirty_tracker.h"
#include "ckpt/range_set.h"
#include "common/proc_maps.h"
#include "common/status.h"

namespace roam {

// Pages read from a running process of the tree.
struct PageBatch {
  pid_t pid = 0;
  uint64_t vaddr = 0;
  std::string data;  // whole pages, for [vaddr, vaddr + data.size())
  PageRange piece;   // the mapping they lie in (the receiver stages it whole)
  int round = 0;
};

// When to stop sending while it runs and freeze instead.
struct PreCopyPolicy {
  int max_rounds = 8;                     // rounds while running, the first (whole) one included
  uint64_t small_enough = 2ull << 20;     // a round this small goes in the frozen copy
  double min_shrink = 0.75;               // a round that is not this much smaller than the last: not converging
};

// Whether to freeze now: `rounds` done so far, `last` bytes the last round
// handed out, `next` bytes the next one would. Pure.
bool PreCopyConverged(const PreCopyPolicy& policy, int rounds, uint64_t last, uint64_t next);

// Whether pre-copy sends this mapping's pages.
bool IsPreCopied(const VmaInfo& vma);

// The least anonymous memory for which a process other than the root is
// pre-copied.
inline constexpr uint64_t kPreCopyMinBytes = 1ull << 20;

// Pages kept, per process (sorted, merged).
using KeptPages = std::map<pid_t, std::vector<PageRange>>;

class PreCopy {
 public:
  // Freezes `root`'s tree for a moment (the engine's preflight refuses,
  // before anything, what it cannot carry), starts tracking the root and
  // (with `tree`) the other processes worth it, lets them run on.
  static Result<std::unique_ptr<PreCopy>> Start(pid_t root, bool tree = true);
  ~PreCopy();
  PreCopy(const PreCopy&) = delete;
  PreCopy& operator=(const PreCopy&) = delete;

  // Starts the next round: the first hands out every page, the others the
  // pages written since the previous round. Returns an upper bound of the
  // round's bytes (the pages it will read if all are present).
  Result<uint64_t> BeginRound();
  // Reads up to about `max_bytes` of the round's present, non-zero pages
  // into `out`. Returns true when the round is done.
  Result<bool> Pump(uint64_t max_bytes, std::vector<PageBatch>* out);
  // REQUIRES: the tree is frozen. Stops tracking and returns the pages
  // the receiver holds right, per process still pre-copied. They may
  // include pages of a mapping that grows down (maps cannot tell):
  // DumpMemory saves those.
  Result<KeptPages> Finish();

  int rounds() const { return rounds_; }
  // The processes pre-copied now (the root first).
  std::vector<pid_t> pids() const;

 private:
  PreCopy() = default;

  struct Member {
    Member(pid_t p, DirtyTracker t) : pid(p), tracker(std::move(t)) {}
    ~Member();
    pid_t pid;
    DirtyTracker tracker;
    int pagemap_fd = -1;
    RangeSet sent;  // handed out and not written since
    bool dropped = false;
  };
  struct Queued {
    Member* member;
    PageRange range;
    PageRange piece;
  };
  // A process other than the root is dropped on `why`; the root's failure
  // is returned.
  Status Lost(Member& m, const Status& why);

  std::vector<std::unique_ptr<Member>> members_;  // the root first
  std::vector<Queued> queue_;   // this round's ranges
  size_t next_ = 0;             // into queue_
  uint64_t offset_ = 0;         // into queue_[next_]
  int rounds_ = 0;
};

}  // namespace roam
