// Shared copy-on-write pages at the restore (cow_share.h).
#include "ckpt/cow_share.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>

#include <fmt/format.h>

namespace roam {

namespace {

constexpr uint64_t kPage = 4096;

RangeSet RunsOf(const google::protobuf::RepeatedPtrField<pb::PageRun>& runs) {
  RangeSet out;
  for (const pb::PageRun& r : runs) out.Add({r.vaddr(), r.vaddr() + r.npages() * kPage});
  return out;
}

// The process's private anonymous mappings that staged memory can become.
std::vector<PageRange> AnonMappings(const pb::ProcessImage& p) {
  std::vector<PageRange> out;
  for (const pb::Vma& v : p.vmas()) {
    if (TakesStaged(v)) out.push_back({v.start(), v.end()});
  }
  return out;
}

RangeSet AnonOf(const pb::ProcessImage& p) { return RangeSet(AnonMappings(p)); }

}  // namespace

CowStage::~CowStage() { Release(); }

void CowStage::Release() {
  for (auto [at, len] : regions_) munmap(at, len);
  regions_.clear();
}

RangeSet CowStage::FromStaged(pid_t pid) const {
  auto it = from_.find(pid);
  return it == from_.end() ? RangeSet() : it->second;
}

Status CowStage::Stage(const Image& image) {
  // Where inherited pages are, and where their parents have them.
  RangeSet regions;
  for (const pb::ProcessImage& p : image.procs) {
    if (p.inherited_size() == 0) continue;
    const pb::ProcessImage* parent = image.Find(p.ppid());
    if (parent == nullptr || parent == &p) {
      return Status::Error(fmt::format("process {} shares pages with a parent outside the image", p.pid()));
    }
    const RangeSet inherited = RunsOf(p.inherited());
    RangeSet outside = inherited;
    outside.Remove(AnonOf(*parent));
    if (!outside.empty()) {
      return Status::Error(fmt::format("process {} shares pages at 0x{:x} its parent has no private mapping for",
                                       p.pid(), outside.ranges().front().start));
    }
    for (const PageRange& v : AnonMappings(*parent)) {
      if (inherited.Intersects(v)) regions.Add(v);
    }
  }
  if (regions.empty()) return Status::Ok();
  // Whole mappings: grow the regions over every mapping that overlaps one.
  for (bool grew = true; grew;) {
    grew = false;
    for (const pb::ProcessImage& p : image.procs) {
      for (const PageRange& v : AnonMappings(p)) {
        if (regions.Intersects(v) && !regions.Contains(v)) {
          regions.Add(v);
          grew = true;
        }
      }
    }
  }
  for (const PageRange& r : regions.ranges()) {
    // Untouched here: it costs nothing until a seed writes its pages.
    void* at = mmap(nullptr, r.bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (at == MAP_FAILED) return Status::Errno(fmt::format("map {} bytes for shared pages", r.bytes()));
    regions_.emplace_back(at, r.bytes());
    StagedPiece piece;
    piece.vaddr = r.start;
    piece.len = r.bytes();
    piece.at = reinterpret_cast<uint64_t>(at);
    for (const pb::ProcessImage& p : image.procs) {
      RangeSet mine = AnonOf(p).Intersect(RangeSet({r}));
      if (mine.empty()) continue;
      piece.also.push_back(p.pid());
      from_[p.pid()].Add(mine);
    }
    piece.pid = piece.also.front();
    pieces_.push_back(std::move(piece));
  }
  return Status::Ok();
}

Status PrepareSharedRegions(const pb::ProcessImage& proc, const std::vector<StagedPiece>& pieces, int pages_fd) {
  const RangeSet anon = AnonOf(proc);
  const RangeSet inherited = RunsOf(proc.inherited());
  for (const StagedPiece& piece : pieces) {
    if (!piece.For(proc.pid())) continue;
    const RangeSet mine = anon.Intersect(RangeSet({{piece.vaddr, piece.vaddr + piece.len}}));
    char* base = reinterpret_cast<char*>(piece.at) - piece.vaddr;  // base + vaddr: the copy of vaddr
    // Its own pages.
    RangeSet zero = mine;
    zero.Remove(inherited);
    for (const pb::PageRun& r : proc.pages()) {
      const RangeSet run({{r.vaddr(), r.vaddr() + r.npages() * kPage}});
      for (const PageRange& part : run.Intersect(mine).ranges()) {
        const ssize_t want = static_cast<ssize_t>(part.bytes());
        if (pread(pages_fd, base + part.start, part.bytes(), static_cast<off_t>(r.offset() + (part.start - r.vaddr()))) !=
            want) {
          return Status::Errno(fmt::format("read pages of pid {} at 0x{:x}", proc.pid(), part.start));
        }
        zero.Remove(part);
      }
    }
    // What it neither saved nor shares with its parent is empty.
    for (const PageRange& part : zero.ranges()) {
      if (madvise(base + part.start, part.bytes(), MADV_DONTNEED) != 0) {
        return Status::Errno(fmt::format("empty pages of pid {} at 0x{:x}", proc.pid(), part.start));
      }
    }
  }
  return Status::Ok();
}

}  // namespace roam
