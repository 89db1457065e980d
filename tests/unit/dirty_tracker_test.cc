// DirtyTracker on real processes: a forked child maps 64 MiB and then does
// only what the test asks through a pipe (write pages, map, unmap, ...), so
// the set of written pages is known exactly. The child is seized and
// stopped for Start only; every scan runs while it runs.
#include "ckpt/dirty_tracker.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <string>
#include <vector>

#include "ckpt/tracee.h"
#include "common/file_util.h"

namespace roam {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPages = 16384;  // 64 MiB

// ---- the child ---------------------------------------------------------------

enum Op : uint32_t {
  kWrite,         // a = address, b = pages: one byte written in each, value c
  kRead,          // a = address: returns the byte there
  kReadIntoPage,  // a = address: read(2) from a pipe into it (a write by the kernel)
  kMap,           // b = bytes: returns a new private anonymous mapping's address
  kMapShared,     // b = bytes: returns a new shared anonymous mapping's address
  kDontNeed,      // a = address, b = bytes: madvise(MADV_DONTNEED)
  kReplace,       // a = address, b = bytes: mmap(MAP_FIXED) a fresh mapping over it
  kSum,           // a = address, b = pages: the sum of the first byte of each page
  kFork,          // forks a child that writes a = address and exits; waits for it
  kExec,          // execs `sleep 30` (no reply)
  kDropPtrace,    // drops CAP_SYS_PTRACE from its effective set; returns errno of a plain userfaultfd() then
  kExit,          // _exit(0)
};

struct Command {
  uint32_t op;
  uint64_t a, b, c;
};

[[noreturn]] void ChildMain(int cmd_fd, int ack_fd) {
  // One page more, then unmapped: a hole right after the region, for the
  // test of a range that runs past it. Without it the region's end could
  // touch a library mapped just above (seen once: libstdc++).
  char* region = static_cast<char*>(
      mmap(nullptr, (kPages + 1) * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (region == MAP_FAILED || munmap(region + kPages * kPage, kPage) != 0) _exit(2);
  madvise(region, kPages * kPage, MADV_NOHUGEPAGE);  // the page counts below assume 4 KiB pages
  // Populated before tracking starts: [0,100), [8000,8010) and the last page.
  for (uint64_t p = 0; p < 100; ++p) region[p * kPage] = 1;
  for (uint64_t p = 8000; p < 8010; ++p) region[p * kPage] = 1;
  region[(kPages - 1) * kPage] = 1;
  uint64_t reply = reinterpret_cast<uintptr_t>(region);
  if (write(ack_fd, &reply, 8) != 8) _exit(3);
  for (;;) {
    Command c;
    if (read(cmd_fd, &c, sizeof c) != sizeof c) _exit(4);
    char* at = reinterpret_cast<char*>(c.a);
    reply = 0;
    switch (c.op) {
      case kWrite:
        for (uint64_t p = 0; p < c.b; ++p) at[p * kPage] = static_cast<char>(c.c);
        break;
      case kRead:
        reply = static_cast<unsigned char>(*static_cast<volatile char*>(at));
        break;
      case kReadIntoPage: {
        int fds[2];
        if (pipe(fds) != 0 || write(fds[1], "kernel", 6) != 6 || read(fds[0], at, 6) != 6) _exit(5);
        close(fds[0]);
        close(fds[1]);
        break;
      }
      case kMap:
      case kMapShared: {
        int flags = (c.op == kMap ? MAP_PRIVATE : MAP_SHARED) | MAP_ANONYMOUS;
        void* p = mmap(nullptr, c.b, PROT_READ | PROT_WRITE, flags, -1, 0);
        if (p == MAP_FAILED) _exit(6);
        reply = reinterpret_cast<uintptr_t>(p);
        break;
      }
      case kDontNeed:
        if (madvise(at, c.b, MADV_DONTNEED) != 0) _exit(7);
        break;
      case kReplace:
        if (mmap(at, c.b, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at) _exit(8);
        break;
      case kSum:
        for (uint64_t p = 0; p < c.b; ++p) reply += static_cast<unsigned char>(at[p * kPage]);
        break;
      case kFork: {
        pid_t kid = fork();
        if (kid == 0) {
          *at = 9;
          _exit(0);
        }
        int status = 0;
        if (kid < 0 || waitpid(kid, &status, 0) != kid || status != 0) _exit(12);
        break;
      }
      case kExec: {
        char* args[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
        execv("/bin/sleep", args);
        _exit(13);
      }
      case kDropPtrace: {
        __user_cap_header_struct h{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct caps[2] = {};
        if (syscall(SYS_capget, &h, caps) != 0) _exit(10);
        caps[CAP_SYS_PTRACE / 32].effective &= ~(1u << (CAP_SYS_PTRACE % 32));
        if (syscall(SYS_capset, &h, caps) != 0) _exit(11);
        long fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        reply = fd < 0 ? static_cast<uint64_t>(errno) : 0;
        if (fd >= 0) close(static_cast<int>(fd));
        break;
      }
      case kExit:
        _exit(0);
    }
    if (write(ack_fd, &reply, 8) != 8) _exit(9);
  }
}

// A forked child and its command pipes; killed and reaped if still there.
class Child {
 public:
  Child() {
    int cmd[2], ack[2];
    if (pipe(cmd) != 0 || pipe(ack) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      close(cmd[1]);
      close(ack[0]);
      ChildMain(cmd[0], ack[1]);
    }
    close(cmd[0]);
    close(ack[1]);
    cmd_ = cmd[1];
    ack_ = ack[0];
    if (read(ack_, &base_, 8) != 8) base_ = 0;
  }
  ~Child() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
    close(cmd_);
    close(ack_);
  }

  pid_t pid() const { return pid_; }
  uint64_t base() const { return base_; }
  uint64_t page(uint64_t n) const { return base_ + n * kPage; }

  uint64_t Do(Op op, uint64_t a = 0, uint64_t b = 0, uint64_t c = 0) {
    Command cmd{op, a, b, c};
    uint64_t reply = ~0ULL;
    if (write(cmd_, &cmd, sizeof cmd) != sizeof cmd || read(ack_, &reply, 8) != 8) ADD_FAILURE() << "child gone";
    return reply;
  }
  // A command that gets no reply.
  void Send(Op op) {
    Command cmd{op, 0, 0, 0};
    if (write(cmd_, &cmd, sizeof cmd) != sizeof cmd) ADD_FAILURE() << "child gone";
  }
  void Write(uint64_t first_page, uint64_t pages = 1, uint64_t value = 7) {
    Do(kWrite, page(first_page), pages, value);
  }

  // Asks it to exit; its exit status.
  int Exit() {
    Command cmd{kExit, 0, 0, 0};
    if (write(cmd_, &cmd, sizeof cmd) != sizeof cmd) return -1;
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }

 private:
  pid_t pid_ = -1;
  int cmd_ = -1, ack_ = -1;
  uint64_t base_ = 0;
};

// Seizes the child, starts tracking `ranges`, lets it go.
Result<DirtyTracker> StartOn(pid_t pid, const std::vector<PageRange>& ranges) {
  Tracee t(pid);
  Status st = t.Seize();
  if (st.ok()) st = t.BlockSignals();
  if (!st.ok()) return st;
  Result<DirtyTracker> d = DirtyTracker::Start(t, ranges);
  st = t.RestoreSigmask();
  if (st.ok()) st = t.Detach();
  if (!st.ok()) return st;
  return d;
}

std::vector<PageRange> Pages(const Child& c, std::vector<std::pair<uint64_t, uint64_t>> runs) {
  std::vector<PageRange> out;
  for (auto [first, end] : runs) out.push_back({c.page(first), c.page(end)});
  return out;
}

std::string Show(const std::vector<PageRange>& v, uint64_t base) {
  std::string s;
  for (const PageRange& r : v) {
    s += "[" + std::to_string((r.start - base) / kPage) + "," + std::to_string((r.end - base) / kPage) + ") ";
  }
  return s;
}

std::set<std::string> FdTable(pid_t pid) {
  std::set<std::string> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return fds;
  while (dirent* e = readdir(d)) {
    char target[256] = {};
    std::string path = dir + "/" + e->d_name;
    ssize_t n = readlink(path.c_str(), target, sizeof(target) - 1);
    fds.insert(std::string(e->d_name) + " -> " + (n > 0 ? std::string(target, static_cast<size_t>(n)) : ""));
  }
  closedir(d);
  return fds;
}

// Pages of [first, first + n) whose pagemap entry has bit 57 (uffd-wp) set.
uint64_t ProtectedPages(pid_t pid, uint64_t first, uint64_t n) {
  int fd = open(("/proc/" + std::to_string(pid) + "/pagemap").c_str(), O_RDONLY | O_CLOEXEC);
  std::vector<uint64_t> pm(n);
  ssize_t got = pread(fd, pm.data(), n * 8, static_cast<off_t>(first / kPage * 8));
  close(fd);
  if (got != static_cast<ssize_t>(n * 8)) return ~0ULL;
  uint64_t count = 0;
  for (uint64_t e : pm) count += (e >> 57) & 1;
  return count;
}

#define ASSERT_OK(expr)                     \
  do {                                      \
    Status st_ = (expr);                    \
    ASSERT_TRUE(st_.ok()) << st_.message(); \
  } while (0)

// ---- scanning ----------------------------------------------------------------

TEST(DirtyTracker, ScanReturnsExactlyThePagesWrittenSinceTheLastScanAndNothingMore) {
  Child c;
  ASSERT_NE(c.base(), 0u);
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();

  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(Show(*s, c.base()), "") << "nothing was written since Start";

  // First and last page, an adjacent run, pages populated before Start and
  // pages never touched; reads of both kinds are not writes.
  c.Write(0);
  c.Write(3, 2);
  c.Write(5000);
  c.Write(8005);
  c.Write(9000, 3);
  c.Write(kPages - 1);
  EXPECT_EQ(c.Do(kRead, c.page(50)), 1u);
  EXPECT_EQ(c.Do(kRead, c.page(7000)), 0u);
  s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{0, 1}, {3, 5}, {5000, 5001}, {8005, 8006}, {9000, 9003}, {kPages - 1, kPages}}))
      << Show(*s, c.base());

  s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(Show(*s, c.base()), "") << "the first scan protected them again";

  c.Write(10, 2);
  c.Write(5000);
  c.Write(12000);
  s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{10, 12}, {5000, 5001}, {12000, 12001}})) << Show(*s, c.base());
}

