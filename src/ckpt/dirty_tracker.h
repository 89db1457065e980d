// Dirty-page tracking for live migration's pre-copy: which pages of a
// *running* process were written since the previous round.
//
// Soft-dirty is off on our kernels, so this uses userfaultfd write-protect
// in async mode (UFFD_FEATURE_WP_ASYNC + WP_UNPOPULATED, 6.7+) and the
// PAGEMAP_SCAN ioctl on /proc/PID/pagemap: a write to a protected page
// never blocks, the kernel just drops the page's protection, and one scan
// reports the unprotected pages and protects them again, atomically.
//
// The userfaultfd belongs to the address space that creates it, so Start()
// creates it inside the target by syscall injection, takes a copy with
// pidfd_getfd and closes the target's own at once: the target holds no new
// fd, and every later call works from the caller's side on the running
// process. Stop() (or the destructor) closes the copy, which unregisters
// every range and removes every protection: the process is as before.
//
// Which mappings are tracked (IsTrackable): private, writable mappings that
// the dump saves pages of: anonymous ones ("", [heap], [stack],
// [anon:NAME]) and private file mappings. Not tracked, and to be sent whole
// in the final stop-and-copy (or resent every round): shared mappings
// (anonymous or file: their pages live in an object, not in the process),
// special mappings ([vdso], [vvar], [vvar_vclock], [vsyscall] and other
// bracketed names), read-only and PROT_NONE ones (unwritten unless
// mprotect'ed, which the mapping diff reports), and, when the VMA list came
// from smaps, hugetlb ("ht"), VM_IO ("io"), VM_PFNMAP ("pf") mappings.
//
// Each round of pre-copy, in this order, then read and send what they return:
//   1. NewMappings(): mappings created, grown, moved or changed since the
//      previous call (or Start), wholly dirty; they are tracked from then on.
//   2. Scan(): pages written in the tracked ranges since the previous Scan.
// A range returned may be unmapped by the process before the caller reads
// it (the process runs): a read that fails with EFAULT/EIO/ENOMEM means the
// range is gone, not an error; the final stop-and-copy sends the final
// layout. Pages that were zeroed (MADV_DONTNEED on anonymous memory) are
// reported as written; reading them gives the zeros.
//
// A fork() by the process is harmless: its children are not tracked, its
// own copy-on-write copies after the fork are reported as writes.
//
// Known gaps: MADV_DONTNEED on a *private file* mapping (its copied pages
// revert to the file's) is not seen; nor is a write through /proc/PID/mem or
// ptrace into a mapping that is not tracked (read-only ones). Mappings
// registered with another userfaultfd (the process's own) cannot be tracked:
// Start fails on them, NewMappings returns them every time. After an
// execve the old address space is gone: Scan fails ("has exited"), and
// tracking must start again.
//
// Errors are values. Start leaves the process as it was on failure (unless
// ptrace itself fails midway, i.e. the process died); the caller falls back
// to stop-and-copy (the kernel may lack WP_ASYNC or PAGEMAP_SCAN, the
// target may be a zombie, ...). The first Start in a process also tries,
// once, on two pages of the caller's own and a userfaultfd of its own,
// whether the kernel shows pages zapped after protection as written (6.18
// does); if not, each Scan walks twice to find them.
//
// Not thread-safe. Start() must run on the thread that seized the tracee;
// the other calls need no ptrace and may run on any one thread. A child the
// caller forks (without exec) between Start and Stop inherits the
// userfaultfd copy and keeps the tracking armed until it exits or execs.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "ckpt/range_set.h"
#include "ckpt/tracee.h"
#include "common/proc_maps.h"
#include "common/status.h"

