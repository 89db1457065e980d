// ckpt_memhog: the process bench/ckpt_bench.sh checkpoints and restores.
//
// Maps SIZE bytes of private anonymous memory with mmap, writes random
// content into P% of its pages (spread evenly; 100 by default), prints one
// line "READY pid=N mapped_bytes=B touched_bytes=T" on stdout and then waits:
//   default   in sigsuspend, using no CPU (for dump and restore timings);
//   --spin    in a loop of clock_gettime(CLOCK_MONOTONIC) calls, keeping the
//             largest gap between two consecutive calls: while the process
//             is frozen by a checkpointer, no call returns, so the largest
//             gap is the freeze as the process itself saw it.
//   --dirty-rate R  (bench/migrate_bench.sh) in a loop of ~5 ms sleeps that
//             rewrites touched pages with new random content at R bytes per
//             second, whole pages, walking the touched pages in order and
//             wrapping around. Each rewrite bumps the page's generation (a
//             32-bit counter per page, kept in the process's own heap and so
//             moved with it); a page's content is a function of its index
//             and generation. The budget is R times the time since READY,
//             but after a stall (a freeze) at most 50 ms of backlog is
//             caught up, so the rate the process sees stays R. The loop
//             keeps the largest gap between two of its wake-ups, like
//             --spin (a 5 ms floor). Not with --spin.
// Signals, answered by rewriting --report FILE (atomically: temporary file +
// rename, so a reader polling for FILE never sees half of it):
//   SIGUSR1  "max_gap_ns=N loops=L" since READY or the previous SIGUSR1, then
//            starts a new window (meaningful with --spin; 0 otherwise);
//   SIGUSR2  "verify=ok pages=N" if every touched page still holds its
//            content and a sample of untouched pages still reads as zero,
//            else "verify=bad page=I" (the first wrong page). Run after a
//            restore, it proves the restored memory is the dumped memory.
//            With --dirty-rate, each touched page is checked against the
//            content of its current generation (still exact: the check and
//            the rewrites run on the one thread), and the line goes on with
//            " rewritten_pages=N" (rewrites since READY).
//   --in-child  the memory is held by a child: the process started only
//             forks it, passes SIGUSR1, SIGUSR2, SIGINT and SIGTERM on to
//             it, and ends as it ends (its exit code, or 128 + its signal);
//             the child dies with it (PR_SET_PDEATHSIG). A tree whose work
//             is below its root, as `sh -c "..."` makes. READY's pid is the
//             root's.
//   --threads N  N threads in all: the one above, and N-1 more that sleep
//             on a condition variable for good (the engine's per-thread
//             cost: registers, XSAVE, stacks, injected calls per thread).
//   --sharers N  N processes in all: once its memory is written, the
//             process forks N-1 children that sleep for good, sharing it
//             copy-on-write (a tree of workers forked from a loaded parent;
//             each dies with it, PR_SET_PDEATHSIG). Signals go to the root.
// Uses only the C++ standard library and POSIX.
//
// Usage: ckpt_memhog SIZE [--touch-percent P] [--spin | --dirty-rate R]
//                   [--report FILE] [--in-child] [--threads N] [--sharers N]
//        SIZE and R take the suffixes K, M, G (KiB, MiB, GiB).

#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <pthread.h>

#include <cerrno>
#include <cinttypes>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kSeed = 0x726f616d6d656d68ULL;  // "roammemh"
// One untouched page in kZeroSample is read back by the SIGUSR2 check.
constexpr uint64_t kZeroSample = 97;

volatile sig_atomic_t g_gap_requested = 0;
volatile sig_atomic_t g_verify_requested = 0;

void OnSignal(int sig) {
  if (sig == SIGUSR1) g_gap_requested = 1;
  if (sig == SIGUSR2) g_verify_requested = 1;
}

struct Options {
  uint64_t size = 0;
  double touch_percent = 100.0;
  bool spin = false;
  uint64_t dirty_rate = 0;  // bytes per second; 0: no rewriting
  std::string report;
  bool in_child = false;
  int threads = 1;
  int sharers = 1;
};

