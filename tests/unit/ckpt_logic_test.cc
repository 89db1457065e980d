// Pure logic of the checkpoint engine: how an interrupted system call is
// resumed, and where the restorer's helper area may go.
#include <sys/syscall.h>

#include <gtest/gtest.h>

#include "ckpt/memory.h"
#include "ckpt/tracee.h"

namespace roam {
namespace {

user_regs_struct InSyscall(long nr, long ret) {
  user_regs_struct r{};
  r.orig_rax = static_cast<uint64_t>(nr);
  r.rax = static_cast<uint64_t>(ret);
  r.rip = 0x401002;
  return r;
}

TEST(ResumeRegs, RestartableCallsRunAgain) {
  for (long code : {-512L, -513L, -514L}) {
    user_regs_struct r = Tracee::ResumeRegs(InSyscall(SYS_read, code), false);
    EXPECT_EQ(r.rax, static_cast<uint64_t>(SYS_read));
    EXPECT_EQ(r.rip, 0x401000u);
  }
}

TEST(ResumeRegs, RestartBlockUsesRestartSyscallOnlyInTheSameProcess) {
  user_regs_struct same = Tracee::ResumeRegs(InSyscall(SYS_nanosleep, -516), true);
  EXPECT_EQ(same.rax, static_cast<uint64_t>(SYS_restart_syscall));
  EXPECT_EQ(same.rip, 0x401000u);
  user_regs_struct moved = Tracee::ResumeRegs(InSyscall(SYS_nanosleep, -516), false);
  EXPECT_EQ(moved.rax, static_cast<uint64_t>(SYS_nanosleep));
  EXPECT_EQ(moved.rip, 0x401000u);
}

TEST(ResumeRegs, FinishedCallsAndUserCodeAreLeftAlone) {
  user_regs_struct done = Tracee::ResumeRegs(InSyscall(SYS_read, 42), false);
  EXPECT_EQ(done.rax, 42u);
  EXPECT_EQ(done.rip, 0x401002u);
  user_regs_struct eintr = Tracee::ResumeRegs(InSyscall(SYS_epoll_wait, -4), false);
  EXPECT_EQ(eintr.rax, static_cast<uint64_t>(-4));
  user_regs_struct user = InSyscall(-1, -512);
  EXPECT_EQ(Tracee::ResumeRegs(user, false).rip, 0x401002u);
}

pb::ProcessImage Layout(std::vector<std::pair<uint64_t, uint64_t>> ranges) {
  pb::ProcessImage p;
  for (auto [lo, hi] : ranges) {
    pb::Vma* v = p.add_vmas();
    v->set_start(lo);
    v->set_end(hi);
  }
  return p;
}

TEST(FindHole, PicksFreeRangeClearOfMappingsAndAvoidedRanges) {
  pb::ProcessImage p = Layout({{0x400000, 0x500000}, {0x7f0000000000, 0x7f0000100000}, {0x7ffff0000000, 0x7ffff0021000}});
  std::vector<std::pair<uint64_t, uint64_t>> avoid{{0x7effff000000, 0x7f0000000000}};
  uint64_t h = FindHole(p, kHelperSize, avoid);
  ASSERT_NE(h, 0u);
  EXPECT_EQ(h % 4096, 0u);
  for (const pb::Vma& v : p.vmas()) EXPECT_TRUE(h + kHelperSize <= v.start() || h >= v.end());
  for (auto [lo, hi] : avoid) EXPECT_TRUE(h + kHelperSize <= lo || h >= hi);
}

TEST(FindHole, KeepsAwayFromTheGrowthAreaOfAStack) {
  pb::ProcessImage p = Layout({{0x7ffff0000000, 0x7ffff0021000}});
  p.mutable_vmas(0)->set_growsdown(true);
  uint64_t h = FindHole(p, kHelperSize, {});
  ASSERT_NE(h, 0u);
  EXPECT_TRUE(h + kHelperSize + (1 << 20) <= 0x7ffff0000000 || h >= 0x7ffff0021000);
}

}  // namespace
}  // namespace roam