namespace roam {

// /proc/PID/maps, read and parsed.
Result<std::vector<VmaInfo>> ReadMaps(pid_t pid);

// Whether pre-copy tracks (and sends) this mapping; see above.
bool IsTrackable(const VmaInfo& vma);
// The trackable mappings of `vmas`, as ranges (adjacent ones merged).
std::vector<PageRange> TrackableRanges(const std::vector<VmaInfo>& vmas);

// The parts of the trackable mappings of `now` that were not mapped the
// same way in `before`: new, grown, moved (a file mapping at another
// offset), or with other permissions, path, device or inode. Pure; both
// lists in address order, as /proc/PID/maps gives them.
std::vector<PageRange> ChangedRanges(const std::vector<VmaInfo>& before, const std::vector<VmaInfo>& now);

class DirtyTracker {
 public:
  // Starts tracking `ranges` (merged and sorted here; each must lie in
  // trackable mappings, else an error names the first that does not) of
  // t.pid(). From here on, a write to one of their pages is reported by the
  // next Scan(); what they held before is the caller's first full copy.
  // REQUIRES: t is seized and in a ptrace-stop, its signals blocked
  // (Tracee::BlockSignals), the process single-threaded or all its threads
  // stopped. t's syscall ip is used if set, else one that
  // FindSyscallInstruction finds (and t is left with its syscall ip as it
  // was). The memory and the fd table of the process are as before when
  // this returns, and so are its registers but for one thing any
  // injection session does: a system call it was
  // interrupted in is set up to run again (Tracee::ResumeRegs, applied
  // here; applying it again is harmless). Detach to let it run.
  static Result<DirtyTracker> Start(Tracee& t, const std::vector<PageRange>& ranges);

  // Start in two steps, for a shorter stop: Open() is the part that needs
  // the ptrace-stop (the injection: a few ms, same REQUIRES as Start), and
  // registers the ranges; Protect(), called after the process was let go,
  // write-protects them (most of Start's time: ~45 ms per GiB here) while
  // it runs. Until Protect() returns, a Scan also reports pages that were
  // not written (more than needed, never less); the caller's first full
  // copy must begin after it. Start = Open + Protect.
  static Result<DirtyTracker> Open(Tracee& t, const std::vector<PageRange>& ranges);
  Status Protect();

  DirtyTracker(DirtyTracker&& other) noexcept;
  DirtyTracker& operator=(DirtyTracker&& other) noexcept;
  DirtyTracker(const DirtyTracker&) = delete;
  DirtyTracker& operator=(const DirtyTracker&) = delete;
  ~DirtyTracker();  // Stop()

  // The pages written in the tracked ranges since Start or the previous
  // Scan, sorted and merged; protects them again in the same kernel walk,
  // so a write racing with the scan is reported now or next time, never
  // lost. The process may run. A tracked part whose mapping was replaced
  // behind our back (munmap + mmap at the same place) is registered again
  // and reported whole; one that can no longer be registered is reported
  // whole every time.
  Result<std::vector<PageRange>> Scan();

  // Reads /proc/PID/maps, and returns ChangedRanges(last list, now): wholly
  // dirty. Each of them is registered and write-protected before this
  // returns (so the caller's read that follows sees every write made before
  // it, and Scan reports the later ones); those that cannot be are returned
  // again at each call. The process may run.
  Result<std::vector<PageRange>> NewMappings();

  // Closes the userfaultfd: the kernel unregisters every range and drops
  // every protection; writes go on as if tracking had never been. Idempotent.
  void Stop();

  pid_t pid() const { return pid_; }
  bool active() const { return uffd_ >= 0; }
  // What is tracked now (grows with NewMappings and Scan's repairs).
  const std::vector<PageRange>& tracked() const { return tracked_; }

 private:
  DirtyTracker() = default;
  Status Register(const PageRange& r);
  Status WriteProtect(const PageRange& r);
  // One PAGEMAP_SCAN walk over [start, end) with `category` (inverted by
  // `inverted`), write-protecting what matches; appends the matches.
  // Returns errno (0 on success) so that EPERM can be told apart.
  int ScanOnce(const PageRange& r, uint64_t category, uint64_t inverted, std::vector<PageRange>* out,
               std::string* error);
  Status Repair(const PageRange& r, std::vector<PageRange>* dirty, std::vector<PageRange>* still_tracked);

  pid_t pid_ = 0;
  int uffd_ = -1;     // our copy of the target's userfaultfd
  int pagemap_ = -1;  // /proc/PID/pagemap
  std::vector<PageRange> tracked_;
  std::vector<PageRange> untrackable_;  // reported whole by every Scan
  std::vector<VmaInfo> maps_;           // the list NewMappings compares with
  std::vector<char> vec_;               // PAGEMAP_SCAN's output buffer
  bool second_walk_ = true;             // zapped pages do not show as written: look for them too
};

}  // namespace roam