TEST(DirtyTracker, OpenedWhileStoppedAndProtectedWhileRunningItTracksTheSame) {
  Child c;
  Tracee t(c.pid());
  ASSERT_OK(t.Seize());
  ASSERT_OK(t.BlockSignals());
  Result<DirtyTracker> d = DirtyTracker::Open(t, {{c.page(0), c.page(kPages)}});
  ASSERT_OK(t.RestoreSigmask());
  ASSERT_OK(t.Detach());
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Write(2);  // before Protect: in the first full copy, which follows it
  ASSERT_OK(d->Protect());
  c.Write(4);
  c.Write(6000);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{4, 5}, {6000, 6001}})) << Show(*s, c.base());
}

TEST(DirtyTracker, ScanGoesOnPastAFullOutputBuffer) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  // Every other page: 8192 separate ranges, twice what one ioctl returns.
  for (uint64_t p = 0; p < kPages; p += 2) c.Write(p);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  ASSERT_EQ(s->size(), kPages / 2);
  for (uint64_t i = 0; i < kPages / 2; ++i) {
    ASSERT_EQ((*s)[i], (PageRange{c.page(2 * i), c.page(2 * i + 1)})) << i;
  }
  s = d->Scan();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty()) << Show(*s, c.base());
}

TEST(DirtyTracker, AWriteByTheKernelOnTheProcesssBehalfIsReported) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Do(kReadIntoPage, c.page(20));     // populated before Start
  c.Do(kReadIntoPage, c.page(11000));  // never touched
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{20, 21}, {11000, 11001}})) << Show(*s, c.base());
}