std::optional<uint64_t> ParseSize(const std::string& text) {
  char* end = nullptr;
  errno = 0;
  unsigned long long n = std::strtoull(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str()) return std::nullopt;
  std::string suffix(end);
  uint64_t scale = 1;
  if (suffix == "K" || suffix == "KiB") scale = 1ULL << 10;
  else if (suffix == "M" || suffix == "MiB") scale = 1ULL << 20;
  else if (suffix == "G" || suffix == "GiB") scale = 1ULL << 30;
  else if (!suffix.empty()) return std::nullopt;
  return n * scale;
}

std::optional<Options> ParseOptions(int argc, char** argv) {
  Options o;
  bool have_size = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--spin") {
      o.spin = true;
    } else if (a == "--in-child") {
      o.in_child = true;
    } else if (a == "--touch-percent" && i + 1 < argc) {
      char* end = nullptr;
      o.touch_percent = std::strtod(argv[++i], &end);
      if (*end != '\0' || o.touch_percent < 0 || o.touch_percent > 100)
        return std::nullopt;
    } else if (a == "--sharers" && i + 1 < argc) {
      o.sharers = std::atoi(argv[++i]);
      if (o.sharers < 1 || o.sharers > 4096) return std::nullopt;
    } else if (a == "--threads" && i + 1 < argc) {
      o.threads = std::atoi(argv[++i]);
      if (o.threads < 1 || o.threads > 1024) return std::nullopt;
    } else if (a == "--report" && i + 1 < argc) {
      o.report = argv[++i];
    } else if (a == "--dirty-rate" && i + 1 < argc) {
      std::optional<uint64_t> rate = ParseSize(argv[++i]);
      if (!rate || *rate == 0) return std::nullopt;
      o.dirty_rate = *rate;
    } else if (!have_size) {
      std::optional<uint64_t> size = ParseSize(a);
      if (!size || *size == 0) return std::nullopt;
      o.size = *size;
      have_size = true;
    } else {
      return std::nullopt;
    }
  }
  if (!have_size || (o.spin && o.dirty_rate > 0)) return std::nullopt;
  return o;
}

// Page I is touched when the running count of touched pages, I * P / 100,
// steps up at I: exactly P% of the pages, evenly spread.
bool IsTouched(uint64_t page, double percent) {
  if (percent >= 100.0) return true;
  auto count = [percent](uint64_t n) {
    return static_cast<uint64_t>(static_cast<double>(n) * percent / 100.0);
  };
  return count(page + 1) > count(page);
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The content of page I at generation G (0 until --dirty-rate rewrites it):
// a xorshift stream seeded from I and G, so any page can be regenerated on
// its own.
template <typename Visit>
void PageWords(uint64_t page, Visit visit, uint32_t generation = 0) {
  uint64_t x = SplitMix64(page ^ kSeed ^ (generation * 0xd1b54a32d192ed03ULL)) | 1;
  for (uint64_t w = 0; w < kPage / 8; ++w) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    if (!visit(w, x)) return;
  }
}

int64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Writes TEXT to PATH through PATH.tmp and rename.
void WriteReport(const std::string& path, const std::string& text) {
  if (path.empty()) return;
  std::string tmp = path + ".tmp";
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "ckpt_memhog: open %s: %s\n", tmp.c_str(),
                 std::strerror(errno));
    return;
  }
  ssize_t n = write(fd, text.data(), text.size());
  close(fd);
  if (n != static_cast<ssize_t>(text.size()) ||
      rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "ckpt_memhog: write %s: %s\n", path.c_str(),
                 std::strerror(errno));
  }
}

