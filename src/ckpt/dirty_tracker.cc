#include "ckpt/dirty_tracker.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <utility>

#include "ckpt/uapi_dirty.h"
#include "common/file_util.h"

// ---- constants Debian 12's headers lack (kernel 6.7+) ----------------------------
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;
constexpr size_t kVecLen = 4096;  // regions per PAGEMAP_SCAN call; the walk goes on from walk_end
// A page that is neither present nor swapped (nor a uffd-wp marker, which
// counts as swapped) had its contents dropped since it was protected: its
// pte was zapped (MADV_DONTNEED) or its page table freed.
constexpr uint64_t kPresentOrSwapped = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;

std::string Who(pid_t pid) { return "pid " + std::to_string(pid); }

std::string Hex(uint64_t v) {
  char buf[24];
  snprintf(buf, sizeof(buf), "%" PRIx64, v);
  return buf;
}

std::string Show(const PageRange& r) { return "[" + Hex(r.start) + ", " + Hex(r.end) + ")"; }

// Sorts, and merges overlapping or adjacent ranges.
std::vector<PageRange> Normalize(std::vector<PageRange> v) {
  std::sort(v.begin(), v.end(), [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  std::vector<PageRange> out;
  for (const PageRange& r : v) {
    if (r.start >= r.end) continue;
    if (!out.empty() && r.start <= out.back().end) {
      out.back().end = std::max(out.back().end, r.end);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

bool Special(const VmaInfo& v) {
  if (v.path.empty() || v.path[0] != '[') return false;
  return v.path != "[heap]" && v.path != "[stack]" && v.path.rfind("[anon:", 0) != 0;
}

// Same kind of mapping, and for a file the same offset for the same address.
bool SameMapping(const VmaInfo& a, const VmaInfo& b) {
  if (a.read != b.read || a.write != b.write || a.exec != b.exec || a.shared != b.shared) return false;
  if (a.dev_major != b.dev_major || a.dev_minor != b.dev_minor || a.inode != b.inode) return false;
  if (a.path != b.path || a.deleted != b.deleted) return false;
  return a.inode == 0 || a.offset - a.start == b.offset - b.start;  // modular: works either side
}

// Whether a page whose contents were dropped after it was protected
// (MADV_DONTNEED zaps its pte) counts as written. 6.18 says yes: a none pte
// carries no protection. A kernel that says no needs a second walk for such
// pages (see kPresentOrSwapped). Tried once, on two pages of our own; if
// the try fails, the second walk is done.
bool ZappedPagesShowAsWritten() {
  static const bool yes = [] {
    char* m = static_cast<char*>(mmap(nullptr, 2 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (m == MAP_FAILED) return false;
    m[0] = m[kPage] = 1;
    int uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK));
    if (uffd < 0) uffd = static_cast<int>(syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY));
    int pagemap = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    bool ok = uffd >= 0 && pagemap >= 0;
    uffdio_api api{};
    api.api = UFFD_API;
    api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
    ok = ok && ioctl(uffd, UFFDIO_API, &api) == 0;
    uffdio_register reg{};
    reg.range = {reinterpret_cast<uintptr_t>(m), 2 * kPage};
    reg.mode = UFFDIO_REGISTER_MODE_WP;
    ok = ok && ioctl(uffd, UFFDIO_REGISTER, &reg) == 0;
    uffdio_writeprotect wp{};
    wp.range = reg.range;
    wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
    ok = ok && ioctl(uffd, UFFDIO_WRITEPROTECT, &wp) == 0 && madvise(m, kPage, MADV_DONTNEED) == 0;
    page_region vec[2] = {};
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.start = reg.range.start;
    arg.end = reg.range.start + 2 * kPage;
    arg.vec = reinterpret_cast<uintptr_t>(vec);
    arg.vec_len = 2;
    arg.category_mask = arg.return_mask = PAGE_IS_WRITTEN;
    ok = ok && ioctl(pagemap, PAGEMAP_SCAN, &arg) == 1 && vec[0].start == arg.start && vec[0].end == arg.start + kPage;
    if (uffd >= 0) close(uffd);
    if (pagemap >= 0) close(pagemap);
    munmap(m, 2 * kPage);
    return ok;
  }();
  return yes;
}

}  // namespace

Result<std::vector<VmaInfo>> ReadMaps(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/maps");
  if (!text.ok()) return text.status();
  return ParseMaps(*text);
}

// ---- which mappings ----------------------------------------------------------------

bool IsTrackable(const VmaInfo& v) {
  if (v.shared || !v.write || Special(v)) return false;
  return !v.HasFlag("ht") && !v.HasFlag("io") && !v.HasFlag("pf");
}

std::vector<PageRange> TrackableRanges(const std::vector<VmaInfo>& vmas) {
  std::vector<PageRange> out;
  for (const VmaInfo& v : vmas) {
    if (IsTrackable(v)) out.push_back({v.start, v.end});
  }
  return Normalize(std::move(out));
}

std::vector<PageRange> ChangedRanges(const std::vector<VmaInfo>& before, const std::vector<VmaInfo>& now) {
  std::vector<PageRange> out;
  for (const VmaInfo& v : now) {
    if (!IsTrackable(v)) continue;
    // The parts of v not covered by a `before` mapping of the same kind.
    uint64_t at = v.start;
    auto b = std::lower_bound(before.begin(), before.end(), v.start,
                              [](const VmaInfo& x, uint64_t addr) { return x.end <= addr; });
    for (; b != before.end() && b->start < v.end && at < v.end; ++b) {
      if (!SameMapping(*b, v) || b->end <= at) continue;
      if (b->start > at) out.push_back({at, b->start});
      at = std::min(b->end, v.end);
    }
    if (at < v.end) out.push_back({at, v.end});
  }
  return Normalize(std::move(out));
}

// ---- the tracker -------------------------------------------------------------------

DirtyTracker::DirtyTracker(DirtyTracker&& o) noexcept { *this = std::move(o); }

DirtyTracker& DirtyTracker::operator=(DirtyTracker&& o) noexcept {
  if (this == &o) return *this;
  Stop();
  pid_ = o.pid_;
  uffd_ = std::exchange(o.uffd_, -1);
  pagemap_ = std::exchange(o.pagemap_, -1);
  tracked_ = std::move(o.tracked_);
  untrackable_ = std::move(o.untrackable_);
  maps_ = std::move(o.maps_);
  vec_ = std::move(o.vec_);
  second_walk_ = o.second_walk_;
  return *this;
}

DirtyTracker::~DirtyTracker() { Stop(); }

void DirtyTracker::Stop() {
  if (uffd_ >= 0) close(uffd_);
  if (pagemap_ >= 0) close(pagemap_);
  uffd_ = pagemap_ = -1;
}

Status DirtyTracker::Register(const PageRange& r) {
  uffdio_register reg{};
  reg.range = {r.start, r.end - r.start};
  reg.mode = UFFDIO_REGISTER_MODE_WP;
  if (ioctl(uffd_, UFFDIO_REGISTER, &reg) != 0) {
    int err = errno;
    std::string why = err == EBUSY ? " (the process has its own userfaultfd there)" : "";
    return Status::Errno(Who(pid_) + ": UFFDIO_REGISTER (write-protect) " + Show(r) + why, err);
  }
  if (!(reg.ioctls & (1ULL << _UFFDIO_WRITEPROTECT))) {
    return Status::Error(Who(pid_) + ": UFFDIO_REGISTER " + Show(r) + ": write-protect not offered for this mapping");
  }
  return Status::Ok();
}

Status DirtyTracker::WriteProtect(const PageRange& r) {
  uffdio_writeprotect wp{};
  wp.range = {r.start, r.end - r.start};
  wp.mode = UFFDIO_WRITEPROTECT_MODE_WP;
  if (ioctl(uffd_, UFFDIO_WRITEPROTECT, &wp) != 0) {
    return Status::Errno(Who(pid_) + ": UFFDIO_WRITEPROTECT " + Show(r));
  }
  return Status::Ok();
}

Result<DirtyTracker> DirtyTracker::Open(Tracee& t, const std::vector<PageRange>& ranges) {
  const pid_t pid = t.pid();
  const std::string who = Who(pid);
  DirtyTracker d;
  d.pid_ = pid;

  // What to register: each range cut at mapping boundaries, checked before
  // the process is touched.
  std::vector<PageRange> wanted = Normalize(ranges);
  for (const PageRange& r : wanted) {
    if (r.start % kPage != 0 || r.end % kPage != 0) {
      return Status::Error(who + ": range " + Show(r) + " is not page-aligned");
    }
  }
  Result<std::vector<VmaInfo>> maps = ReadMaps(pid);
  if (!maps.ok()) return maps.status();
  std::vector<PageRange> pieces;
  for (const PageRange& r : wanted) {
    uint64_t at = r.start;
    for (const VmaInfo& v : *maps) {
      if (v.end <= at || v.start >= r.end) continue;
      if (v.start > at) return Status::Error(who + ": " + Show({at, v.start}) + " is not mapped");
      if (!IsTrackable(v)) {
        return Status::Error(who + ": mapping " + Show({v.start, v.end}) + " " + v.path +
                             " cannot be tracked (shared, special or not writable): send it whole");
      }
      pieces.push_back({at, std::min(v.end, r.end)});
      at = pieces.back().end;
      if (at == r.end) break;
    }
    if (at < r.end) return Status::Error(who + ": " + Show({at, r.end}) + " is not mapped");
  }
  d.maps_ = std::move(*maps);

  // PAGEMAP_SCAN, tried on an empty range: ENOTTY before 6.7.
  const std::string pagemap_path = "/proc/" + std::to_string(pid) + "/pagemap";
  d.pagemap_ = open(pagemap_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (d.pagemap_ < 0) return Status::Errno("open " + pagemap_path);
  d.vec_.resize(kVecLen * sizeof(page_region));
  {
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.vec = reinterpret_cast<uintptr_t>(d.vec_.data());
    arg.vec_len = kVecLen;
    arg.category_mask = arg.return_mask = PAGE_IS_WRITTEN;
    if (ioctl(d.pagemap_, PAGEMAP_SCAN, &arg) < 0) {
      int err = errno;
      return Status::Errno("ioctl PAGEMAP_SCAN on " + pagemap_path + (err == ENOTTY ? " (needs kernel 6.7+)" : ""),
                           err);
    }
  }

  // The userfaultfd, created by the process itself, copied to us, closed there.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  if (pidfd < 0) return Status::Errno("pidfd_open " + who);
  const uint64_t saved_ip = t.syscall_ip();
  if (saved_ip == 0) {
    Result<uint64_t> ip = FindSyscallInstruction(pid);
    if (!ip.ok()) {
      close(pidfd);
      return ip.status();
    }
    t.set_syscall_ip(*ip);
  }
  Status st;
  Result<long> remote = t.Syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
  if (remote.ok() && *remote == -EPERM) {
    // Without CAP_SYS_PTRACE (and vm.unprivileged_userfaultfd=0) only a
    // user-mode-only one may be made; async write-protect never delivers a
    // fault, so it tracks kernel-mode writes (read(2) into the page) all the same.
    remote = t.Syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
  }
  if (!remote.ok()) {
    st = remote.status();
  } else if (*remote < 0) {
    st = Status::Errno(who + ": userfaultfd (injected)", static_cast<int>(-*remote));
  } else {
    d.uffd_ = static_cast<int>(syscall(SYS_pidfd_getfd, pidfd, static_cast<int>(*remote), 0));
    if (d.uffd_ < 0) st = Status::Errno(who + ": pidfd_getfd of its userfaultfd " + std::to_string(*remote));
    Result<long> closed = t.SyscallOk("close of the userfaultfd (injected)", SYS_close, static_cast<uint64_t>(*remote));
    if (st.ok() && !closed.ok()) st = closed.status();
  }
  // The process now sits in a syscall-exit stop: a call it was interrupted
  // in must run again when it resumes, as the kernel would have made it.
  if (remote.ok()) {
    Status set = t.ResumeInterruptedCall();
    if (st.ok()) st = set;
  }
  t.set_syscall_ip(saved_ip);
  close(pidfd);
  if (!st.ok()) return st;  // d's destructor closes our copy: nothing stays registered

  uffdio_api api{};
  api.api = UFFD_API;
  api.features = UFFD_FEATURE_WP_ASYNC | UFFD_FEATURE_WP_UNPOPULATED;
  if (ioctl(d.uffd_, UFFDIO_API, &api) != 0) {
    int err = errno;
    return Status::Errno(
        who + ": UFFDIO_API with WP_ASYNC and WP_UNPOPULATED" + (err == EINVAL ? " (needs kernel 6.7+)" : ""), err);
  }
  for (const PageRange& p : pieces) {
    st = d.Register(p);
    if (!st.ok()) return st;
  }
  d.tracked_ = Normalize(std::move(pieces));
  d.second_walk_ = !ZappedPagesShowAsWritten();
  return d;
}

Status DirtyTracker::Protect() {
  if (uffd_ < 0) return Status::Error(Who(pid_) + ": dirty-page tracking is stopped");
  for (const PageRange& r : tracked_) {
    Status st = WriteProtect(r);
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

Result<DirtyTracker> DirtyTracker::Start(Tracee& t, const std::vector<PageRange>& ranges) {
  Result<DirtyTracker> d = Open(t, ranges);
  if (!d.ok()) return d;
  Status st = d->Protect();
  if (!st.ok()) return st;
  return d;
}

int DirtyTracker::ScanOnce(const PageRange& r, uint64_t category, uint64_t inverted, std::vector<PageRange>* out,
                           std::string* error) {
  const page_region* vec = reinterpret_cast<const page_region*>(vec_.data());
  uint64_t at = r.start;
  while (at < r.end) {
    pm_scan_arg arg{};
    arg.size = sizeof(arg);
    arg.flags = PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC;
    arg.start = at;
    arg.end = r.end;
    arg.vec = reinterpret_cast<uintptr_t>(vec_.data());
    arg.vec_len = kVecLen;
    arg.category_inverted = inverted;
    arg.category_mask = category;
    arg.return_mask = category;
    int n = ioctl(pagemap_, PAGEMAP_SCAN, &arg);
    if (n < 0) {
      int err = errno;
      if (err == EINTR) continue;
      std::string what = Who(pid_) + (err == ESRCH ? " has exited" : "") + ": ioctl PAGEMAP_SCAN " + Show({at, r.end});
      *error = Status::Errno(what, err).message();
      return err;
    }
    for (int i = 0; i < n; ++i) out->push_back({vec[i].start, vec[i].end});
    if (arg.walk_end >= r.end || arg.walk_end == 0) break;
    if (arg.walk_end <= at) {
      *error = Who(pid_) + ": PAGEMAP_SCAN made no progress at " + Hex(at);
      return EIO;
    }
    at = arg.walk_end;
  }
  return 0;
}

// A walk over `r` met a mapping that is not registered with us (replaced
// by munmap + mmap, or moved by mremap, since). Each trackable mapping in
// `r` is registered and protected again and reported whole, since the
// aborted walk may already have protected some of its written pages.
Status DirtyTracker::Repair(const PageRange& r, std::vector<PageRange>* dirty, std::vector<PageRange>* still_tracked) {
  Result<std::vector<VmaInfo>> maps = ReadMaps(pid_);
  if (!maps.ok()) return maps.status();
  for (const VmaInfo& v : *maps) {
    if (v.end <= r.start || v.start >= r.end || !IsTrackable(v)) continue;
    PageRange piece{std::max(v.start, r.start), std::min(v.end, r.end)};
    dirty->push_back(piece);
    Status st = Register(piece);
    if (st.ok()) st = WriteProtect(piece);
    (st.ok() ? still_tracked : &untrackable_)->push_back(piece);
  }
  untrackable_ = Normalize(std::move(untrackable_));
  return Status::Ok();
}

Result<std::vector<PageRange>> DirtyTracker::Scan() {
  if (uffd_ < 0) return Status::Error(Who(pid_) + ": dirty-page tracking is stopped");
  std::vector<PageRange> dirty = untrackable_;
  std::vector<PageRange> still_tracked;
  for (const PageRange& r : tracked_) {
    std::string error;
    int err = ScanOnce(r, PAGE_IS_WRITTEN, 0, &dirty, &error);
    if (err == 0 && second_walk_) err = ScanOnce(r, kPresentOrSwapped, kPresentOrSwapped, &dirty, &error);
    if (err == EPERM) {
      Status st = Repair(r, &dirty, &still_tracked);
      if (!st.ok()) return st;
      continue;
    }
    if (err != 0) return Status::Error(error);
    still_tracked.push_back(r);
  }
  tracked_ = Normalize(std::move(still_tracked));
  return Normalize(std::move(dirty));
}

Result<std::vector<PageRange>> DirtyTracker::NewMappings() {
  if (uffd_ < 0) return Status::Error(Who(pid_) + ": dirty-page tracking is stopped");
  Result<std::vector<VmaInfo>> now = ReadMaps(pid_);
  if (!now.ok()) return now.status();
  std::vector<PageRange> changed = ChangedRanges(maps_, *now);
  std::vector<PageRange> failed;
  for (const PageRange& r : changed) {
    Status st = Register(r);
    if (st.ok()) st = WriteProtect(r);
    if (st.ok()) {
      tracked_.push_back(r);
    } else {
      failed.push_back(r);
    }
  }
  tracked_ = Normalize(std::move(tracked_));
  // A mapping that could not be registered stays out of the list compared
  // with next time, so that it is reported again.
  maps_.clear();
  for (VmaInfo& v : *now) {
    bool keep = std::none_of(failed.begin(), failed.end(),
                             [&](const PageRange& f) { return f.start < v.end && v.start < f.end; });
    if (keep) maps_.push_back(std::move(v));
  }
  return changed;
}

}  // namespace roam
