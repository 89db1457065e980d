// dirty_scan_bench: what one pre-copy round's DirtyTracker::Scan costs on a
// 1 GiB process, against memcpy of the same memory (what a round without
// tracking would at least pay to find the changes: read it all).
//
// A forked child maps and populates BYTES of private anonymous memory, is
// seized only for DirtyTracker::Open (stopped_ns: seize, open, detach; then
// Protect runs while it runs: protect_ns), and then, each round, writes one byte
// in DIRTY bytes' worth of pages (contiguous, or one page in every
// BYTES/DIRTY: as many separate ranges as pages) while the parent scans. Best
// of 5 rounds each.
// Output, one line on stdout:
//   bytes=B dirty=D stopped_ns=N protect_ns=N clean_scan_ns=N contiguous_scan_ns=N
//   scattered_scan_ns=N scattered_ranges=R stop_ns=N memcpy_all_ns=N
//   memcpy_dirty_ns=N
//
// Usage: dirty_scan_bench [BYTES [DIRTY]]   (MiB; default 1024 16). Root.

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "ckpt/dirty_tracker.h"
#include "ckpt/tracee.h"

namespace {

constexpr uint64_t kPage = 4096;

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Order {
  uint64_t first, count, stride;  // pages
};

[[noreturn]] void ChildMain(uint64_t bytes, int cmd_fd, int ack_fd) {
  char* m = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (m == MAP_FAILED) _exit(2);
  memset(m, 1, bytes);
  uint64_t addr = reinterpret_cast<uintptr_t>(m);
  if (write(ack_fd, &addr, 8) != 8) _exit(3);
  Order o;
  while (read(cmd_fd, &o, sizeof o) == sizeof o) {
    for (uint64_t i = 0; i < o.count; ++i) m[(o.first + i * o.stride) * kPage] += 1;
    if (write(ack_fd, &addr, 8) != 8) _exit(4);
  }
  _exit(0);
}

void Fail(const char* what, const std::string& why) {
  std::fprintf(stderr, "dirty_scan_bench: %s: %s\n", what, why.c_str());
  std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  const uint64_t bytes = (argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 1024) << 20;
  const uint64_t dirty = (argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 16) << 20;
  const uint64_t pages = bytes / kPage, dirty_pages = dirty / kPage;
  if (dirty_pages == 0 || dirty_pages > pages) Fail("arguments", "need 0 < DIRTY <= BYTES");

  int cmd[2], ack[2];
  if (pipe(cmd) != 0 || pipe(ack) != 0) Fail("pipe", std::strerror(errno));
  pid_t pid = fork();
  if (pid == 0) {
    close(cmd[1]);
    close(ack[0]);
    ChildMain(bytes, cmd[0], ack[1]);
  }
  close(cmd[0]);
  close(ack[1]);
  uint64_t base = 0;
  if (read(ack[0], &base, 8) != 8) Fail("child", "did not start");
  auto order = [&](Order o) {
    uint64_t r;
    if (write(cmd[1], &o, sizeof o) != sizeof o || read(ack[0], &r, 8) != 8) Fail("child", "gone");
  };

  int64_t t0 = NowNs();
  roam::Tracee t(pid);
  roam::Status st = t.Seize();
  if (st.ok()) st = t.BlockSignals();
  if (!st.ok()) Fail("seize", st.message());
  roam::Result<roam::DirtyTracker> d = roam::DirtyTracker::Open(t, {{base, base + bytes}});
  (void)t.RestoreSigmask();
  (void)t.Detach();
  if (!d.ok()) Fail("open", d.status().message());
  const int64_t stopped_ns = NowNs() - t0;
  t0 = NowNs();
  st = d->Protect();
  if (!st.ok()) Fail("protect", st.message());
  const int64_t protect_ns = NowNs() - t0;

  auto best_scan = [&](Order o, size_t* ranges) {
    int64_t best = INT64_MAX;
    for (int round = 0; round < 5; ++round) {
      if (o.count) order(o);
      int64_t s = NowNs();
      roam::Result<std::vector<roam::PageRange>> r = d->Scan();
      best = std::min(best, NowNs() - s);
      if (!r.ok()) Fail("scan", r.status().message());
      if (ranges != nullptr) *ranges = r->size();
    }
    return best;
  };
  const int64_t clean_ns = best_scan({0, 0, 1}, nullptr);
  const int64_t contiguous_ns = best_scan({pages / 3, dirty_pages, 1}, nullptr);
  size_t scattered_ranges = 0;
  const int64_t scattered_ns = best_scan({0, dirty_pages, pages / dirty_pages}, &scattered_ranges);

  t0 = NowNs();
  d->Stop();
  const int64_t stop_ns = NowNs() - t0;
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);

  // The reference, in this process: copy all of it, and just the dirty part.
  char* src = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* dst = static_cast<char*>(mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (src == MAP_FAILED || dst == MAP_FAILED) Fail("mmap", std::strerror(errno));
  memset(src, 1, bytes);
  memset(dst, 2, bytes);
  auto best_copy = [&](uint64_t n) {
    int64_t best = INT64_MAX;
    for (int round = 0; round < 3; ++round) {
      int64_t s = NowNs();
      memcpy(dst, src, n);
      best = std::min(best, NowNs() - s);
    }
    return best;
  };
  const int64_t memcpy_all_ns = best_copy(bytes);
  const int64_t memcpy_dirty_ns = best_copy(dirty);

  std::printf("bytes=%" PRIu64 " dirty=%" PRIu64 " stopped_ns=%" PRId64 " protect_ns=%" PRId64 " clean_scan_ns=%" PRId64
              " contiguous_scan_ns=%" PRId64 " scattered_scan_ns=%" PRId64 " scattered_ranges=%zu stop_ns=%" PRId64
              " memcpy_all_ns=%" PRId64 " memcpy_dirty_ns=%" PRId64 "\n",
              bytes, dirty, stopped_ns, protect_ns, clean_ns, contiguous_ns, scattered_ns, scattered_ranges, stop_ns,
              memcpy_all_ns, memcpy_dirty_ns);
  return 0;
}
