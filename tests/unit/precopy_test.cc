// Pre-copy's pure parts (RangeSet, the convergence rule, which mappings are
// sent) and its two halves on real processes: PreCopy on a child that keeps
// writing random pages while it is copied (every page it says is kept must
// equal, at the freeze, what was handed out: checked against the frozen
// memory, and shown to fail when a batch is lost), the same on a tree whose
// writer is a grandchild and where a big process exits midway, and
// PageStage (the future root, created with a chosen PID, takes pages into
// pieces of its own, for itself and for the tree's other processes).
#include "ckpt/precopy.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <functional>
#include <map>
#include <string>

#include "ckpt/checkpoint.h"
#include "ckpt/page_stage.h"
#include "test_child.h"

namespace roam {
namespace {

constexpr uint64_t kPage = 4096;

// ---- RangeSet -----------------------------------------------------------------------

TEST(RangeSet, AddMergesOverlappingAndTouching) {
  RangeSet s;
  s.Add({0x1000, 0x3000});
  s.Add({0x5000, 0x6000});
  s.Add({0x3000, 0x4000});  // touches the first
  EXPECT_EQ(s.ranges(), (std::vector<PageRange>{{0x1000, 0x4000}, {0x5000, 0x6000}}));
  s.Add({0x2000, 0x5800});  // bridges both
  EXPECT_EQ(s.ranges(), (std::vector<PageRange>{{0x1000, 0x6000}}));
  s.Add({0x9000, 0x9000});  // empty: nothing
  EXPECT_EQ(s.bytes(), 0x5000u);
}

TEST(RangeSet, RemoveSplitsAndTrims) {
  RangeSet s({{0x1000, 0x9000}});
  s.Remove({0x3000, 0x4000});
  EXPECT_EQ(s.ranges(), (std::vector<PageRange>{{0x1000, 0x3000}, {0x4000, 0x9000}}));
  s.Remove({0x0, 0x2000});
  s.Remove({0x8000, 0xa000});
  EXPECT_EQ(s.ranges(), (std::vector<PageRange>{{0x2000, 0x3000}, {0x4000, 0x8000}}));
  s.Remove({0x2000, 0x8000});
  EXPECT_TRUE(s.empty());
}

TEST(RangeSet, ContainsWithinIntersect) {
  RangeSet s({{0x1000, 0x3000}, {0x5000, 0x8000}});
  EXPECT_TRUE(s.Contains({0x1000, 0x3000}));
  EXPECT_TRUE(s.Contains({0x6000, 0x7000}));
  EXPECT_FALSE(s.Contains({0x2000, 0x6000}));  // crosses the hole
  EXPECT_TRUE(s.Contains({0x4000, 0x4000}));   // empty
  EXPECT_TRUE(s.Intersects({0x2000, 0x6000}));
  EXPECT_FALSE(s.Intersects({0x3000, 0x5000}));
  EXPECT_EQ(s.Within({0x2000, 0x6000}), (std::vector<PageRange>{{0x2000, 0x3000}, {0x5000, 0x6000}}));
  RangeSet other({{0x0, 0x2000}, {0x7000, 0x9000}});
  EXPECT_EQ(s.Intersect(other).ranges(), (std::vector<PageRange>{{0x1000, 0x2000}, {0x7000, 0x8000}}));
}

// ---- the policy ---------------------------------------------------------------------

TEST(PreCopyPolicy, StopsWhenSmallNotShrinkingOrTooMany) {
  PreCopyPolicy p;
  const uint64_t MiB = 1 << 20;
  EXPECT_FALSE(PreCopyConverged(p, 1, 64 * MiB, 8 * MiB));  // after the whole round: go on
  EXPECT_TRUE(PreCopyConverged(p, 1, 64 * MiB, 1 * MiB));   // small enough for the frozen copy
  EXPECT_FALSE(PreCopyConverged(p, 2, 8 * MiB, 4 * MiB));   // shrinking well
  EXPECT_TRUE(PreCopyConverged(p, 2, 8 * MiB, 7 * MiB));    // not shrinking: freeze now
  EXPECT_FALSE(PreCopyConverged(p, 1, 8 * MiB, 9 * MiB));   // the first round says nothing of the rate
  EXPECT_TRUE(PreCopyConverged(p, p.max_rounds, 64 * MiB, 8 * MiB));
}

TEST(PreCopy, SendsPrivateWritableAnonymousMappingsOnly) {
  auto vma = [](std::string path, bool write, bool shared, uint64_t inode) {
    VmaInfo v;
    v.start = 0x1000;
    v.end = 0x2000;
    v.read = true;
    v.write = write;
    v.shared = shared;
    v.inode = inode;
    v.path = std::move(path);
    return v;
  };
  EXPECT_TRUE(IsPreCopied(vma("", true, false, 0)));
  EXPECT_TRUE(IsPreCopied(vma("[heap]", true, false, 0)));
  EXPECT_TRUE(IsPreCopied(vma("[anon:arena]", true, false, 0)));
  EXPECT_FALSE(IsPreCopied(vma("[stack]", true, false, 0)));
  EXPECT_FALSE(IsPreCopied(vma("", false, false, 0)));                  // read-only
  EXPECT_FALSE(IsPreCopied(vma("/dev/zero", true, true, 5)));           // shared
  EXPECT_FALSE(IsPreCopied(vma("/usr/lib/libc.so.6", true, false, 7)));  // file
  VmaInfo gd = vma("", true, false, 0);
  gd.vm_flags = {"rd", "wr", "gd"};
  EXPECT_FALSE(IsPreCopied(gd));  // grows down
}

// ---- PreCopy on a process that keeps writing ------------------------------------------

// A child that writes 4 random pages of a 32 MiB buffer every ~250 us, and
// maps and unmaps a small buffer now and then, until killed.
pid_t StartWriter() {
  pid_t pid = fork();
  if (pid != 0) return pid;
  constexpr size_t kSize = 32 << 20;
  char* buf = static_cast<char*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t off = 0; off < kSize; off += kPage) memcpy(buf + off, &off, sizeof(off));
  uint64_t x = 7, n = 0;
  for (;;) {
    for (int k = 0; k < 4; ++k) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t off = (x >> 17) % (kSize / kPage) * kPage + (x & 0xff) * 8;
      memcpy(buf + off, &x, sizeof(x));
    }
    if (++n % 50 == 0) {
      void* p = mmap(nullptr, 16 * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      memset(p, static_cast<int>(n), 16 * kPage);
      if (n % 100 == 0) munmap(p, 16 * kPage);
    }
    usleep(200);
  }
}

struct Copied {
  int rounds = 0;
  uint64_t kept_pages = 0, stale = 0, never_sent = 0;
  std::map<pid_t, uint64_t> kept_by_pid;  // pages
  std::vector<pid_t> tracked;             // PreCopy::pids() after Start
};

// Pre-copies `pid` into a map (if `drop_one`, losing the first whole-sized
// batch of the first round, to show the check can fail), freezes it, and
// compares every kept page. The lost batch must be a big one: a small batch
// may hold only pages the child writes all the time (its TLS, its heap), and
// those are sent again in the next round, so losing them proves nothing.
Copied PreCopyAndCheck(pid_t pid, bool drop_one, const std::function<void()>& after_first_round = nullptr) {
  Copied c;
  Result<std::unique_ptr<PreCopy>> pc = PreCopy::Start(pid);
  EXPECT_TRUE(pc.ok()) << pc.status().message();
  if (!pc.ok()) return c;
  c.tracked = (*pc)->pids();
  std::map<std::pair<pid_t, uint64_t>, std::string> target;
  PreCopyPolicy policy;
  uint64_t last = 0;
  constexpr size_t kBatch = 1 << 20;
  bool dropped = false;
  for (int round = 0;; ++round) {
    Result<uint64_t> next = (*pc)->BeginRound();
    EXPECT_TRUE(next.ok()) << next.status().message();
    if (!next.ok() || (round > 0 && PreCopyConverged(policy, round, last, *next))) break;
    last = 0;
    for (bool done = false; !done;) {
      std::vector<PageBatch> out;
      Result<bool> r = (*pc)->Pump(kBatch, &out);
      EXPECT_TRUE(r.ok()) << r.status().message();
      if (!r.ok()) return c;
      done = *r;
      for (const PageBatch& b : out) {
        last += b.data.size();
        if (drop_one && !dropped && round == 0 && b.data.size() >= kBatch / 2) {
          dropped = true;  // lost on the way
          continue;
        }
        for (size_t o = 0; o < b.data.size(); o += kPage) target[{b.pid, b.vaddr + o}] = b.data.substr(o, kPage);
      }
      usleep(2000);  // the link's pace: the child writes meanwhile
    }
    if (round == 0 && after_first_round) after_first_round();
  }
  Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(pid);
  EXPECT_TRUE(frozen.ok()) << frozen.status().message();
  if (!frozen.ok()) return c;
  Result<KeptPages> kept = (*pc)->Finish();
  EXPECT_TRUE(kept.ok()) << kept.status().message();
  c.rounds = (*pc)->rounds();
  char page[kPage];
  for (const auto& [owner, ranges] : kept.ok() ? *kept : KeptPages()) {
    for (const PageRange& r : ranges) {
      for (uint64_t a = r.start; a < r.end; a += kPage) {
        ++c.kept_pages;
        ++c.kept_by_pid[owner];
        iovec l{page, kPage}, rem{reinterpret_cast<void*>(a), kPage};
        auto it = target.find({owner, a});
        if (it == target.end()) {
          ++c.never_sent;
        } else if (process_vm_readv(owner, &l, 1, &rem, 1, 0) != kPage ||
                   memcmp(page, it->second.data(), kPage) != 0) {
          ++c.stale;
        }
      }
    }
  }
  (*frozen)->Resume();
  return c;
}

void KillChild(pid_t pid) {
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

TEST(PreCopy, KeptPagesEqualWhatWasSentWhileItWrote) {
  pid_t pid = StartWriter();
  usleep(300000);
  for (int rep = 0; rep < 3; ++rep) {  // each a new tracker on the same process
    Copied c = PreCopyAndCheck(pid, false);
    EXPECT_GE(c.rounds, 2);
    EXPECT_GT(c.kept_pages, 2000u);  // much of 32 MiB is not written during a few rounds
    EXPECT_EQ(c.stale, 0u) << "rep " << rep;
    EXPECT_EQ(c.never_sent, 0u) << "rep " << rep;
  }
  KillChild(pid);
}

TEST(PreCopy, TheCheckFailsWhenABatchIsLost) {
  pid_t pid = StartWriter();
  usleep(300000);
  Copied c = PreCopyAndCheck(pid, true);
  // Of the >= 128 pages lost, the child rewrites a few before the freeze
  // (4 random pages of 8192 every ~250 us); the rest were never sent.
  EXPECT_GT(c.never_sent, 64u);
  KillChild(pid);
}

// A tree: a parent (the root), a child that writes 8 MiB and is killed
// after the first round, a child (between the root and the work) that
// forks the writer and execs `sleep`. The writer's pages are pre-copied and kept
// right; the exited child is dropped, not an error; the waiting child,
// small, is not tracked.
pid_t StartTree(pid_t* writer, pid_t* quitter, pid_t* middle) {
  int from_root[2], from_middle[2];
  EXPECT_EQ(pipe(from_root), 0);
  EXPECT_EQ(pipe(from_middle), 0);
  pid_t root = fork();
  if (root == 0) {
    pid_t q = fork();
    if (q == 0) {
      char* buf = static_cast<char*>(mmap(nullptr, 8 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
      memset(buf, 'q', 8 << 20);
      for (;;) pause();
    }
    pid_t m = fork();
    if (m == 0) {
      pid_t w = StartWriter();
      (void)!write(from_middle[1], &w, sizeof(w));
      execl("/bin/sleep", "sleep", "1000", nullptr);  // small, as a shell between the root and the work
      _exit(127);
    }
    pid_t qm[2] = {q, m};
    (void)!write(from_root[1], qm, sizeof(qm));
    waitpid(q, nullptr, 0);  // no zombie in the tree at the freeze
    for (;;) pause();
  }
  close(from_root[1]);
  close(from_middle[1]);
  pid_t qm[2] = {};
  EXPECT_EQ(read(from_root[0], qm, sizeof(qm)), static_cast<ssize_t>(sizeof(qm)));
  EXPECT_EQ(read(from_middle[0], writer, sizeof(*writer)), static_cast<ssize_t>(sizeof(*writer)));
  close(from_root[0]);
  close(from_middle[0]);
  *quitter = qm[0];
  *middle = qm[1];
  return root;
}

TEST(PreCopy, TheTreesOtherProcessesArePreCopiedToo) {
  pid_t writer, quitter, middle;
  pid_t root = StartTree(&writer, &quitter, &middle);
  usleep(300000);
  Copied c = PreCopyAndCheck(root, false, [quitter] {
    kill(quitter, SIGKILL);  // the root reaps it
    while (kill(quitter, 0) == 0) usleep(1000);
  });
  EXPECT_EQ(c.stale, 0u);
  EXPECT_EQ(c.never_sent, 0u);
  EXPECT_GT(c.kept_by_pid[writer], 2000u);  // of its 8192 pages
  EXPECT_EQ(c.kept_by_pid.count(quitter), 0u) << "gone during pre-copy: nothing of it is kept";
  EXPECT_NE(std::find(c.tracked.begin(), c.tracked.end(), quitter), c.tracked.end()) << "8 MiB: tracked at first";
  EXPECT_EQ(std::find(c.tracked.begin(), c.tracked.end(), middle), c.tracked.end()) << "small: not tracked";
  ASSERT_FALSE(c.tracked.empty());
  EXPECT_EQ(c.tracked.front(), root);
  kill(writer, SIGKILL);
  kill(middle, SIGKILL);
  KillChild(root);
}

// ---- PageStage ----------------------------------------------------------------------

// A PID that was just free (a child's, reaped). Another process may take it
// meanwhile: the caller retries.
pid_t FreePid() {
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  waitpid(pid, nullptr, 0);
  return pid;
}

TEST(PageStage, TakesPagesIntoPiecesAtTheChosenPid) {
  std::unique_ptr<PageStage> stage;
  for (int i = 0; i < 5 && !stage; ++i) {
    Result<std::unique_ptr<PageStage>> s = PageStage::Create(FreePid());
    if (s.ok()) stage = std::move(*s);
  }
  ASSERT_TRUE(stage);
  const uint64_t base = 0x7f0000000000ULL;  // an address of the future process
  std::string data(3 * kPage, 'x');
  data[kPage] = 'y';
  ASSERT_TRUE(stage->Write(0, base + 2 * kPage, data.data(), data.size(), {base, base + 16 * kPage}).ok());
  ASSERT_EQ(stage->pieces().size(), 1u);  // the whole mapping, staged at once
  const StagedPiece p = stage->pieces()[0];  // a copy: the writes below grow the vector
  EXPECT_EQ(p.vaddr, base);
  EXPECT_EQ(p.len, 16 * kPage);
  EXPECT_EQ(p.pid, stage->pid());
  EXPECT_EQ((p.at - p.vaddr) % (2 << 20), 0u);  // huge pages can move whole
  // A later write replaces; one beyond the piece gets a piece of its own.
  ASSERT_TRUE(stage->Write(0, base + 3 * kPage, "z", 1, {base, base + 16 * kPage}).ok());
  ASSERT_TRUE(stage->Write(0, base + 20 * kPage, data.data(), kPage, {base + 20 * kPage, base + 21 * kPage}).ok());
  EXPECT_EQ(stage->pieces().size(), 2u);
  // Another process of the tree, at the same address: a piece of its own.
  ASSERT_TRUE(stage->Write(4242, base + 2 * kPage, "w", 1, {base, base + 16 * kPage}).ok());
  ASSERT_EQ(stage->pieces().size(), 3u);
  const StagedPiece other = stage->pieces()[2];
  EXPECT_EQ(other.pid, 4242);
  EXPECT_EQ(other.vaddr, base);
  EXPECT_NE(other.at, stage->pieces()[0].at);
  EXPECT_EQ(PiecesOf(stage->pieces(), 4242).size(), 1u);
  EXPECT_EQ(PiecesOf(stage->pieces(), stage->pid()).size(), 2u);
  char got[3 * kPage];
  iovec l{got, sizeof(got)}, r{reinterpret_cast<void*>(p.at + 2 * kPage), sizeof(got)};
  ASSERT_EQ(process_vm_readv(stage->pid(), &l, 1, &r, 1, 0), static_cast<ssize_t>(sizeof(got)));
  EXPECT_EQ(got[0], 'x');
  EXPECT_EQ(got[kPage], 'z');
  EXPECT_EQ(got[kPage + 1], 'x');
  pid_t pid = stage->pid();
  stage.reset();  // killed and reaped: the PID is free again
  EXPECT_NE(kill(pid, 0), 0);
}

// A deputy at home: a process of its own reserved room, and the stage
// carves pieces from it (each at its 2 MiB offset) and writes into them;
// it never kills the process, and a reservation too small is an error.
TEST(PageStage, AdoptedStagesIntoTheProcesssReservation) {
  constexpr uint64_t kReserve = 8 << 20;
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t child = fork();
  if (child == 0) {
    void* p = mmap(nullptr, kReserve, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    uint64_t at = p == MAP_FAILED ? 0 : reinterpret_cast<uint64_t>(p);
    (void)!write(ready[1], &at, sizeof(at));
    pause();
    _exit(0);
  }
  close(ready[1]);
  uint64_t at = 0;
  ASSERT_EQ(read(ready[0], &at, sizeof(at)), static_cast<ssize_t>(sizeof(at)));
  close(ready[0]);
  ASSERT_NE(at, 0u);
  std::unique_ptr<PageStage> stage = PageStage::Adopt(child, at, kReserve);
  const uint64_t base = 0x7f0000000000ULL + 5 * kPage;
  ASSERT_TRUE(stage->Write(0, base, "abc", 3, {base, base + 4 * kPage}).ok());
  ASSERT_EQ(stage->pieces().size(), 1u);
  const StagedPiece& p = stage->pieces()[0];
  EXPECT_GE(p.at, at);
  EXPECT_LE(p.at + p.len, at + kReserve);
  EXPECT_EQ((p.at - p.vaddr) % (2 << 20), 0u);
  char got[3];
  iovec l{got, sizeof(got)}, r{reinterpret_cast<void*>(p.at), sizeof(got)};
  ASSERT_EQ(process_vm_readv(child, &l, 1, &r, 1, 0), 3);
  EXPECT_EQ(std::string(got, 3), "abc");
  // 8 MiB less what was carved cannot hold another 8 MiB mapping.
  Status st = stage->Write(0, base + (64 << 20), "d", 1, {base + (64 << 20), base + (72 << 20)});
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("too little room"), std::string::npos) << st.message();
  stage.reset();
  EXPECT_EQ(kill(child, 0), 0);  // not the stage's to kill
  KillChild(child);
}

TEST(PageStage, RefusesATakenPid) {
  Result<std::unique_ptr<PageStage>> s = PageStage::Create(getpid());
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("is taken"), std::string::npos) << s.status().message();
}

}  // namespace
}  // namespace roam
