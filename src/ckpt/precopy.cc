#include "ckpt/precopy.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "ckpt/checkpoint.h"

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ULL << 63;
constexpr uint64_t kPmSwapped = 1ULL << 62;
constexpr uint64_t kReadChunk = 1 << 20;  // pages looked at in one pagemap read + one process_vm_readv

bool IsZeroPage(const char* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; ++i) {
    if (w[i] != 0) return false;
  }
  return true;
}

// Reads [addr, addr + len) of a running process. A mapping may vanish under
// us (it runs): on a failed or short read the pages are tried one by one,
// and `ok[i]` says which could be read.
void ReadRunning(pid_t pid, uint64_t addr, char* buf, size_t len, std::vector<bool>* ok) {
  size_t n = len / kPage;
  ok->assign(n, false);
  iovec local{buf, len}, remote{reinterpret_cast<void*>(addr), len};
  if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len)) {
    ok->assign(n, true);
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    iovec l{buf + i * kPage, kPage}, r{reinterpret_cast<void*>(addr + i * kPage), kPage};
    (*ok)[i] = process_vm_readv(pid, &l, 1, &r, 1, 0) == static_cast<ssize_t>(kPage);
  }
}

}  // namespace

bool PreCopyConverged(const PreCopyPolicy& policy, int rounds, uint64_t last, uint64_t next) {
  if (rounds >= policy.max_rounds) return true;
  if (next <= policy.small_enough) return true;
  // After the first (whole) round, each must shrink by a good factor, or
  // the process writes about as fast as we send: freeze now.
  return rounds >= 2 && static_cast<double>(next) > policy.min_shrink * static_cast<double>(last);
}

bool IsPreCopied(const VmaInfo& v) {
  if (v.shared || !v.write || v.inode != 0 || v.HasFlag("gd")) return false;
  return v.path.empty() || v.path == "[heap]" || v.path.rfind("[anon:", 0) == 0;
}

PreCopy::PreCopy(pid_t pid, DirtyTracker tracker) : pid_(pid), tracker_(std::move(tracker)) {}

PreCopy::~PreCopy() {
  if (pagemap_fd_ >= 0) close(pagemap_fd_);
}

Result<std::unique_ptr<PreCopy>> PreCopy::Start(pid_t root) {
  Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(root);
  if (!frozen.ok()) return frozen.status();
  Result<std::vector<VmaInfo>> maps = ReadMaps(root);
  if (!maps.ok()) return maps.status();
  std::vector<PageRange> ranges;
  for (const VmaInfo& v : *maps) {
    if (IsPreCopied(v)) ranges.push_back({v.start, v.end});
  }
  Result<DirtyTracker> tracker = (*frozen)->TrackRoot(ranges);
  (*frozen)->Resume();
  frozen->reset();
  if (!tracker.ok()) return tracker.status();
  // Write-protecting takes ~45 ms a GiB: done while it runs again.
  Status st = tracker->Protect();
  if (!st.ok()) return st;
  std::unique_ptr<PreCopy> pc(new PreCopy(root, std::move(*tracker)));
  std::string pagemap = "/proc/" + std::to_string(root) + "/pagemap";
  pc->pagemap_fd_ = open(pagemap.c_str(), O_RDONLY | O_CLOEXEC);
  if (pc->pagemap_fd_ < 0) return Status::Errno("open " + pagemap);
  return pc;
}

Result<uint64_t> PreCopy::BeginRound() {
  RangeSet dirty;
  Result<std::vector<VmaInfo>> maps = ReadMaps(pid_);
  if (!maps.ok()) return maps.status();
  if (rounds_ == 0) {
    for (const VmaInfo& v : *maps) {
      if (IsPreCopied(v)) dirty.Add({v.start, v.end});
    }
  } else {
    Result<std::vector<PageRange>> changed = tracker_.NewMappings();
    if (!changed.ok()) return changed.status();
    Result<std::vector<PageRange>> written = tracker_.Scan();
    if (!written.ok()) return written.status();
    dirty = RangeSet(*changed);
    dirty.Add(RangeSet(*written));
  }
  sent_.Remove(dirty);
  queue_.clear();
  uint64_t bytes = 0;
  for (const VmaInfo& v : *maps) {
    if (!IsPreCopied(v)) continue;
    for (const PageRange& r : dirty.Within({v.start, v.end})) {
      queue_.push_back({r, {v.start, v.end}});
      bytes += r.bytes();
    }
  }
  next_ = 0;
  offset_ = 0;
  ++rounds_;
  return bytes;
}

Result<bool> PreCopy::Pump(uint64_t max_bytes, std::vector<PageBatch>* out) {
  uint64_t given = 0, looked = 0;  // bytes handed out, bytes looked at
  std::vector<uint64_t> pm;
  std::vector<bool> ok;
  std::string buf;
  while (next_ < queue_.size() && given < max_bytes && looked < 16 * max_bytes) {
    const Queued& q = queue_[next_];
    uint64_t addr = q.range.start + offset_;
    uint64_t len = std::min<uint64_t>(q.range.end - addr, kReadChunk);
    uint64_t n = len / kPage;
    pm.resize(n);
    ssize_t got = pread(pagemap_fd_, pm.data(), n * 8, static_cast<off_t>(addr / kPage * 8));
    if (got != static_cast<ssize_t>(n * 8)) return Status::Errno("read /proc/" + std::to_string(pid_) + "/pagemap");
    uint64_t i = 0;
    while (i < n) {
      if (!(pm[i] & (kPmPresent | kPmSwapped))) {
        ++i;
        continue;
      }
      uint64_t j = i;
      while (j < n && (pm[j] & (kPmPresent | kPmSwapped))) ++j;
      uint64_t run_addr = addr + i * kPage;
      buf.resize((j - i) * kPage);
      ReadRunning(pid_, run_addr, buf.data(), buf.size(), &ok);
      // Batches of consecutive non-zero pages that could be read.
      PageBatch* batch = nullptr;
      for (uint64_t k = 0; k < j - i; ++k) {
        const char* page = buf.data() + k * kPage;
        if (!ok[k] || IsZeroPage(page)) {
          batch = nullptr;
          continue;
        }
        uint64_t va = run_addr + k * kPage;
        if (batch == nullptr) {
          out->push_back(PageBatch{va, std::string(), q.piece, rounds_});
          batch = &out->back();
        }
        batch->data.append(page, kPage);
        sent_.Add({va, va + kPage});
        given += kPage;
      }
      i = j;
    }
    looked += len;
    offset_ += len;
    if (q.range.start + offset_ >= q.range.end) {
      ++next_;
      offset_ = 0;
    }
  }
  return next_ >= queue_.size();
}

Result<std::vector<PageRange>> PreCopy::Finish() {
  Result<std::vector<PageRange>> changed = tracker_.NewMappings();
  if (!changed.ok()) return changed.status();
  Result<std::vector<PageRange>> written = tracker_.Scan();
  if (!written.ok()) return written.status();
  sent_.Remove(RangeSet(*changed));
  sent_.Remove(RangeSet(*written));
  tracker_.Stop();
  // Only what is still private anonymous memory (maps, not smaps: smaps
  // walks every page table to count, ~20 ms a GiB, inside the freeze; the
  // dump leaves out mappings that grow down, which only smaps can tell).
  Result<std::vector<VmaInfo>> vmas = ReadMaps(pid_);
  if (!vmas.ok()) return vmas.status();
  RangeSet mapped;
  for (const VmaInfo& v : *vmas) {
    if (IsPreCopied(v)) mapped.Add({v.start, v.end});
  }
  return sent_.Intersect(mapped).ranges();
}

}  // namespace roam
