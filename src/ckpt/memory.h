// Memory of a process: the dump classifies every VMA and saves only the
// pages that cannot be found elsewhere (anonymous pages, and the pages of a
// private file mapping that were copied on write; never-touched and all-zero
// pages cost nothing); the restore rebuilds the address space inside the
// seed process through injected system calls.
#pragma once

#include <sys/types.h>

#include <algorithm>

#include <string>
#include <vector>

#include "ckpt/files.h"
#include "ckpt/range_set.h"
#include "ckpt/tracee.h"
#include "common/proc_maps.h"
#include "common/status.h"
#include "image.pb.h"

namespace roam {

class SysvObjects;

struct MemoryStats {
  uint64_t pages_saved = 0;
  uint64_t zero_pages_skipped = 0;
};

// Fills proc->vmas, proc->pages and writes pages-PID.img (and the contents
// of shared anonymous objects not seen before into shmem-ID.img, recorded
// in files.table()). Pages of private anonymous mappings inside `kept`
// (the restorer holds them already: pre-copy) are recorded in proc->kept
// instead of saved. With `cow_parent` (the parent, frozen too, dumped
// before), pages of private anonymous mappings that are the parent's own
// page at the same address (copy-on-write since a fork) are recorded in
// proc->inherited instead of saved; `parent_anon`: where the parent has
// private anonymous mappings that staged memory can become (TakesStaged),
// the only places looked at. REQUIRES: the process is frozen.
Status DumpMemory(pid_t pid, const std::vector<VmaInfo>& vmas, FileTableBuilder& files, pb::ProcessImage* proc,
                  MemoryStats* stats, const RangeSet& kept = RangeSet(), pid_t cow_parent = 0,
                  const RangeSet& parent_anon = RangeSet());

// The contents of a shared memory object (a shared anonymous mapping's, or
// a memfd's: file_memfd.cc) opened through `path`, once per `id` (its
// inode) into shmem-ID.img and files.table()'s shmems.
Status DumpSharedObject(const std::string& path, uint64_t id, FileTableBuilder& files, MemoryStats* stats);
// The first `size` bytes of the shmem file `fd` (`what`, for errors), its
// holes skipped, into the page file `name`, recorded in `pages` (vaddr =
// offset) and files.sums.
Status DumpShmemPages(int fd, const std::string& what, uint64_t size, const std::string& name, FileTableBuilder& files,
                      google::protobuf::RepeatedPtrField<pb::PageRun>* pages, MemoryStats* stats);
// The other way: every run of `pages` from the page file `path` into
// [base, base + size).
Status ReadShmemPages(const std::string& path, const google::protobuf::RepeatedPtrField<pb::PageRun>& pages, char* base,
                      size_t size);

// Pre-copied memory staged in a seed (page_stage.h): [vaddr, vaddr + len)
// of the address space of the image's process `pid`, for now at `at` in
// the seed (the root's, or a seed that inherited it from its parent).
struct StagedPiece {
  uint64_t vaddr = 0, len = 0, at = 0;
  pid_t pid = 0;
  // Pages shared copy-on-write (cow_share.h): the other processes that take
  // the same piece, at the same address.
  std::vector<pid_t> also;

  bool For(pid_t p) const { return p == pid || std::find(also.begin(), also.end(), p) != also.end(); }
};

// Whether a VMA can be (part of) staged memory moved into place: private
// anonymous, not growing down, not droppable.
inline bool TakesStaged(const pb::Vma& v) {
  return v.kind() == pb::VMA_ANON_PRIVATE && !v.growsdown() &&
         std::find(v.vm_flags().begin(), v.vm_flags().end(), "dp") == v.vm_flags().end();
}

// The pieces of `pieces` that belong to `pid` (StagedPiece::For).
std::vector<StagedPiece> PiecesOf(const std::vector<StagedPiece>& pieces, pid_t pid);

// The seed-side resources a memory restore works with.
struct SeedLayout {
  uint64_t helper = 0;        // the seed's helper area: a `syscall` at +0, scratch from +4096
  uint64_t helper_size = 0;
  int pages_fd = -1;          // pages-PID.img, open in the seed
  bool set_exe = true;        // /proc/PID/exe too (needs CAP_CHECKPOINT_RESTORE in the seed)
  std::vector<StagedPiece> staged;  // moved into place; only proc.kept() of them is kept
  const SysvObjects* sysv = nullptr;  // the tree's System V objects, made (their ids here)
  // Pages whose contents come from staged pieces shared with other
  // processes (cow_share.h): kept as placed, not written from the image.
  RangeSet from_staged;
};

inline constexpr uint64_t kHelperSize = 64 * 1024;
inline constexpr uint64_t kScratchOffset = 4096;

// Picks a free range of `size` bytes in the image's address space, away
// from the ranges in `avoid`, for the seed's helper area or a temporary
// spot. 0 if there is none.
uint64_t FindHole(const pb::ProcessImage& proc, uint64_t size, const std::vector<std::pair<uint64_t, uint64_t>>& avoid);

// Replaces the seed's address space with the image's: unmaps the seed's
// own mappings, moves [vdso]/[vvar]/[vvar_vclock] to their dumped
// addresses, maps every VMA, moves staged pieces into the private anonymous
// ones (and drops every staged page that is neither kept nor in the
// image), fills the pages, applies protections and madvise state. REQUIRES: t is seized, signals blocked, syscall ip inside
// the helper area.
Status RestoreMemory(Tracee& t, const pb::ProcessImage& proc, const OpenedFiles& opened, const SeedLayout& seed);

// PR_SET_MM_MAP: code/data/brk/stack/args/env bounds, auxv, exe file.
Status RestoreMmFields(Tracee& t, const pb::ProcessImage& proc, const OpenedFiles& opened, const SeedLayout& seed);

}  // namespace roam