TEST(DirtyTracker, WritesAfterTheProcessForkedAreReportedAndTheForkedChildsAreNot) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  // The forked child writes in its own copy; the parent's pages become
  // copy-on-write, and its next writes copy them.
  c.Do(kFork, c.page(40));
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->empty()) << Show(*s, c.base());
  c.Write(40);
  c.Write(8001);
  s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{40, 41}, {8001, 8002}})) << Show(*s, c.base());
}

TEST(DirtyTracker, ATargetThatMayNotMakeAFullUserfaultfdIsTrackedWithAUserModeOnlyOne) {
  Result<std::string> sysctl = ReadFile("/proc/sys/vm/unprivileged_userfaultfd");
  if (sysctl.ok() && *sysctl != "0\n") {
    GTEST_SKIP() << "vm.unprivileged_userfaultfd=1: every process may make a full one";
  }
  Child c;
  ASSERT_EQ(c.Do(kDropPtrace), static_cast<uint64_t>(EPERM)) << "without CAP_SYS_PTRACE the plain call fails";
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Write(6);
  c.Do(kReadIntoPage, c.page(7000));  // kernel-mode writes are tracked all the same
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{6, 7}, {7000, 7001}})) << Show(*s, c.base());
}

TEST(DirtyTracker, PagesDroppedWithMadviseDontneedAreReportedOnce) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Write(30);
  ASSERT_TRUE(d->Scan().ok());
  // 30 was written and scanned (protected again), 31 was populated before
  // Start, 32 never: after the madvise all three read as zeros, and the
  // first two differ from what the caller sent before.
  c.Do(kDontNeed, c.page(30), 3 * kPage);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{30, 33}})) << Show(*s, c.base());
  s = d->Scan();
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE(s->empty()) << Show(*s, c.base());
  c.Write(31);
  s = d->Scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, Pages(c, {{31, 32}})) << Show(*s, c.base());
}

