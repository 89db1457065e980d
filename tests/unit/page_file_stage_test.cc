// PageFileStage (a move home's pre-copy target): a child keeps writing
// while its pages are pre-copied into the stage; it is then frozen and
// dumped with the kept pages left out, and Fold() makes them part of the
// image. Every page the folded image gives the process must equal the
// frozen memory, and the image must load and check. Losing one batch on
// the way must make Fold() fail rather than give a wrong image.
#include "ckpt/page_file_stage.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "ckpt/checkpoint.h"
#include "ckpt/image.h"
#include "ckpt/image_file.h"
#include "ckpt/precopy.h"
#include "test_child.h"

namespace roam {
namespace {

constexpr uint64_t kPage = 4096;

// A child that writes random pages of a 16 MiB buffer every ~200 us, until
// killed. Its fds are /dev/null only.
pid_t StartWriter() {
  pid_t pid = fork();
  if (pid != 0) return pid;
  OnlyDevNullFds();
  constexpr size_t kSize = 16 << 20;
  char* buf = static_cast<char*>(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  for (size_t off = 0; off < kSize; off += kPage) memcpy(buf + off, &off, sizeof(off));
  uint64_t x = 11;
  for (;;) {
    for (int k = 0; k < 4; ++k) {
      x = x * 6364136223846793005ULL + 1442695040888963407ULL;
      size_t off = (x >> 17) % (kSize / kPage) * kPage + (x & 0xff) * 8;
      memcpy(buf + off, &x, sizeof(x));
    }
    usleep(200);
  }
}

struct Outcome {
  Status fold;
  uint64_t pages = 0, wrong = 0, staged_bytes = 0;
  bool loads = false;
};

// Pre-copies `pid` into a stage in `dir` (losing the first big batch if
// `lose_one`), freezes and dumps it there, folds, and compares.
Outcome PreCopyFoldAndCheck(pid_t pid, const std::string& dir, bool lose_one) {
  Outcome o;
  Result<std::unique_ptr<PageFileStage>> stage = PageFileStage::Create(dir);
  EXPECT_TRUE(stage.ok()) << stage.status().message();
  Result<std::unique_ptr<PreCopy>> pc = PreCopy::Start(pid);
  EXPECT_TRUE(pc.ok()) << pc.status().message();
  if (!stage.ok() || !pc.ok()) return o;
  PreCopyPolicy policy;
  uint64_t last = 0;
  bool lost = false;
  for (int round = 0;; ++round) {
    Result<uint64_t> next = (*pc)->BeginRound();
    EXPECT_TRUE(next.ok());
    if (!next.ok() || (round > 0 && PreCopyConverged(policy, round, last, *next))) break;
    last = 0;
    for (bool done = false; !done;) {
      std::vector<PageBatch> out;
      Result<bool> r = (*pc)->Pump(1 << 20, &out);
      EXPECT_TRUE(r.ok());
      if (!r.ok()) return o;
      done = *r;
      for (const PageBatch& b : out) {
        last += b.data.size();
        if (lose_one && !lost && round == 0 && b.data.size() >= (512u << 10)) {
          lost = true;
          continue;
        }
        Status st = (*stage)->Write(b.vaddr, b.data.data(), b.data.size());
        EXPECT_TRUE(st.ok()) << st.message();
      }
      usleep(2000);
    }
  }
  o.staged_bytes = (*stage)->bytes();
  Result<std::unique_ptr<FrozenTree>> frozen = FrozenTree::Freeze(pid);
  EXPECT_TRUE(frozen.ok()) << frozen.status().message();
  if (!frozen.ok()) return o;
  Result<std::vector<PageRange>> kept = (*pc)->Finish();
  EXPECT_TRUE(kept.ok());
  DumpOptions options;
  if (kept.ok()) options.kept[pid] = *kept;
  Result<std::unique_ptr<DirImageSink>> sink = DirImageSink::Open(dir, false);
  EXPECT_TRUE(sink.ok());
  Result<CheckpointReport> r = (*frozen)->Dump(**sink, options);
  EXPECT_TRUE(r.ok()) << r.status().message();
  EXPECT_TRUE((*frozen)->Seal().ok());
  o.fold = (*stage)->Fold(pid);
  if (o.fold.ok()) {
    Result<Image> image = LoadImage(dir, /*verify_payloads=*/true);
    EXPECT_TRUE(image.ok()) << image.status().message();
    o.loads = image.ok() && ValidateImage(*image).ok();
    const pb::ProcessImage* p = image.ok() ? image->Find(pid) : nullptr;
    if (p != nullptr) {
      EXPECT_EQ(p->kept_size(), 0);
      EXPECT_EQ(p->pages_file(), PageFileStage::kFileName);
      int fd = open((dir + "/" + p->pages_file()).c_str(), O_RDONLY);
      char want[kPage], have[kPage];
      for (const pb::PageRun& run : p->pages()) {
        for (uint64_t k = 0; k < run.npages(); ++k) {
          ++o.pages;
          iovec l{have, kPage}, rem{reinterpret_cast<void*>(run.vaddr() + k * kPage), kPage};
          bool same = pread(fd, want, kPage, static_cast<off_t>(run.offset() + k * kPage)) == kPage &&
                      process_vm_readv(pid, &l, 1, &rem, 1, 0) == kPage && memcmp(want, have, kPage) == 0;
          if (!same) ++o.wrong;
        }
      }
      close(fd);
    }
  }
  (*frozen)->Resume();
  return o;
}

std::string TempDir() {
  char tmpl[] = "/tmp/roam-fold-test.XXXXXX";
  return mkdtemp(tmpl);
}

void Cleanup(pid_t pid, const std::string& dir) {
  KillChild(pid);
  (void)system(("rm -rf '" + dir + "'").c_str());
}

TEST(PageFileStage, TheFoldedImageHoldsExactlyTheFrozenMemory) {
  pid_t pid = StartWriter();
  usleep(200000);
  std::string dir = TempDir();
  Outcome o = PreCopyFoldAndCheck(pid, dir, false);
  EXPECT_TRUE(o.fold.ok()) << o.fold.message();
  EXPECT_TRUE(o.loads);
  EXPECT_GT(o.staged_bytes, 15u << 20);  // the whole buffer was staged
  EXPECT_GE(o.pages, 4096u);             // 16 MiB of pages, and more
  EXPECT_EQ(o.wrong, 0u);
  Cleanup(pid, dir);
}

TEST(PageFileStage, ALostBatchMakesTheFoldFail) {
  pid_t pid = StartWriter();
  usleep(200000);
  std::string dir = TempDir();
  Outcome o = PreCopyFoldAndCheck(pid, dir, true);
  EXPECT_FALSE(o.fold.ok());
  EXPECT_NE(o.fold.message().find("never staged"), std::string::npos) << o.fold.message();
  // And the image is left as it was: it still loads, with its kept pages.
  Result<Image> image = LoadImage(dir, true);
  ASSERT_TRUE(image.ok()) << image.status().message();
  EXPECT_GT(image->Find(pid)->kept_size(), 0);
  Cleanup(pid, dir);
}

TEST(PageFileStage, UnalignedPagesAreRefused) {
  std::string dir = TempDir();
  Result<std::unique_ptr<PageFileStage>> stage = PageFileStage::Create(dir);
  ASSERT_TRUE(stage.ok());
  std::string page(kPage, 'x');
  EXPECT_FALSE((*stage)->Write(0x1001, page.data(), page.size()).ok());
  EXPECT_FALSE((*stage)->Write(0x1000, page.data(), 100).ok());
  EXPECT_TRUE((*stage)->Write(0x1000, page.data(), page.size()).ok());
  EXPECT_TRUE((*stage)->Write(0x1000, page.data(), page.size()).ok());  // again: in place
  EXPECT_EQ((*stage)->bytes(), kPage);
  (void)system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace roam
