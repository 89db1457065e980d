#include "ckpt/precopy.h"

#include <fcntl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "ckpt/checkpoint.h"
#include "common/file_util.h"

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

namespace {

// Resident anonymous memory of `pid` (statm: resident minus file-backed
// and shared), 0 if it cannot be read.
uint64_t AnonResident(pid_t pid) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(pid) + "/statm");
  unsigned long long size = 0, resident = 0, shared = 0;
  if (!text.ok() || sscanf(text->c_str(), "%llu %llu %llu", &size, &resident, &shared) != 3) return 0;
  return resident > shared ? (resident - shared) * kPage : 0;
}

std::vector<PageRange> PreCopiedRanges(const std::vector<VmaInfo>& maps) {
  std::vector<PageRange> out;
  for (const VmaInfo& v : maps) {
    if (IsPreCopied(v)) out.push_back({v.start, v.end});
  }
  return out;
}

}  // namespace

PreCopy::Member::~Member() {
  if (pagemap_fd >= 0) close(pagemap_fd);
}

PreCopy::~PreCopy() = default;

Result<std::unique_ptr<PreCopy>> PreCopy::Start(pid_t root, bool tree) {
  Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(root);
  if (!frozen.ok()) return frozen.status();
  std::unique_ptr<PreCopy> pc(new PreCopy());
  Status st;
  for (pid_t pid : (*frozen)->pids()) {  // parents first: the root is members_.front()
    const bool is_root = pid == root;
    if (!is_root && (!tree || AnonResident(pid) < kPreCopyMinBytes)) continue;
    Result<std::vector<VmaInfo>> maps = ReadMaps(pid);
    Result<DirtyTracker> tracker = maps.ok() ? (*frozen)->Track(pid, PreCopiedRanges(*maps))
                                             : Result<DirtyTracker>(maps.status());
    if (!tracker.ok()) {
      if (is_root) {
        st = tracker.status();
        break;
      }
      continue;  // goes with the final image
    }
    pc->members_.push_back(std::make_unique<Member>(pid, std::move(*tracker)));
  }
  (*frozen)->Resume();
  frozen->reset();
  if (!st.ok()) return st;
  if (pc->members_.empty() || pc->members_.front()->pid != root) return Status::Error("the root was not frozen");
  // Write-protecting takes ~45 ms a GiB: done while it runs again.
  for (auto& m : pc->members_) {
    Status protect = m->tracker.Protect();
    std::string pagemap = "/proc/" + std::to_string(m->pid) + "/pagemap";
    m->pagemap_fd = protect.ok() ? open(pagemap.c_str(), O_RDONLY | O_CLOEXEC) : -1;
    if (protect.ok() && m->pagemap_fd < 0) protect = Status::Errno("open " + pagemap);
    if (!protect.ok()) {
      st = pc->Lost(*m, protect);
      if (!st.ok()) return st;
    }
  }
  return pc;
}

std::vector<pid_t> PreCopy::pids() const {
  std::vector<pid_t> out;
  for (const auto& m : members_) {
    if (!m->dropped) out.push_back(m->pid);
  }
  return out;
}

Status PreCopy::Lost(Member& m, const Status& why) {
  if (&m == members_.front().get()) return why;
  m.dropped = true;
  m.tracker.Stop();
  m.sent = RangeSet();
  return Status::Ok();
}

Result<uint64_t> PreCopy::BeginRound() {
  queue_.clear();
  uint64_t bytes = 0;
  for (auto& mp : members_) {
    Member& m = *mp;
    if (m.dropped) continue;
    RangeSet dirty;
    Result<std::vector<VmaInfo>> maps = ReadMaps(m.pid);
    Status st = maps.status();
    if (st.ok() && rounds_ == 0) {
      dirty = RangeSet(PreCopiedRanges(*maps));
    } else if (st.ok()) {
      Result<std::vector<PageRange>> changed = m.tracker.NewMappings();
      Result<std::vector<PageRange>> written = changed.ok() ? m.tracker.Scan() : changed;
      st = written.status();
      if (st.ok()) {
        dirty = RangeSet(*changed);
        dirty.Add(RangeSet(*written));
      }
    }
    if (!st.ok()) {
      st = Lost(m, st);
      if (!st.ok()) return st;
      continue;
    }
    m.sent.Remove(dirty);
    for (const VmaInfo& v : *maps) {
      if (!IsPreCopied(v)) continue;
      for (const PageRange& r : dirty.Within({v.start, v.end})) {
        queue_.push_back({&m, r, {v.start, v.end}});
        bytes += r.bytes();
      }
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
    Member& m = *q.member;
    if (m.dropped) {
      ++next_;
      offset_ = 0;
      continue;
    }
    uint64_t addr = q.range.start + offset_;
    uint64_t len = std::min<uint64_t>(q.range.end - addr, kReadChunk);
    uint64_t n = len / kPage;
    pm.resize(n);
    ssize_t got = pread(m.pagemap_fd, pm.data(), n * 8, static_cast<off_t>(addr / kPage * 8));
    if (got != static_cast<ssize_t>(n * 8)) {
      Status st = Lost(m, Status::Errno("read /proc/" + std::to_string(m.pid) + "/pagemap"));
      if (!st.ok()) return st;
      continue;
    }
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
      ReadRunning(m.pid, run_addr, buf.data(), buf.size(), &ok);
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
          out->push_back(PageBatch{m.pid, va, std::string(), q.piece, rounds_});
          batch = &out->back();
        }
        batch->data.append(page, kPage);
        m.sent.Add({va, va + kPage});
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

Result<KeptPages> PreCopy::Finish() {
  KeptPages kept;
  for (auto& mp : members_) {
    Member& m = *mp;
    if (m.dropped) continue;
    Result<std::vector<PageRange>> changed = m.tracker.NewMappings();
    Result<std::vector<PageRange>> written = changed.ok() ? m.tracker.Scan() : changed;
    // Only what is still private anonymous memory (maps, not smaps: smaps
    // walks every page table to count, ~20 ms a GiB, inside the freeze; the
    // dump leaves out mappings that grow down, which only smaps can tell).
    Result<std::vector<VmaInfo>> vmas = written.ok() ? ReadMaps(m.pid) : Result<std::vector<VmaInfo>>(written.status());
    m.tracker.Stop();
    if (!vmas.ok()) {
      Status st = Lost(m, vmas.status());
      if (!st.ok()) return st;
      continue;
    }
    m.sent.Remove(RangeSet(*changed));
    m.sent.Remove(RangeSet(*written));
    kept[m.pid] = m.sent.Intersect(RangeSet(PreCopiedRanges(*vmas))).ranges();
  }
  return kept;
}

}  // namespace roam
