#include "ckpt/memory.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <set>

#include "ckpt/image_file.h"
#include "ckpt/sysv_ipc.h"
#include "ckpt/uffd_fill.h"
#include "common/file_util.h"
#include "common/unique_fd.h"

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPmPresent = 1ULL << 63;
constexpr uint64_t kPmSwapped = 1ULL << 62;
constexpr uint64_t kPmFile = 1ULL << 61;
constexpr uint64_t kPmGuard = 1ULL << 58;  // MADV_GUARD_INSTALL marker (6.13+)
constexpr uint64_t kPmExclusive = 1ULL << 56;  // mapped by this process only
constexpr uint64_t kPmFrame = (1ULL << 55) - 1;
constexpr int kMapDroppable = 0x08;     // MAP_DROPPABLE (6.11+), newer than these headers
constexpr int kMadvGuardInstall = 102;
constexpr size_t kChunkPages = 256;  // 1 MiB read at a time
constexpr uint64_t kPopulateMin = 16 * kPage;
constexpr int kMadvPopulateWrite = 23;

std::string Who(pid_t pid) { return "pid " + std::to_string(pid); }

// The dump's read buffers (kChunkPages pages each), kept by the thread for
// its next dump: faulting in fresh buffers at each dump costs a few ms. A
// PageSink holds two while it lives (one read into, one being written);
// two are kept.
std::vector<std::unique_ptr<char[]>>& ChunkPool() {
  static thread_local std::vector<std::unique_ptr<char[]>> pool;
  return pool;
}

std::unique_ptr<char[]> TakeChunk() {
  std::vector<std::unique_ptr<char[]>>& pool = ChunkPool();
  if (pool.empty()) return std::unique_ptr<char[]>(new char[kChunkPages * kPage]);
  std::unique_ptr<char[]> b = std::move(pool.back());
  pool.pop_back();
  return b;
}

void GiveChunk(std::unique_ptr<char[]> b) {
  if (b != nullptr && ChunkPool().size() < 2) ChunkPool().push_back(std::move(b));
}

bool IsZeroPage(const char* p) {
  const uint64_t* w = reinterpret_cast<const uint64_t*>(p);
  for (size_t i = 0; i < kPage / 8; i += 8) {
    if ((w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7]) != 0) return false;
  }
  return true;
}

uint32_t ProtOf(const VmaInfo& v) {
  return (v.read ? PROT_READ : 0) | (v.write ? PROT_WRITE : 0) | (v.exec ? PROT_EXEC : 0);
}

pb::ImageFileSum SumOf(const std::string& name, const ImageFileHeader& h) {
  pb::ImageFileSum s;
  s.set_name(name);
  s.set_size(h.header_size + h.payload_size);
  s.set_xxh3(h.payload_xxh3);
  return s;
}

// Writes pages to a payload file and records them as runs. The pages come
// from Buffer(); with a directory sink they are written behind the
// caller's back while it reads the next ones into the other buffer.
class PageSink {
 public:
  PageSink(PayloadFileWriter* out, google::protobuf::RepeatedPtrField<pb::PageRun>* runs) : out_(out), runs_(runs) {}
  ~PageSink() {
    (void)out_->Flush();  // its error went to Add or goes to Finish
    for (std::unique_ptr<char[]>& b : bufs_) GiveChunk(std::move(b));
  }
  PageSink(const PageSink&) = delete;
  PageSink& operator=(const PageSink&) = delete;

  // Runs never cross a mapping boundary. `keep_zero`: the mapping's pages
  // left out would not come back as zeros (a private file mapping gives
  // the file's bytes there), so every page is kept, zero or not.
  void StartMapping(bool keep_zero = false) {
    last_ = nullptr;
    keep_zero_ = keep_zero;
  }
  // Where to read the next pages: not the buffer the last Add handed over.
  char* Buffer() {
    if (bufs_[next_] == nullptr) bufs_[next_] = TakeChunk();
    return bufs_[next_].get();
  }
  // `data` (Buffer()) holds `n` pages that belong at `vaddr`: the non-zero
  // ones are kept (all of them with keep_zero).
  Status Add(uint64_t vaddr, const char* data, size_t n, MemoryStats* stats) {
    std::vector<iovec> iov;  // the kept pages, written in one go below
    uint64_t offset = kPageHeaderSize + out_->payload_size();
    for (size_t i = 0; i < n; ++i) {
      const char* p = data + i * kPage;
      if (!keep_zero_ && IsZeroPage(p)) {
        stats->zero_pages_skipped++;
        continue;
      }
      uint64_t va = vaddr + i * kPage;
      // Pages go to the file one after the other: a run continues as long
      // as the addresses do.
      if (last_ != nullptr && last_->vaddr() + last_->npages() * kPage == va) {
        last_->set_npages(last_->npages() + 1);
      } else {
        last_ = runs_->Add();
        last_->set_vaddr(va);
        last_->set_npages(1);
        last_->set_offset(offset);
      }
      if (!iov.empty() && static_cast<const char*>(iov.back().iov_base) + iov.back().iov_len == p) {
        iov.back().iov_len += kPage;
      } else {
        iov.push_back({const_cast<char*>(p), kPage});
      }
      offset += kPage;
      stats->pages_saved++;
    }
    next_ ^= 1;
    return out_->AppendBehind(iov);
  }

 private:
  PayloadFileWriter* out_;
  google::protobuf::RepeatedPtrField<pb::PageRun>* runs_;
  pb::PageRun* last_ = nullptr;
  bool keep_zero_ = false;
  std::unique_ptr<char[]> bufs_[2];
  int next_ = 0;
};