TEST(DirtyTracker, TrackingAnotherRangeReportsNoneOfTheWrites) {
  // The control: the same writes as above, with only an unrelated mapping
  // tracked, give nothing. A scan that reported every page would fail here.
  Child c;
  uint64_t other = c.Do(kMap, 0, 256 * kPage);
  Result<DirtyTracker> d = StartOn(c.pid(), {{other, other + 256 * kPage}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Write(0);
  c.Write(3, 2);
  c.Write(5000);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE(s->empty()) << Show(*s, c.base());
  c.Do(kWrite, other + 7 * kPage, 1, 1);
  s = d->Scan();
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(*s, (std::vector<PageRange>{{other + 7 * kPage, other + 8 * kPage}}));
}

// ---- mappings that change ------------------------------------------------------

TEST(DirtyTracker, AMappingMadeAfterStartIsReportedWholeOnceAndTrackedFromThen) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  Result<std::vector<PageRange>> n = d->NewMappings();
  ASSERT_TRUE(n.ok()) << n.status().message();
  EXPECT_TRUE(n->empty()) << Show(*n, 0);

  uint64_t fresh = c.Do(kMap, 0, 64 * kPage);
  uint64_t shared = c.Do(kMapShared, 0, 16 * kPage);
  c.Do(kWrite, fresh, 64, 3);
  n = d->NewMappings();
  ASSERT_TRUE(n.ok()) << n.status().message();
  // The shared one is not pre-copy's: it is sent whole at the end.
  EXPECT_EQ(*n, (std::vector<PageRange>{{fresh, fresh + 64 * kPage}})) << shared;
  n = d->NewMappings();
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->empty());

  ASSERT_TRUE(d->Scan().ok());
  c.Do(kWrite, fresh + 9 * kPage, 1, 4);
  c.Write(77);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  std::vector<PageRange> want = {{c.page(77), c.page(78)}, {fresh + 9 * kPage, fresh + 10 * kPage}};
  std::sort(want.begin(), want.end(), [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  EXPECT_EQ(*s, want);
}

TEST(DirtyTracker, AMappingReplacedAtTheSameAddressIsReportedWholeThenTrackedAgain) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  // Same address, size and permissions: /proc/PID/maps cannot tell, but the
  // new mapping is not registered, and the scan notices.
  c.Do(kReplace, c.page(0), kPages * kPage);
  Result<std::vector<PageRange>> n = d->NewMappings();
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(n->empty()) << Show(*n, c.base());
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{0, kPages}})) << Show(*s, c.base());
  c.Write(123);
  s = d->Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{123, 124}})) << Show(*s, c.base());
}