// GENERATIONS: one per page with --dirty-rate, else empty (all 0).
std::string Verify(const unsigned char* base, uint64_t pages, double percent,
                   const std::vector<uint32_t>& generations) {
  uint64_t checked = 0;
  for (uint64_t page = 0; page < pages; ++page) {
    const auto* words = reinterpret_cast<const uint64_t*>(base + page * kPage);
    bool ok = true;
    if (IsTouched(page, percent)) {
      uint32_t generation = generations.empty() ? 0 : generations[page];
      PageWords(page, [&](uint64_t w, uint64_t v) { return ok = words[w] == v; },
                generation);
    } else if (page % kZeroSample == 0) {
      for (uint64_t w = 0; w < kPage / 8 && ok; ++w) ok = words[w] == 0;
    } else {
      continue;
    }
    if (!ok) return "verify=bad page=" + std::to_string(page) + "\n";
    ++checked;
  }
  return "verify=ok pages=" + std::to_string(checked);
}

// --dirty-rate: rewrites touched pages at a steady rate (see the header).
class Dirtier {
 public:
  Dirtier(unsigned char* base, uint64_t pages, double percent, uint64_t rate)
      : base_(base), pages_(pages), percent_(percent), rate_(rate),
        generations_(pages, 0), start_(MonotonicNs()) {}

  // Rewrites the pages owed since the previous call.
  void Step() {
    int64_t now = MonotonicNs();
    // Bytes owed: rate x elapsed, minus what was written; after a stall at
    // most 50 ms of backlog (the start moves forward instead).
    const double max_backlog = static_cast<double>(rate_) * 0.05;
    double owed = static_cast<double>(rate_) * static_cast<double>(now - start_) / 1e9 -
                  static_cast<double>(written_);
    if (owed > max_backlog + kPage) {
      start_ += static_cast<int64_t>((owed - max_backlog) / static_cast<double>(rate_) * 1e9);
      owed = max_backlog;
    }
    while (owed >= static_cast<double>(kPage)) {
      uint64_t page = NextTouched();
      if (page == pages_) return;  // no touched page at all
      uint32_t generation = ++generations_[page];
      auto* words = reinterpret_cast<uint64_t*>(base_ + page * kPage);
      PageWords(page, [words](uint64_t w, uint64_t v) { return words[w] = v, true; },
                generation);
      written_ += kPage;
      owed -= static_cast<double>(kPage);
      ++rewritten_;
    }
  }

  const std::vector<uint32_t>& generations() const { return generations_; }
  uint64_t rewritten() const { return rewritten_; }

 private:
  // The next touched page after the cursor, wrapping; pages_ if none.
  uint64_t NextTouched() {
    for (uint64_t tried = 0; tried < pages_; ++tried) {
      uint64_t page = cursor_;
      cursor_ = (cursor_ + 1) % pages_;
      if (IsTouched(page, percent_)) return page;
    }
    return pages_;
  }

  unsigned char* base_;
  uint64_t pages_;
  double percent_;
  uint64_t rate_;
  std::vector<uint32_t> generations_;
  int64_t start_;
  uint64_t written_ = 0, rewritten_ = 0, cursor_ = 0;
};

// --in-child, in the root: passes signals on to `child` until it ends.
volatile pid_t g_child = 0;

void PassOn(int sig) { kill(g_child, sig); }

int WaitForChild(pid_t child) {
  g_child = child;
  struct sigaction sa = {};
  sa.sa_handler = PassOn;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGUSR1, SIGUSR2, SIGINT, SIGTERM}) sigaction(sig, &sa, nullptr);
  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