// Reads [addr, addr + len) of the frozen process.
// `pin`: with process_vm_readv (one copy, the fastest), which pins the
// pages it reads; else through /proc/PID/mem (which also reads what the
// process's protection forbids). Pinning a page shared copy-on-write (since
// a fork) makes the kernel give the process a copy of its own first (Linux
// 5.19+): a dump would unshare every such page of the tree, doubling its
// memory and losing the sharing it records. So pages not mapped by this
// process alone are read through /proc/PID/mem.
Status ReadRemote(pid_t pid, int mem_fd, uint64_t addr, char* buf, size_t len, bool pin) {
  if (pin) {
    iovec local{buf, len}, remote{reinterpret_cast<void*>(addr), len};
    if (process_vm_readv(pid, &local, 1, &remote, 1, 0) == static_cast<ssize_t>(len)) return Status::Ok();
  }
  size_t done = 0;
  while (done < len) {
    ssize_t n = pread(mem_fd, buf + done, len - done, static_cast<off_t>(addr + done));
    if (n <= 0) return Status::Errno("read memory of " + Who(pid) + " at " + std::to_string(addr + done), n < 0 ? errno : EIO);
    done += static_cast<size_t>(n);
  }
  return Status::Ok();
}

// Appends [addr, addr + kPage) to `runs`, merging with the last run.
void AddPage(google::protobuf::RepeatedPtrField<pb::PageRun>* runs, uint64_t addr) {
  if (!runs->empty() && runs->rbegin()->vaddr() + runs->rbegin()->npages() * kPage == addr) {
    runs->rbegin()->set_npages(runs->rbegin()->npages() + 1);
  } else {
    pb::PageRun* r = runs->Add();
    r->set_vaddr(addr);
    r->set_npages(1);
  }
}

// Saves the pages of `v` that only the process has; those in `kept` (the
// restorer holds them already: pre-copy) are not even looked at.
// `parent_pagemap_fd` (>= 0): the parent's pagemap; a page present in both
// with the same frame is not saved but recorded in proc->inherited.
Status DumpPrivatePages(pid_t pid, const VmaInfo& v, pb::Vma* out_vma, bool file_backed, int pagemap_fd, int mem_fd,
                        PageSink& sink, MemoryStats* stats, const std::vector<PageRange>& kept = {},
                        int parent_pagemap_fd = -1, pb::ProcessImage* proc = nullptr,
                        const RangeSet* parent_anon = nullptr) {
  RangeSet todo({{v.start, v.end}});
  for (const PageRange& k : kept) todo.Remove(k);
  // A page the process wrote zeros into (the loader clears the tail of a
  // library's last data page so) must not come back as the file's bytes
  // (a private mapping of /dev/zero has none).
  sink.StartMapping(/*keep_zero=*/file_backed && v.path != "/dev/zero");
  // Reused, never zeroed: a fresh 512 KiB table per mapping cost more than
  // the dump of a small process's pages.
  static thread_local std::vector<uint64_t> pm, ppm;
  if (pm.size() < (1 << 16)) pm.resize(1 << 16);
  const bool cow = parent_pagemap_fd >= 0 && proc != nullptr && parent_anon != nullptr && !file_backed &&
                   parent_anon->Intersects({v.start, v.end});
  if (cow && ppm.size() < pm.size()) ppm.resize(pm.size());
  // Shared with the parent: present in both, the same frame (frames read
  // as 0 without CAP_SYS_ADMIN: then nothing is), not exclusively mapped.
  auto shared = [&](uint64_t g) {
    const uint64_t e = pm[g], pe = ppm[g];
    return cow && (e & kPmPresent) && !(e & kPmExclusive) && (e & kPmFrame) != 0 && (pe & kPmPresent) &&
           (pe & kPmFrame) == (e & kPmFrame);
  };
  auto wanted = [&](uint64_t e) {
    if (e & kPmGuard) return false;
    if (e & kPmSwapped) return true;
    if (!(e & kPmPresent)) return false;
    return !file_backed || !(e & kPmFile);
  };
  for (const PageRange& part : todo.ranges()) {
    for (uint64_t base = part.start; base < part.end; base += pm.size() * kPage) {
      uint64_t count = std::min<uint64_t>(pm.size(), (part.end - base) / kPage);
      if (pread(pagemap_fd, pm.data(), count * 8, static_cast<off_t>(base / kPage * 8)) != static_cast<ssize_t>(count * 8)) {
        return Status::Errno("read /proc/" + std::to_string(pid) + "/pagemap");
      }
      if (cow && pread(parent_pagemap_fd, ppm.data(), count * 8, static_cast<off_t>(base / kPage * 8)) !=
                     static_cast<ssize_t>(count * 8)) {
        return Status::Errno("read the parent's pagemap of pid " + std::to_string(pid));
      }
      if (cow) {
        for (uint64_t g = 0; g < count; ++g) {
          if (!shared(g) || !parent_anon->Contains({base + g * kPage, base + (g + 1) * kPage})) continue;
          AddPage(proc->mutable_inherited(), base + g * kPage);
          pm[g] = 0;  // not saved
        }
      }
      for (uint64_t g = 0; g < count; ++g) {
        if (!(pm[g] & kPmGuard)) continue;
        uint64_t addr = base + g * kPage;
        auto* guards = out_vma->mutable_guards();
        if (!guards->empty() && guards->rbegin()->vaddr() + guards->rbegin()->npages() * kPage == addr) {
          guards->rbegin()->set_npages(guards->rbegin()->npages() + 1);
        } else {
          pb::PageRun* r = guards->Add();
          r->set_vaddr(addr);
          r->set_npages(1);
        }
      }
      uint64_t i = 0;
      while (i < count) {
        if (!wanted(pm[i])) {
          ++i;
          continue;
        }
        // A run of pages all mapped by this process alone, or all not.
        const bool alone = (pm[i] & kPmExclusive) != 0;
        uint64_t j = i;
        while (j < count && j - i < kChunkPages && wanted(pm[j]) && ((pm[j] & kPmExclusive) != 0) == alone) ++j;
        uint64_t addr = base + i * kPage;
        size_t len = (j - i) * kPage;
        char* buf = sink.Buffer();
        Status st = ReadRemote(pid, mem_fd, addr, buf, len, v.read && alone);
        if (!st.ok()) return st;
        st = sink.Add(addr, buf, j - i, stats);
        if (!st.ok()) return st;
        i = j;
      }
    }
  }
  return Status::Ok();
}

