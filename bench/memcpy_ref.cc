// memcpy_ref: the reference every checkpoint/restore figure is measured
// against (bench/ckpt_bench.sh). Copies BYTES between two buffers with
// memcpy, best of 3, twice:
//   touched  both buffers already faulted in (pure copy bandwidth);
//   fresh    into a destination mmapped just before the copy, so each run
//            also pays the page faults and zeroing a restorer pays when it
//            fills a new address space page by page;
//   populated  the same, but the destination is populated in one call
//            (MADV_POPULATE_WRITE, else MAP_POPULATE) before the copy: what
//            a restorer that pre-faults its mappings pays. On these VMs a
//            page fault costs ~15 us, so fresh is ~50x touched for 1 GiB.
//   vmread   BYTES read out of another process (a forked child holding
//            them, touched) with process_vm_readv, 1 MiB per call, into a
//            buffer populated beforehand: what a dump pays at least to get
//            a process's memory (the issue "Engine v2" goal: dump <= 2x).
// Output, one line on stdout:
//   bytes=B touched_ns=N fresh_ns=N populated_ns=N vmread_ns=N
//   touched_mib_s=X fresh_mib_s=X populated_mib_s=X vmread_mib_s=X
// Uses only the C++ standard library and POSIX.
//
// Usage: memcpy_ref BYTES      (suffixes K, M, G = KiB, MiB, GiB)

#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>

namespace {

std::optional<uint64_t> ParseSize(const std::string& text) {
  if (text.empty()) return std::nullopt;
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

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23  // Linux 5.14; older headers lack it
#endif

void* MapAnonymous(uint64_t bytes, int extra_flags = 0) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | extra_flags, -1, 0);
  if (p == MAP_FAILED) {
    std::fprintf(stderr, "memcpy_ref: mmap %" PRIu64 " bytes: %s\n", bytes,
                 std::strerror(errno));
    std::exit(1);
  }
  return p;
}

// Random content, so nothing downstream can special-case zero pages.
void FillRandom(void* buffer, uint64_t bytes) {
  uint64_t x = 0x9e3779b97f4a7c15ULL;
  auto* words = static_cast<uint64_t*>(buffer);
  for (uint64_t i = 0; i < bytes / 8; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    words[i] = x;
  }
  std::memset(static_cast<char*>(buffer) + bytes / 8 * 8, 0x5a, bytes % 8);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Keeps the compiler from dropping a copy whose result is never read.
volatile unsigned char g_sink;

}  // namespace

int main(int argc, char** argv) {
  std::optional<uint64_t> parsed = argc == 2 ? ParseSize(argv[1]) : std::nullopt;
  if (!parsed || *parsed == 0) {
    std::fprintf(stderr, "usage: memcpy_ref BYTES   (suffixes K, M, G)\n");
    return 2;
  }
  const uint64_t bytes = *parsed;
  constexpr int kRuns = 3;

  void* src = MapAnonymous(bytes);
  void* dst = MapAnonymous(bytes);
  FillRandom(src, bytes);
  std::memset(dst, 1, bytes);

  int64_t touched_ns = INT64_MAX;
  for (int run = 0; run < kRuns; ++run) {
    int64_t start = NowNs();
    std::memcpy(dst, src, bytes);
    touched_ns = std::min(touched_ns, NowNs() - start);
    g_sink = static_cast<unsigned char*>(dst)[bytes - 1];
  }
  munmap(dst, bytes);

  int64_t fresh_ns = INT64_MAX;
  for (int run = 0; run < kRuns; ++run) {
    int64_t start = NowNs();
    void* fresh = MapAnonymous(bytes);
    std::memcpy(fresh, src, bytes);
    fresh_ns = std::min(fresh_ns, NowNs() - start);
    g_sink = static_cast<unsigned char*>(fresh)[bytes - 1];
    munmap(fresh, bytes);
  }

  int64_t populated_ns = INT64_MAX;
  for (int run = 0; run < kRuns; ++run) {
    int64_t start = NowNs();
    void* fresh = MapAnonymous(bytes);
    if (madvise(fresh, bytes, MADV_POPULATE_WRITE) != 0) {
      munmap(fresh, bytes);
      fresh = MapAnonymous(bytes, MAP_POPULATE);
    }
    std::memcpy(fresh, src, bytes);
    populated_ns = std::min(populated_ns, NowNs() - start);
    g_sink = static_cast<unsigned char*>(fresh)[bytes - 1];
    munmap(fresh, bytes);
  }
  // vmread: the child keeps a copy-on-write view of src; it writes every
  // page first so that its pages are its own (a dumped process's are).
  int ready[2];
  if (pipe(ready) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    auto* p = static_cast<volatile unsigned char*>(src);
    for (uint64_t i = 0; i < bytes; i += 4096) p[i] = p[i];
    (void)!write(ready[1], "x", 1);
    pause();
    _exit(0);
  }
  char c;
  (void)!read(ready[0], &c, 1);
  void* into = MapAnonymous(bytes);
  std::memset(into, 1, bytes);
  int64_t vmread_ns = INT64_MAX;
  constexpr uint64_t kChunk = 1ULL << 20;
  for (int run = 0; run < kRuns; ++run) {
    int64_t start = NowNs();
    for (uint64_t at = 0; at < bytes; at += kChunk) {
      const uint64_t n = std::min(kChunk, bytes - at);
      iovec local{static_cast<char*>(into) + at, n};
      iovec remote{static_cast<char*>(src) + at, n};
      if (process_vm_readv(child, &local, 1, &remote, 1, 0) != static_cast<ssize_t>(n)) {
        std::fprintf(stderr, "memcpy_ref: process_vm_readv: %s\n", std::strerror(errno));
        kill(child, SIGKILL);
        return 1;
      }
    }
    vmread_ns = std::min(vmread_ns, NowNs() - start);
  }
  kill(child, SIGKILL);
  waitpid(child, nullptr, 0);
  munmap(into, bytes);
  munmap(src, bytes);

  auto mib_s = [bytes](int64_t ns) {
    return ns > 0 ? static_cast<double>(bytes) / (1 << 20) / (ns / 1e9) : 0.0;
  };
  std::printf("bytes=%" PRIu64 " touched_ns=%" PRId64 " fresh_ns=%" PRId64
              " populated_ns=%" PRId64 " vmread_ns=%" PRId64
              " touched_mib_s=%.0f fresh_mib_s=%.0f populated_mib_s=%.0f vmread_mib_s=%.0f\n",
              bytes, touched_ns, fresh_ns, populated_ns, vmread_ns, mib_s(touched_ns),
              mib_s(fresh_ns), mib_s(populated_ns), mib_s(vmread_ns));
  return 0;
}
