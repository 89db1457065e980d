// UffdFill on a real process, as the restore uses it on a seed: a forked
// child holds 16 fresh anonymous pages (one of them written by itself) and
// a page file (a memfd it inherited); the test seizes it, copies runs of
// the file into its pages through a userfaultfd made in it, and lets it go.
// Copied pages hold the file's bytes, a page the child had stays its own
// (the copy stops there and says so), and after Close the child touches
// every page without waiting on anyone.
#include "ckpt/uffd_fill.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "ckpt/tracee.h"

namespace roam {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kPages = 16;

char FileByte(uint64_t page) { return static_cast<char>('A' + page); }

// Reads 8 bytes from `fd` within 5 s; false if none came.
bool ReadWithin(int fd, uint64_t* v) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 5000) == 1 && read(fd, v, 8) == 8;
}

TEST(UffdFill, CopiesRunsIntoAnotherProcessAndStopsAtAPagePresent) {
  // The page file: page i is full of 'A' + i.
  int file = memfd_create("pages", MFD_CLOEXEC);
  ASSERT_GE(file, 0);
  std::vector<char> bytes(kPages * kPage);
  for (uint64_t p = 0; p < kPages; ++p) memset(bytes.data() + p * kPage, FileByte(p), kPage);
  ASSERT_EQ(write(file, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  pid_t pid = fork();
  if (pid == 0) {
    close(to_child[1]);  // if the test dies, its read ends
    close(to_parent[0]);
    char* region =
        static_cast<char*>(mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (region == MAP_FAILED) _exit(2);
    madvise(region, kPages * kPage, MADV_NOHUGEPAGE);
    region[5 * kPage] = 'z';  // its own page
    uint64_t at = reinterpret_cast<uintptr_t>(region);
    if (write(to_parent[1], &at, 8) != 8) _exit(3);
    uint64_t go;
    if (read(to_child[0], &go, 8) != 8) _exit(4);
    uint64_t sum = 0;  // every page touched: none may wait for a filler
    for (uint64_t p = 0; p < kPages; ++p) sum += static_cast<unsigned char>(region[p * kPage]);
    if (write(to_parent[1], &sum, 8) != 8) _exit(5);
    _exit(0);
  }
  ASSERT_GT(pid, 0);
  close(to_child[0]);
  close(to_parent[1]);
  uint64_t base = 0;
  ASSERT_TRUE(ReadWithin(to_parent[0], &base));

  Tracee t(pid);
  ASSERT_TRUE(t.Seize().ok());
  ASSERT_TRUE(t.BlockSignals().ok());
  Result<uint64_t> ip = FindSyscallInstruction(pid);
  ASSERT_TRUE(ip.ok()) << ip.status().message();
  t.set_syscall_ip(*ip);
  Result<UffdFill> fill = UffdFill::Open(t, file);
  ASSERT_TRUE(fill.ok()) << fill.status().message();
  ASSERT_TRUE(fill->Register(base, base + kPages * kPage));
  EXPECT_EQ(fill->Copy(base, 4 * kPage, 0), 4 * kPage);  // pages 0-3
  // Pages 4-7: page 5 is there already; only page 4 goes in.
  EXPECT_EQ(fill->Copy(base + 4 * kPage, 4 * kPage, 4 * kPage), kPage);
  // Page 9 from the file's page 12; past the file's end, nothing.
  EXPECT_EQ(fill->Copy(base + 9 * kPage, kPage, 12 * kPage), kPage);
  EXPECT_EQ(fill->Copy(base + 10 * kPage, 2 * kPage, (kPages - 1) * kPage), 0u);
  EXPECT_TRUE(fill->Close().ok());
  ASSERT_TRUE(t.RestoreSigmask().ok());
  ASSERT_TRUE(t.Detach().ok());

  std::vector<char> got(kPages * kPage);
  iovec local{got.data(), got.size()}, remote{reinterpret_cast<void*>(base), got.size()};
  ASSERT_EQ(process_vm_readv(pid, &local, 1, &remote, 1, 0), static_cast<ssize_t>(got.size()));
  auto page_is = [&](uint64_t p, char c) {
    for (uint64_t i = 0; i < kPage; ++i) {
      if (got[p * kPage + i] != c) return false;
    }
    return true;
  };
  for (uint64_t p = 0; p < 5; ++p) EXPECT_TRUE(page_is(p, FileByte(p))) << "page " << p;
  EXPECT_EQ(got[5 * kPage], 'z');
  EXPECT_TRUE(page_is(9, FileByte(12)));
  for (uint64_t p : {6, 7, 8, 10, 11, 15}) EXPECT_TRUE(page_is(p, 0)) << "page " << p << " was never filled";

  uint64_t go = 1, sum = 0;
  ASSERT_EQ(write(to_child[1], &go, 8), 8);
  bool answered = ReadWithin(to_parent[0], &sum);
  if (!answered) kill(pid, SIGKILL);
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(answered) << "the child hung on a page after Close";
  uint64_t want = 'z' + static_cast<unsigned char>(FileByte(12));
  for (uint64_t p = 0; p < 5; ++p) want += static_cast<unsigned char>(FileByte(p));
  EXPECT_EQ(sum, want);
  for (int fd : {file, to_parent[0], to_child[1]}) close(fd);
}

}  // namespace
}  // namespace roam