int main(int argc, char** argv) {
  std::optional<Options> parsed = ParseOptions(argc, argv);
  if (!parsed) {
    std::fprintf(stderr,
                 "usage: ckpt_memhog SIZE [--touch-percent P] "
                 "[--spin | --dirty-rate BYTES_PER_S] [--report FILE] [--in-child] [--threads N] [--sharers N]\n");
    return 2;
  }
  const Options& o = *parsed;
  const pid_t root = getpid();
  if (o.in_child) {
    pid_t child = fork();
    if (child < 0) {
      std::fprintf(stderr, "ckpt_memhog: fork: %s\n", std::strerror(errno));
      return 1;
    }
    if (child > 0) return WaitForChild(child);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != root) _exit(1);
  }
  const uint64_t pages = (o.size + kPage - 1) / kPage;
  const uint64_t mapped = pages * kPage;
  // The other threads, created with every signal blocked so that the
  // signals above stay this thread's.
  sigset_t all, before;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &before);
  for (int i = 1; i < o.threads; ++i) {
    std::thread([] {
      static std::mutex mu;
      static std::condition_variable never;
      std::unique_lock<std::mutex> lock(mu);
      for (;;) never.wait(lock);
    }).detach();
  }
  pthread_sigmask(SIG_SETMASK, &before, nullptr);

  void* map = mmap(nullptr, mapped, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (map == MAP_FAILED) {
    std::fprintf(stderr, "ckpt_memhog: mmap %" PRIu64 " bytes: %s\n", mapped,
                 std::strerror(errno));
    return 1;
  }
  auto* base = static_cast<unsigned char*>(map);
  uint64_t touched = 0;
  for (uint64_t page = 0; page < pages; ++page) {
    if (!IsTouched(page, o.touch_percent)) continue;
    auto* words = reinterpret_cast<uint64_t*>(base + page * kPage);
    PageWords(page, [words](uint64_t w, uint64_t v) { return words[w] = v, true; });
    ++touched;
  }

  for (int i = 1; i < o.sharers; ++i) {
    pid_t child = fork();
    if (child < 0) {
      std::fprintf(stderr, "ckpt_memhog: fork: %s\n", std::strerror(errno));
      return 1;
    }
    if (child == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      for (;;) pause();
    }
  }

  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, nullptr);
  sigaction(SIGUSR2, &sa, nullptr);
  sigset_t ours, waiting;
  sigemptyset(&ours);
  sigaddset(&ours, SIGUSR1);
  sigaddset(&ours, SIGUSR2);
  // Without --spin the signals stay blocked except inside sigsuspend, so
  // none can slip in between the flag checks and the wait. With
  // --dirty-rate they stay unblocked: a signal cuts the sleep short, and
  // one arriving just before it is seen on the next wake-up.
  if (!o.spin && o.dirty_rate == 0) sigprocmask(SIG_BLOCK, &ours, &waiting);
  std::optional<Dirtier> dirtier;
  if (o.dirty_rate > 0) dirtier.emplace(base, pages, o.touch_percent, o.dirty_rate);
  const std::vector<uint32_t> no_generations;

  std::printf("READY pid=%d mapped_bytes=%" PRIu64 " touched_bytes=%" PRIu64 "\n",
              static_cast<int>(root), mapped, touched * kPage);
  std::fflush(stdout);

  int64_t last = MonotonicNs();
  int64_t max_gap = 0;
  uint64_t loops = 0;
  for (;;) {
    if (o.spin) {
      int64_t now = MonotonicNs();
      if (now - last > max_gap) max_gap = now - last;
      last = now;
      ++loops;
    } else if (dirtier) {
      timespec nap = {0, 5'000'000};
      nanosleep(&nap, nullptr);
      int64_t now = MonotonicNs();
      if (now - last > max_gap) max_gap = now - last;
      last = now;
      ++loops;
      dirtier->Step();
    } else {
      sigsuspend(&waiting);
    }
    if (g_gap_requested) {
      g_gap_requested = 0;
      WriteReport(o.report, "max_gap_ns=" + std::to_string(max_gap) +
                                " loops=" + std::to_string(loops) + "\n");
      max_gap = 0;
      loops = 0;
      last = MonotonicNs();
    }
    if (g_verify_requested) {
      g_verify_requested = 0;
      std::string line = Verify(base, pages, o.touch_percent,
                                dirtier ? dirtier->generations() : no_generations);
      if (dirtier) line += " rewritten_pages=" + std::to_string(dirtier->rewritten());
      WriteReport(o.report, line + "\n");
      last = MonotonicNs();
    }
  }
}