// The contents of a shared anonymous object, read through map_files.
}  // namespace

Status DumpSharedObject(const std::string& path, uint64_t id, FileTableBuilder& files, MemoryStats* stats) {
  for (const pb::SharedMemory& s : files.table().shmems()) {
    if (s.id() == id) return Status::Ok();
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Errno("open " + path);
  struct stat sb;
  fstat(fd, &sb);
  pb::SharedMemory* shm = files.table().add_shmems();
  shm->set_id(id);
  shm->set_size(static_cast<uint64_t>(sb.st_size));
  Status st = DescribeMemfd(path, fd, shm);
  if (st.ok()) {
    shm->set_pages_file("shmem-" + std::to_string(id) + ".img");
    st = DumpShmemPages(fd, path, static_cast<uint64_t>(sb.st_size), shm->pages_file(), files, shm->mutable_pages(), stats);
  }
  close(fd);
  return st;
}

Status DumpShmemPages(int fd, const std::string& what, uint64_t size, const std::string& name, FileTableBuilder& files,
                      google::protobuf::RepeatedPtrField<pb::PageRun>* pages, MemoryStats* stats) {
  PayloadFileWriter out;
  Status st = out.Open(files.sink(), name, ImageFileKind::kPages);
  PageSink sink(&out, pages);
  const size_t buf_size = kChunkPages * kPage;
  const off_t end = static_cast<off_t>(size);
  off_t pos = 0;
  while (st.ok() && pos < end) {
    off_t data = lseek(fd, pos, SEEK_DATA);
    if (data < 0) break;  // ENXIO: only holes left
    off_t hole = lseek(fd, data, SEEK_HOLE);
    if (hole < 0 || hole > end) hole = end;
    for (off_t off = data; st.ok() && off < hole; off += static_cast<off_t>(buf_size)) {
      size_t len = static_cast<size_t>(std::min<off_t>(static_cast<off_t>(buf_size), hole - off));
      len = (len + kPage - 1) / kPage * kPage;
      char* buf = sink.Buffer();
      memset(buf, 0, len);
      if (pread(fd, buf, len, off) < 0) st = Status::Errno("read " + what);
      if (st.ok()) st = sink.Add(static_cast<uint64_t>(off), buf, len / kPage, stats);
    }
    pos = hole;
  }
  if (!st.ok()) return st;
  Result<ImageFileHeader> h = out.Finish();
  if (!h.ok()) return h.status();
  files.sums.push_back(SumOf(name, *h));
  return Status::Ok();
}

Status DumpMemory(pid_t pid, const std::vector<VmaInfo>& vmas, FileTableBuilder& files, pb::ProcessImage* proc,
                  MemoryStats* stats, const RangeSet& kept, pid_t cow_parent, const RangeSet& parent_anon) {
  std::string base = "/proc/" + std::to_string(pid);
  int parent_pagemap_fd = -1;
  if (cow_parent > 0) {
    parent_pagemap_fd = open(("/proc/" + std::to_string(cow_parent) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
    if (parent_pagemap_fd < 0) return Status::Errno("open /proc/" + std::to_string(cow_parent) + "/pagemap");
  }
  UniqueFd parent_closer(parent_pagemap_fd);
  int pagemap_fd = open((base + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  if (pagemap_fd < 0) return Status::Errno("open " + base + "/pagemap");
  int mem_fd = open((base + "/mem").c_str(), O_RDONLY | O_CLOEXEC);
  if (mem_fd < 0) {
    close(pagemap_fd);
    return Status::Errno("open " + base + "/mem");
  }
  std::string name = "pages-" + std::to_string(pid) + ".img";
  proc->set_pages_file(name);
  PayloadFileWriter out;
  Status st = out.Open(files.sink(), name, ImageFileKind::kPages);
  PageSink sink(&out, proc->mutable_pages());
  for (const VmaInfo& v : vmas) {
    if (!st.ok()) break;
    if (v.path == "[vsyscall]") continue;
    pb::Vma* out_vma = proc->add_vmas();
    out_vma->set_start(v.start);
    out_vma->set_end(v.end);
    out_vma->set_prot(ProtOf(v));
    out_vma->set_growsdown(v.HasFlag("gd"));
    for (const std::string& f : v.vm_flags) out_vma->add_vm_flags(f);
    out_vma->set_name(v.path + (v.deleted ? " (deleted)" : ""));
    std::string what = Who(pid) + " mapping " + std::to_string(v.start) + " " + v.path;
    if (v.path == "[vdso]") {
      out_vma->set_kind(pb::VMA_VDSO);
    } else if (v.path == "[vvar]") {
      out_vma->set_kind(pb::VMA_VVAR);
    } else if (v.path == "[vvar_vclock]") {
      out_vma->set_kind(pb::VMA_VVAR_VCLOCK);
    } else if (!v.path.empty() && v.path[0] == '[' && v.path != "[heap]" && v.path != "[stack]" &&
               v.path.rfind("[anon:", 0) != 0) {
      st = Status::Error(StatusCode::kCantMove, what + ": this special mapping is not supported");
    } else if (v.shared && v.path.rfind("/SYSV", 0) == 0) {
      // A System V segment: its inode is its shmid; the segment itself is
      // recorded once for the tree (sysv_ipc.cc).
      if (v.HasFlag("ht")) st = Status::Error(StatusCode::kCantMove, what + ": huge-page System V memory is not supported");
      out_vma->set_kind(pb::VMA_SYSV_SHM);
      out_vma->set_sysv_shmid(static_cast<int32_t>(v.inode));
      out_vma->set_pgoff(v.offset);
    } else if (v.shared && (v.path == "/dev/zero" || v.path.empty() || IsMemfdName(v.path))) {
      // Shared anonymous memory, or a memfd mapped shared: the same kind
      // of object (shmem), read once however many map it.
      out_vma->set_kind(pb::VMA_ANON_SHARED);
      out_vma->set_shmem_id(v.inode);
      out_vma->set_pgoff(v.offset);
      char path[128];
      snprintf(path, sizeof(path), "/proc/%d/map_files/%lx-%lx", pid, v.start, v.end);
      st = DumpSharedObject(path, v.inode, files, stats);
    } else if (IsMemfdName(v.path)) {
      st = Status::Error(StatusCode::kCantMove, what + ": a private mapping of a memfd is not supported");
    } else if (v.inode == 0 || v.path.empty() || v.path[0] == '[') {
      out_vma->set_kind(pb::VMA_ANON_PRIVATE);
      // Pre-copy stages no mapping that grows down or is droppable (the
      // restore could not place it as one): such a mapping is saved whole.
      std::vector<PageRange> held =
          v.HasFlag("gd") || v.HasFlag("dp") ? std::vector<PageRange>() : kept.Within({v.start, v.end});
      for (const PageRange& r : held) {
        pb::PageRun* k = proc->add_kept();
        k->set_vaddr(r.start);
        k->set_npages(r.pages());
      }
      // Pages shared with the parent are looked for where the restore can
      // hand them over (staged memory: not a stack or droppable region).
      const bool cow = held.empty() && !v.HasFlag("gd") && !v.HasFlag("dp");
      st = DumpPrivatePages(pid, v, out_vma, false, pagemap_fd, mem_fd, sink, stats, held, cow ? parent_pagemap_fd : -1,
                            proc, &parent_anon);
    } else {
      out_vma->set_kind(v.shared ? pb::VMA_FILE_SHARED : pb::VMA_FILE_PRIVATE);
      out_vma->set_pgoff(v.offset);
      Result<uint32_t> id = files.AddMappedFile(pid, v.start, v.end, v.shared && v.HasFlag("mw"));
      if (!id.ok()) {
        st = id.status();
      } else {
        out_vma->set_file_id(*id);
        if (!v.shared) st = DumpPrivatePages(pid, v, out_vma, true, pagemap_fd, mem_fd, sink, stats);
      }
    }
  }
  close(pagemap_fd);
  close(mem_fd);
  if (!st.ok()) return st;
  Result<ImageFileHeader> h = out.Finish();
  if (!h.ok()) return h.status();
  files.sums.push_back(SumOf(name, *h));
  return Status::Ok();
}

// ---- restore ----------------------------------------------------------------------

std::vector<StagedPiece> PiecesOf(const std::vector<StagedPiece>& pieces, pid_t pid) {
  std::vector<StagedPiece> out;
  for (const StagedPiece& p : pieces) {
    if (p.For(pid)) out.push_back(p);
  }
  return out;
}

uint64_t FindHole(const pb::ProcessImage& proc, uint64_t size,
                  const std::vector<std::pair<uint64_t, uint64_t>>& avoid) {
  std::vector<std::pair<uint64_t, uint64_t>> used(avoid);
  for (const pb::Vma& v : proc.vmas()) {
    // Keep clear of the stack guard gap and of growth below a stack.
    uint64_t lo = v.growsdown() ? (v.start() > (1 << 20) ? v.start() - (1 << 20) : 0) : v.start();
    used.emplace_back(lo, v.end());
  }
  std::sort(used.begin(), used.end());
  // Candidates: just below each used range, from the top of the address
  // space down (where the kernel puts mmaps), above 1 GiB.
  constexpr uint64_t kLow = 1ULL << 30;
  constexpr uint64_t kHigh = 0x7ffffffff000ULL;
  std::vector<uint64_t> candidates;
  for (auto& [lo, hi] : used) {
    if (lo > size + kPage) candidates.push_back((lo - size - kPage) & ~(kPage - 1));
  }
  candidates.push_back(kHigh / 2);
  std::sort(candidates.rbegin(), candidates.rend());
  for (uint64_t c : candidates) {
    if (c < kLow || c + size > kHigh) continue;
    bool clear = true;
    for (auto& [lo, hi] : used) clear = clear && (c + size + kPage <= lo || c >= hi + kPage);
    if (clear) return c;
  }
  return 0;
}

namespace {

bool Droppable(const pb::Vma& v) { return std::find(v.vm_flags().begin(), v.vm_flags().end(), "dp") != v.vm_flags().end(); }

int MapFlagsOf(const pb::Vma& v) {
  int flags = MAP_FIXED;
  switch (v.kind()) {
    // MAP_DROPPABLE (Linux 6.11): private memory the kernel may free under
    // pressure (glibc's getrandom state); it stays so.
    case pb::VMA_ANON_PRIVATE: flags |= (Droppable(v) ? kMapDroppable : MAP_PRIVATE) | MAP_ANONYMOUS; break;
    case pb::VMA_ANON_SHARED: flags |= MAP_SHARED; break;
    case pb::VMA_FILE_PRIVATE: flags |= MAP_PRIVATE; break;
    case pb::VMA_FILE_SHARED: flags |= MAP_SHARED; break;
    default: break;
  }
  if (v.growsdown()) flags |= MAP_GROWSDOWN;
  for (const std::string& f : v.vm_flags()) {
    if (f == "nr") flags |= MAP_NORESERVE;
  }
  return flags;
}

bool IsSpecial(const pb::Vma& v) {
  return v.kind() == pb::VMA_VDSO || v.kind() == pb::VMA_VVAR || v.kind() == pb::VMA_VVAR_VCLOCK;
}

Status UnmapSeed(Tracee& t, const SeedLayout& seed, std::vector<VmaInfo>* specials) {
  Result<std::string> text = ReadFile("/proc/" + std::to_string(t.pid()) + "/maps");
  if (!text.ok()) return text.status();
  Result<std::vector<VmaInfo>> maps = ParseMaps(*text);
  if (!maps.ok()) return maps.status();
  // Everything from the lowest mapping to the highest, holes included, but
  // the helper area, staged pieces (which the kernel may have merged with a
  // neighbour of the same kind) and the special mappings: a few munmap calls
  // instead of one per mapping (a seed made from roamd has a hundred, and an
  // injected call costs ~30 us).
  RangeSet gone;
  for (const VmaInfo& v : *maps) {
    if (v.path == "[vsyscall]") continue;
    if (gone.empty()) gone.Add({v.start, v.end});
    gone.Add({gone.ranges().front().start, v.end});
  }
  for (const VmaInfo& v : *maps) {
    if (v.path == "[vdso]" || v.path == "[vvar]" || v.path == "[vvar_vclock]") {
      specials->push_back(v);
      gone.Remove({v.start, v.end});
    }
  }
  gone.Remove({seed.helper, seed.helper + seed.helper_size});
  for (const StagedPiece& p : seed.staged) gone.Remove({p.at, p.at + p.len});
  for (const PageRange& g : gone.ranges()) {
    Result<long> r = t.SyscallOk("munmap seed mapping", SYS_munmap, g.start, g.bytes());
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

Status MoveSpecials(Tracee& t, const pb::ProcessImage& proc, const SeedLayout& seed,
                    const std::vector<VmaInfo>& current, const std::vector<StagedPiece>& staged) {
  std::vector<std::pair<uint64_t, uint64_t>> avoid{{seed.helper, seed.helper + seed.helper_size}};
  for (const StagedPiece& p : staged) avoid.emplace_back(p.at, p.at + p.len);
  uint64_t total = 0;
  for (const VmaInfo& v : current) {
    avoid.emplace_back(v.start, v.end);
    total += v.end - v.start;
  }
  uint64_t temp = FindHole(proc, total + kPage, avoid);
  if (temp == 0) return Status::Error("no room to move the vDSO");
  struct Move {
    uint64_t from, size, to;
  };
  std::vector<Move> moves;
  std::vector<std::pair<uint64_t, uint64_t>> wanted;
  for (const VmaInfo& v : current) {
    pb::VmaKind kind = v.path == "[vdso]" ? pb::VMA_VDSO : v.path == "[vvar]" ? pb::VMA_VVAR : pb::VMA_VVAR_VCLOCK;
    const pb::Vma* target = nullptr;
    for (const pb::Vma& tv : proc.vmas()) {
      if (tv.kind() == kind) target = &tv;
    }
    if (target == nullptr) {
      Result<long> r = t.SyscallOk("munmap " + v.path, SYS_munmap, v.start, v.end - v.start);
      if (!r.ok()) return r.status();
      continue;
    }
    if (target->end() - target->start() != v.end - v.start) {
      return Status::Error("the image's " + v.path + " has another size than this kernel's: image from another kernel");
    }
    moves.push_back({v.start, v.end - v.start, target->start()});
  }
  // Out of the way first, then into place: old and new ranges may overlap.
  uint64_t at = temp;
  for (Move& m : moves) {
    Result<long> r = t.SyscallOk("mremap vDSO", SYS_mremap, m.from, m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, at);
    if (!r.ok()) return r.status();
    m.from = at;
    at += m.size;
  }
  for (const Move& m : moves) {
    Result<long> r = t.SyscallOk("mremap vDSO", SYS_mremap, m.from, m.size, m.size, MREMAP_MAYMOVE | MREMAP_FIXED, m.to);
    if (!r.ok()) return r.status();
  }
  return Status::Ok();
}

// proc's page runs less the pages of `skip`.
google::protobuf::RepeatedPtrField<pb::PageRun> RunsWithout(const pb::ProcessImage& proc, const RangeSet& skip) {
  google::protobuf::RepeatedPtrField<pb::PageRun> out;
  for (const pb::PageRun& r : proc.pages()) {
    RangeSet left({{r.vaddr(), r.vaddr() + r.npages() * kPage}});
    left.Remove(skip);
    for (const PageRange& part : left.ranges()) {
      pb::PageRun* o = out.Add();
      o->set_vaddr(part.start);
      o->set_npages(part.pages());
      o->set_offset(r.offset() + (part.start - r.vaddr()));
    }
  }
  return out;
}

// Writes what it can of `runs` into the seed's private anonymous mappings
// with UFFDIO_COPY (uffd_fill.h), and puts the rest in `rest`. False if it
// wrote nothing (no userfaultfd here): `rest` is then not filled.
bool CopyAnonRuns(Tracee& t, const pb::ProcessImage& proc, const SeedLayout& seed,
                  const google::protobuf::RepeatedPtrField<pb::PageRun>& runs,
                  google::protobuf::RepeatedPtrField<pb::PageRun>* rest) {
  if (runs.empty()) return false;
  Result<UffdFill> fill = UffdFill::Open(t, seed.pages_fd);
  if (!fill.ok()) return false;
  std::vector<uint64_t> starts;  // of the runs: only mappings with pages are registered
  for (const pb::PageRun& r : runs) starts.push_back(r.vaddr());
  std::sort(starts.begin(), starts.end());
  std::vector<std::pair<uint64_t, uint64_t>> anon;  // registered, in order
  for (const pb::Vma& v : proc.vmas()) {
    if (v.kind() != pb::VMA_ANON_PRIVATE) continue;
    auto first = std::lower_bound(starts.begin(), starts.end(), v.start());
    if (first == starts.end() || *first >= v.end()) continue;
    if (fill->Register(v.start(), v.end())) anon.emplace_back(v.start(), v.end());
  }
  if (anon.empty()) return false;
  for (const pb::PageRun& r : runs) {
    const uint64_t len = r.npages() * kPage;
    auto in = std::upper_bound(anon.begin(), anon.end(), std::make_pair(r.vaddr(), UINT64_MAX));
    uint64_t done = 0;
    if (in != anon.begin() && r.vaddr() + len <= std::prev(in)->second) done = fill->Copy(r.vaddr(), len, r.offset());
    done -= done % kPage;
    if (done == len) continue;
    pb::PageRun* o = rest->Add();
    o->set_vaddr(r.vaddr() + done);
    o->set_npages((len - done) / kPage);
    o->set_offset(r.offset() + done);
  }
  (void)fill->Close();  // the seed's own faults are its own again
  return true;
}

Status FillPages(Tracee& t, const pb::ProcessImage& proc, const SeedLayout& seed) {
  constexpr size_t kMaxIov = 1024;
  constexpr uint64_t kMaxBytes = 1ULL << 30;
  google::protobuf::RepeatedPtrField<pb::PageRun> filtered;
  if (!seed.from_staged.empty()) filtered = RunsWithout(proc, seed.from_staged);
  const auto& image_runs = seed.from_staged.empty() ? proc.pages() : filtered;
  // Private anonymous pages first, each written once (uffd_fill.h); what
  // is left, the classic way: populate, then preadv in the seed.
  google::protobuf::RepeatedPtrField<pb::PageRun> rest;
  const auto& runs = CopyAnonRuns(t, proc, seed, image_runs, &rest) ? rest : image_runs;
  int i = 0;
  while (i < runs.size()) {
    std::vector<iovec> iov;
    uint64_t offset = runs[i].offset();
    uint64_t bytes = 0;
    while (i < runs.size() && iov.size() < kMaxIov && runs[i].offset() == offset + bytes && bytes < kMaxBytes) {
      uint64_t len = runs[i].npages() * kPage;
      iov.push_back({reinterpret_cast<void*>(runs[i].vaddr()), len});
      bytes += len;
      ++i;
    }
    if (iov.empty()) return Status::Error("page runs out of order in the image");
    // Fault large runs in with one call each (MADV_POPULATE_WRITE, 5.14+):
    // far cheaper than a page fault per page inside preadv. Best effort.
    for (const iovec& v : iov) {
      if (v.iov_len >= kPopulateMin) {
        (void)t.Syscall(SYS_madvise, reinterpret_cast<uint64_t>(v.iov_base), v.iov_len, kMadvPopulateWrite);
      }
    }
    uint64_t iov_at = seed.helper + kScratchOffset;
    Status st = t.WriteMemory(iov_at, iov.data(), iov.size() * sizeof(iovec));
    if (!st.ok()) return st;
    Result<long> r = t.SyscallOk("preadv pages", SYS_preadv, static_cast<uint64_t>(seed.pages_fd), iov_at, iov.size(),
                                 offset, 0);
    if (!r.ok()) return r.status();
    if (static_cast<uint64_t>(*r) != bytes) {
      // A short read (large batch): finish the batch one run at a time.
      uint64_t done = static_cast<uint64_t>(*r);
      uint64_t run_off = 0;
      for (const iovec& v : iov) {
        if (run_off + v.iov_len > done) {
          uint64_t skip = done > run_off ? done - run_off : 0;
          uint64_t addr = reinterpret_cast<uint64_t>(v.iov_base) + skip;
          uint64_t left = v.iov_len - skip;
          while (left > 0) {
            Result<long> p = t.SyscallOk("pread pages", SYS_pread64, static_cast<uint64_t>(seed.pages_fd), addr, left,
                                         offset + run_off + (v.iov_len - left));
            if (!p.ok()) return p.status();
            if (*p == 0) return Status::Error("pages file shorter than its runs");
            addr += static_cast<uint64_t>(*p);
            left -= static_cast<uint64_t>(*p);
          }
        }
        run_off += v.iov_len;
      }
    }
  }
  return Status::Ok();
}

int MadviseOf(const std::string& flag) {
  if (flag == "dd") return MADV_DONTDUMP;
  if (flag == "dc") return MADV_DONTFORK;
  if (flag == "wf") return MADV_WIPEONFORK;
  if (flag == "hg") return MADV_HUGEPAGE;
  if (flag == "nh") return MADV_NOHUGEPAGE;
  if (flag == "mg") return MADV_MERGEABLE;
  return -1;
}

bool Overlaps(uint64_t a_lo, uint64_t a_hi, uint64_t b_lo, uint64_t b_hi) { return a_lo < b_hi && b_lo < a_hi; }

// Staged pieces that lie where the image maps something are moved out of
// the way first (their place in the seed was the kernel's choice), before
// anything is mapped or moved there. `specials`: the seed's [vdso] & co,
// still where the seed had them.
Status ParkStaged(Tracee& t, const pb::ProcessImage& proc, const SeedLayout& seed,
                  const std::vector<VmaInfo>& specials, std::vector<StagedPiece>* pieces) {
  constexpr uint64_t kHuge = 2 << 20;
  for (StagedPiece& p : *pieces) {
    bool clash = false;
    for (const pb::Vma& v : proc.vmas()) clash = clash || Overlaps(p.at, p.at + p.len, v.start(), v.end());
    if (!clash) continue;
    std::vector<std::pair<uint64_t, uint64_t>> avoid{{seed.helper, seed.helper + seed.helper_size}};
    for (const StagedPiece& o : *pieces) avoid.emplace_back(o.at, o.at + o.len);
    for (const VmaInfo& v : specials) avoid.emplace_back(v.start, v.end);
    uint64_t hole = FindHole(proc, p.len + kHuge, avoid);
    if (hole == 0) return Status::Error("no room to move staged memory out of the way");
    // Same offset in a 2 MiB page as its destination: huge pages move whole.
    uint64_t to = hole + ((p.vaddr - hole) & (kHuge - 1));
    Result<long> r = t.SyscallOk("mremap staged memory", SYS_mremap, p.at, p.len, p.len, MREMAP_MAYMOVE | MREMAP_FIXED, to);
    if (!r.ok()) return r.status();
    p.at = to;
  }
  return Status::Ok();
}

// Moves each staged piece's parts that fall in private anonymous mappings
// of the image into place (page tables move; nothing is copied), unmaps the
// rest, and zaps every placed page that is neither kept nor about to be
// written from the image: only kept pages keep staged contents.
Status PlaceStaged(Tracee& t, const pb::ProcessImage& proc, const std::vector<StagedPiece>& pieces,
                   const RangeSet& from_staged) {
  RangeSet placed;
  for (const StagedPiece& p : pieces) {
    RangeSet moved;
    for (const pb::Vma& v : proc.vmas()) {
      if (!TakesStaged(v)) continue;
      uint64_t lo = std::max(p.vaddr, v.start()), hi = std::min(p.vaddr + p.len, v.end());
      if (lo >= hi) continue;
      Result<long> r = t.SyscallOk("mremap staged memory into place", SYS_mremap, p.at + (lo - p.vaddr), hi - lo, hi - lo,
                                   MREMAP_MAYMOVE | MREMAP_FIXED, lo);
      if (!r.ok()) return r.status();
      r = t.SyscallOk("mprotect staged memory", SYS_mprotect, lo, hi - lo, v.prot() | PROT_WRITE);
      if (!r.ok()) return r.status();
      moved.Add({lo, hi});
    }
    RangeSet rest({{p.vaddr, p.vaddr + p.len}});
    rest.Remove(moved);
    for (const PageRange& r : rest.ranges()) {
      Result<long> u = t.SyscallOk("munmap staged memory", SYS_munmap, p.at + (r.start - p.vaddr), r.bytes());
      if (!u.ok()) return u.status();
    }
    placed.Add(moved);
  }
  RangeSet kept;
  for (const pb::PageRun& k : proc.kept()) kept.Add({k.vaddr(), k.vaddr() + k.npages() * kPage});
  RangeSet missing = kept;
  missing.Remove(placed);
  if (!missing.empty()) {
    return Status::Error(fmt::format("the image keeps pre-copied pages at 0x{:x} that were not staged here",
                                     missing.ranges().front().start));
  }
  missing = from_staged;
  missing.Remove(placed);
  if (!missing.empty()) {
    return Status::Error(fmt::format("pages shared with another process at 0x{:x} are not in a private mapping",
                                     missing.ranges().front().start));
  }
  kept.Add(from_staged);
  RangeSet drop = placed;
  drop.Remove(kept);
  for (const pb::PageRun& r : proc.pages()) drop.Remove({r.vaddr(), r.vaddr() + r.npages() * kPage});
  for (const PageRange& r : drop.ranges()) {
    Result<long> z = t.SyscallOk("madvise staged memory", SYS_madvise, r.start, r.bytes(), MADV_DONTNEED);
    if (!z.ok()) return z.status();
  }
  return Status::Ok();
}

}  // namespace

Status RestoreMemory(Tracee& t, const pb::ProcessImage& proc, const OpenedFiles& opened, const SeedLayout& seed) {
  if (proc.kept_size() > 0 && seed.staged.empty()) {
    return Status::Error("the image relies on pre-copied memory that is not here (an image of a live migration)");
  }
  std::vector<VmaInfo> specials;
  Status st = UnmapSeed(t, seed, &specials);
  if (!st.ok()) return st;
  std::vector<StagedPiece> staged = seed.staged;
  st = ParkStaged(t, proc, seed, specials, &staged);
  if (!st.ok()) return st;
  st = MoveSpecials(t, proc, seed, specials, staged);
  if (!st.ok()) return st;

  std::set<uint64_t> has_pages;  // VMAs (by start) that get pages written (or staged ones)
  for (const pb::PageRun& r : proc.pages()) {
    for (const pb::Vma& v : proc.vmas()) {
      if (r.vaddr() >= v.start() && r.vaddr() < v.end()) has_pages.insert(v.start());
    }
  }
  for (const StagedPiece& p : staged) {
    for (const pb::Vma& v : proc.vmas()) {
      if (TakesStaged(v) && Overlaps(p.vaddr, p.vaddr + p.len, v.start(), v.end())) has_pages.insert(v.start());
    }
  }
  for (const pb::Vma& v : proc.vmas()) {
    if (IsSpecial(v)) continue;
    if (v.kind() == pb::VMA_SYSV_SHM) {
      // One shmat where the attach began maps the whole segment, which
      // the attach's other VMAs cover (sysv_ipc.cc checked it at the dump);
      // each gets its protection below. Read-only without "mw".
      if (v.pgoff() != 0) continue;
      const int id = seed.sysv != nullptr ? seed.sysv->ShmId(v.sysv_shmid()) : v.sysv_shmid();
      const bool writable = std::find(v.vm_flags().begin(), v.vm_flags().end(), "mw") != v.vm_flags().end();
      Result<long> r = t.SyscallOk("shmat System V segment " + std::to_string(id), SYS_shmat, static_cast<uint64_t>(id),
                                   v.start(), writable ? 0 : SHM_RDONLY);
      if (!r.ok()) return r.status();
      if (static_cast<uint64_t>(*r) != v.start()) return Status::Error("shmat placed a segment elsewhere");
      continue;
    }
    int fd = -1;
    if (v.kind() == pb::VMA_ANON_SHARED) fd = opened.ShmemFd(v.shmem_id());
    if (v.kind() == pb::VMA_FILE_PRIVATE || v.kind() == pb::VMA_FILE_SHARED) fd = opened.FdOf(v.file_id());
    if (v.kind() != pb::VMA_ANON_PRIVATE && fd < 0) return Status::Error("mapping at " + std::to_string(v.start()) + ": its file is not open");
    uint32_t prot = v.prot() | (has_pages.count(v.start()) ? PROT_WRITE : 0);
    uint64_t pgoff = v.kind() == pb::VMA_ANON_PRIVATE ? 0 : v.pgoff();
    Result<long> r = t.SyscallOk("mmap " + v.name() + " at " + std::to_string(v.start()), SYS_mmap, v.start(),
                                 v.end() - v.start(), prot, static_cast<uint64_t>(MapFlagsOf(v)),
                                 static_cast<uint64_t>(fd), pgoff);
    if (!r.ok()) return r.status();
    if (static_cast<uint64_t>(*r) != v.start()) return Status::Error("mmap placed a mapping elsewhere");
  }
  if (!staged.empty()) {
    st = PlaceStaged(t, proc, staged, seed.from_staged);
    if (!st.ok()) return st;
  }
  st = FillPages(t, proc, seed);
  if (!st.ok()) return st;
  for (const pb::Vma& v : proc.vmas()) {
    if (IsSpecial(v)) continue;
    if ((has_pages.count(v.start()) && !(v.prot() & PROT_WRITE)) ||
        (v.kind() == pb::VMA_SYSV_SHM && v.prot() != (PROT_READ | PROT_WRITE))) {
      Result<long> r = t.SyscallOk("mprotect", SYS_mprotect, v.start(), v.end() - v.start(), v.prot());
      if (!r.ok()) return r.status();
    }
    for (const pb::PageRun& g : v.guards()) {
      Result<long> r = t.SyscallOk("madvise MADV_GUARD_INSTALL", SYS_madvise, g.vaddr(), g.npages() * kPage,
                                   kMadvGuardInstall);
      if (!r.ok()) return r.status();
    }
    for (const std::string& f : v.vm_flags()) {
      int advice = MadviseOf(f);
      if (advice < 0) continue;
      Result<long> r = t.SyscallOk("madvise " + f, SYS_madvise, v.start(), v.end() - v.start(), advice);
      if (!r.ok()) return r.status();
    }
  }
  return Status::Ok();
}

Status RestoreMmFields(Tracee& t, const pb::ProcessImage& proc, const OpenedFiles& opened, const SeedLayout& seed) {
  const pb::MmFields& mm = proc.mm();
  struct {
    uint64_t start_code, end_code, start_data, end_data, start_brk, brk, start_stack, arg_start, arg_end, env_start,
        env_end;
    uint64_t auxv;
    uint32_t auxv_size;
    uint32_t exe_fd;
  } map = {mm.start_code(), mm.end_code(), mm.start_data(), mm.end_data(), mm.start_brk(), mm.brk(),
           mm.start_stack(), mm.arg_start(), mm.arg_end(), mm.env_start(), mm.env_end(), 0, 0, 0};
  uint64_t at = seed.helper + kScratchOffset;
  uint64_t auxv_at = at + 256;
  map.auxv = auxv_at;
  map.auxv_size = static_cast<uint32_t>(mm.auxv().size());
  int exe = seed.set_exe ? opened.FdOf(mm.exe_file_id()) : -1;
  map.exe_fd = exe < 0 ? static_cast<uint32_t>(-1) : static_cast<uint32_t>(exe);
  Status st = t.WriteMemory(at, &map, sizeof(map));
  if (st.ok() && !mm.auxv().empty()) st = t.WriteMemory(auxv_at, mm.auxv().data(), mm.auxv().size());
  if (!st.ok()) return st;
  Result<long> r = t.SyscallOk("prctl PR_SET_MM_MAP", SYS_prctl, PR_SET_MM, PR_SET_MM_MAP, at, sizeof(map));
  return r.status();
}

// ---- shared anonymous objects, created in the root seed ---------------------------

namespace {

// A memfd made again: its runs written at their offsets, its exact size.
Status FillMemfd(const pb::SharedMemory& s, const std::string& image_dir, std::map<uint64_t, int>* fds) {
  Result<int> fd = MakeMemfd(s);
  if (!fd.ok()) return fd.status();
  (*fds)[s.id()] = *fd;  // closed by the caller, whatever happens
  const std::string path = image_dir + "/" + s.pages_file();
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return Status::Errno("open " + path);
  Status st;
  std::vector<char> buf;
  for (const pb::PageRun& r : s.pages()) {
    const size_t want = r.npages() * kPage;
    if (r.vaddr() + want > s.size() + kPage) {
      st = Status::Error(path + ": page run beyond the memfd");
      break;
    }
    buf.resize(want);
    if (pread(in, buf.data(), want, static_cast<off_t>(r.offset())) != static_cast<ssize_t>(want) ||
        pwrite(*fd, buf.data(), want, static_cast<off_t>(r.vaddr())) != static_cast<ssize_t>(want)) {
      st = Status::Errno("copy " + path + " into memfd " + s.memfd_name());
      break;
    }
  }
  close(in);
  if (st.ok() && ftruncate(*fd, static_cast<off_t>(s.size())) != 0) st = Status::Errno("size memfd " + s.memfd_name());
  return st;
}

}  // namespace

Status ReadShmemPages(const std::string& path, const google::protobuf::RepeatedPtrField<pb::PageRun>& pages, char* base,
                      size_t size) {
  int in = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  Status st = in < 0 ? Status::Errno("open " + path) : Status::Ok();
  for (const pb::PageRun& r : pages) {
    if (!st.ok()) break;
    if (r.vaddr() + r.npages() * kPage > size) {
      st = Status::Error(path + ": page run beyond the object");
      break;
    }
    ssize_t want = static_cast<ssize_t>(r.npages() * kPage);
    if (pread(in, base + r.vaddr(), static_cast<size_t>(want), static_cast<off_t>(r.offset())) != want) {
      st = Status::Errno("read " + path);
    }
  }
  if (in >= 0) close(in);
  return st;
}

Status OpenSharedMemory(const pb::FileTable& table, const std::string& image_dir, std::map<uint64_t, int>* fds) {
  for (const pb::SharedMemory& s : table.shmems()) {
    if (s.memfd()) {
      Status st = FillMemfd(s, image_dir, fds);
      if (!st.ok()) return st;
      continue;
    }
    size_t size = (s.size() + kPage - 1) / kPage * kPage;
    if (size == 0) size = kPage;
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return Status::Errno("mmap shared memory object");
    Status st = ReadShmemPages(image_dir + "/" + s.pages_file(), s.pages(), static_cast<char*>(p), size);
    char name[128];
    snprintf(name, sizeof(name), "/proc/self/map_files/%lx-%lx", reinterpret_cast<uint64_t>(p),
             reinterpret_cast<uint64_t>(p) + size);
    int fd = st.ok() ? open(name, O_RDWR | O_CLOEXEC) : -1;
    if (st.ok() && fd < 0) st = Status::Errno("open " + std::string(name));
    munmap(p, size);
    if (!st.ok()) return st;
    (*fds)[s.id()] = fd;
  }
  return Status::Ok();
}

}  // namespace roam