// ---- start and stop ------------------------------------------------------------

TEST(DirtyTracker, StopLeavesTheProcessAsItWasAndWorking) {
  Child c;
  std::set<std::string> fds_before = FdTable(c.pid());
  Result<std::string> maps_before = ReadFile("/proc/" + std::to_string(c.pid()) + "/maps");
  ASSERT_TRUE(maps_before.ok());
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  EXPECT_EQ(FdTable(c.pid()), fds_before) << "the userfaultfd made in the child is closed there";
  EXPECT_EQ(ProtectedPages(c.pid(), c.page(0), kPages), kPages) << "every page, populated or not, is protected";
  c.Write(100, 10, 2);

  d->Stop();
  EXPECT_FALSE(d->active());
  EXPECT_FALSE(d->Scan().ok());
  EXPECT_EQ(ProtectedPages(c.pid(), c.page(0), kPages), 0u) << "no protection is left armed";
  Result<std::string> maps_after = ReadFile("/proc/" + std::to_string(c.pid()) + "/maps");
  ASSERT_TRUE(maps_after.ok());
  EXPECT_EQ(*maps_after, *maps_before);
  EXPECT_EQ(FdTable(c.pid()), fds_before);
  Result<std::string> smaps = ReadFile("/proc/" + std::to_string(c.pid()) + "/smaps");
  ASSERT_TRUE(smaps.ok());
  EXPECT_EQ(smaps->find(" uw"), std::string::npos) << "no mapping is still registered";

  // It still writes (populated and never-touched pages) and reads back
  // what it wrote; the child was blocked in read(2) when seized, and that
  // read went on: the commands still arrive.
  c.Write(0, kPages, 1);
  // Every page holds 1 now.
  EXPECT_EQ(c.Do(kSum, c.page(0), kPages), kPages);
  int status = c.Exit();
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST(DirtyTracker, StartRefusesASharedMappingAndLeavesTheProcessUntouched) {
  Child c;
  uint64_t shared = c.Do(kMapShared, 0, 16 * kPage);
  std::set<std::string> fds_before = FdTable(c.pid());
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(16)}, {shared, shared + 16 * kPage}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("cannot be tracked"), std::string::npos) << d.status().message();
  EXPECT_EQ(FdTable(c.pid()), fds_before);
  EXPECT_EQ(ProtectedPages(c.pid(), c.page(0), 16), 0u);
  c.Write(0, 16, 1);
  EXPECT_EQ(c.Do(kSum, c.page(0), 16), 16u);
}

TEST(DirtyTracker, StartRefusesARangeThatIsNotMapped) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(kPages - 1), c.page(kPages + 1)}});
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("is not mapped"), std::string::npos) << d.status().message();
}

TEST(DirtyTracker, AMovedTrackerKeepsTrackingAndTheOldOneIsInert) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  DirtyTracker moved = std::move(*d);
  EXPECT_FALSE(d->active());
  c.Write(42);
  Result<std::vector<PageRange>> s = moved.Scan();
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_EQ(*s, Pages(c, {{42, 43}}));
}

TEST(DirtyTracker, ScanAfterTheProcessExitedSaysSo) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Write(1);
  ASSERT_EQ(c.Exit(), 0);
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_FALSE(s.ok()) << Show(*s, c.base());
  EXPECT_NE(s.status().message().find("exited"), std::string::npos) << s.status().message();
  EXPECT_FALSE(d->NewMappings().ok());
}

