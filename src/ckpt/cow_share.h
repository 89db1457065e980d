// Pages a tree's processes share copy-on-write (since a fork), shared again
// at the restore by replaying the forks.
//
// The dump saves such a page once, in the first ancestor that has it as
// its own, and records it in each descendant that shares it as inherited
// (ProcessImage.inherited: its parent's very page at the same address,
// DumpOptions::share_cow).
//
// The restore makes the seeds by fork, parents first (restore.cc), so it
// can do what the tree did: regions of memory, mapped (untouched) by the
// restorer before the root seed is made, are inherited by every seed. Each
// seed that takes a region makes its copy hold its own contents before it
// forks its children: it writes the pages it saved and drops (zeroes) those
// it neither saved nor inherited; what it inherited stays, shared with its
// parent's copy. Each process then moves its copy into place (staged
// memory, memory.h) instead of writing those pages.
//
// Regions are whole private anonymous mappings: every mapping of a process
// whose child inherits pages in it, and every mapping of any process that
// overlaps one of those (until none does), merged. So a mapping is placed
// whole, never split at a region's edge, however scattered the shared
// pages; the seeds pay for writing their own pages, as a rebuild would.
#pragma once

#include <sys/types.h>

#include <map>
#include <vector>

#include "ckpt/image.h"
#include "ckpt/memory.h"
#include "ckpt/range_set.h"
#include "common/status.h"

namespace roam {

class CowStage {
 public:
  CowStage() = default;
  ~CowStage();  // unmaps the restorer's regions (the seeds keep theirs)
  CowStage(const CowStage&) = delete;
  CowStage& operator=(const CowStage&) = delete;

  // Plans the regions of `image` and maps them, empty, in this process (to
  // be inherited by the root seed). Refuses an image whose inherited pages
  // lie outside its parent's private mappings or have no parent in it.
  Status Stage(const Image& image);
  // The restorer's regions go; the seeds made meanwhile keep theirs.
  void Release();

  // The regions: StagedPiece::also lists the processes that take each
  // (every process with a private anonymous mapping in it).
  const std::vector<StagedPiece>& pieces() const { return pieces_; }
  // The pages of `pid` that its copies of the regions hold, ready (not
  // written from its page file again).
  RangeSet FromStaged(pid_t pid) const;

 private:
  std::vector<StagedPiece> pieces_;
  std::map<pid_t, RangeSet> from_;
  std::vector<std::pair<void*, size_t>> regions_;
};

// In the seed of `proc`, before it forks its children: its copy of each
// region of `pieces` it takes gets its own contents, from its page file
// `pages_fd` (see above).
Status PrepareSharedRegions(const pb::ProcessImage& proc, const std::vector<StagedPiece>& pieces, int pages_fd);

}  // namespace roam