TEST(DirtyTracker, ScanAfterTheProcessExecedSaysItsAddressSpaceIsGone) {
  Child c;
  Result<DirtyTracker> d = StartOn(c.pid(), {{c.page(0), c.page(kPages)}});
  ASSERT_TRUE(d.ok()) << d.status().message();
  c.Send(kExec);
  // Wait until the new program runs (its /proc/PID/exe changes).
  for (int i = 0; i < 5000; ++i) {
    char buf[256] = {};
    ssize_t n = readlink(("/proc/" + std::to_string(c.pid()) + "/exe").c_str(), buf, sizeof(buf) - 1);
    if (n > 0 && std::string(buf).find("sleep") != std::string::npos) break;
    usleep(1000);
  }
  Result<std::vector<PageRange>> s = d->Scan();
  ASSERT_FALSE(s.ok()) << Show(*s, c.base());
  EXPECT_NE(s.status().message().find("has exited"), std::string::npos) << s.status().message();
}

// ---- the mapping diff, on made-up lists ------------------------------------------

VmaInfo Vma(uint64_t start, uint64_t end, const char* perms, std::string path = "", uint64_t offset = 0,
            uint64_t inode = 0) {
  VmaInfo v;
  v.start = start;
  v.end = end;
  v.read = perms[0] == 'r';
  v.write = perms[1] == 'w';
  v.exec = perms[2] == 'x';
  v.shared = perms[3] == 's';
  v.path = std::move(path);
  v.offset = offset;
  v.inode = inode;
  return v;
}

TEST(ChangedRanges, ReportsNewGrownAndChangedMappingsButNotUnchangedOrUntrackableOnes) {
  std::vector<VmaInfo> before = {
      Vma(0x1000, 0x5000, "rw-p", "[heap]"),
      Vma(0x10000, 0x20000, "rw-p"),
      Vma(0x30000, 0x34000, "rw-p", "/lib/x.so", 0x2000, 77),
      Vma(0x40000, 0x48000, "rw-p"),
  };
  std::vector<VmaInfo> now = {
      Vma(0x1000, 0x9000, "rw-p", "[heap]"),                   // grew by 4 pages
      Vma(0x10000, 0x20000, "rw-p"),                           // unchanged
      Vma(0x30000, 0x34000, "rw-p", "/lib/x.so", 0x3000, 77),  // same place, other offset
      Vma(0x40000, 0x44000, "rw-p"),                           // split by mprotect:
      Vma(0x44000, 0x48000, "r--p"),                           //   read-only now, not tracked
      Vma(0x50000, 0x52000, "rw-p"),                           // new
      Vma(0x60000, 0x62000, "rw-s", "/dev/zero"),              // new but shared
      Vma(0x70000, 0x71000, "r-xp", "[vdso]"),                 // special
  };
  EXPECT_EQ(ChangedRanges(before, now),
            (std::vector<PageRange>{{0x5000, 0x9000}, {0x30000, 0x34000}, {0x50000, 0x52000}}));
  EXPECT_TRUE(ChangedRanges(now, now).empty());
  // Two mappings merged into one of the same kind are nothing new.
  std::vector<VmaInfo> merged = {Vma(0x10000, 0x18000, "rw-p"), Vma(0x18000, 0x20000, "rw-p")};
  EXPECT_TRUE(ChangedRanges(merged, {Vma(0x10000, 0x20000, "rw-p")}).empty());
}

TEST(TrackableRanges, KeepsPrivateWritableMappingsOnly) {
  std::vector<VmaInfo> vmas = {
      Vma(0x1000, 0x2000, "rw-p", "[heap]"),       Vma(0x2000, 0x3000, "rw-p", "[anon:x]"),
      Vma(0x3000, 0x4000, "r--p", "/bin/a", 0, 5), Vma(0x4000, 0x5000, "rw-p", "/bin/a", 0x1000, 5),
      Vma(0x6000, 0x7000, "rw-s", "/dev/zero"),    Vma(0x7000, 0x8000, "r-xp", "[vdso]"),
      Vma(0x9000, 0xa000, "rw-p", "[stack]"),
  };
  EXPECT_EQ(TrackableRanges(vmas), (std::vector<PageRange>{{0x1000, 0x3000}, {0x4000, 0x5000}, {0x9000, 0xa000}}));
  VmaInfo huge = Vma(0xb000, 0xc000, "rw-p", "/anon_hugepage", 0, 9);
  huge.vm_flags = {"rd", "wr", "ht"};
  EXPECT_FALSE(IsTrackable(huge));
}

}  // namespace
}  // namespace roam
