// ChildReaper on real children of the test process: a watched child is
// reaped once with its status, a held one is left alone until it is let
// go, and a child nobody watches is reaped and forgotten.
#include "node/child_reaper.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

namespace roam {
namespace {

pid_t Child(int exit_code) {
  pid_t pid = fork();
  if (pid == 0) _exit(exit_code);
  return pid;
}

// Waits until `pid` is a zombie (ended, not reaped), so Reap has something to see.
void AwaitZombie(pid_t pid) {
  for (int i = 0; i < 500; ++i) {
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

TEST(ChildReaper, WatchedChildIsReapedOnceWithItsStatus) {
  asio::io_context io;
  ChildReaper reaper(io);
  pid_t pid = Child(7);
  int calls = 0, status = -1;
  reaper.Watch(pid, [&](int st) {
    ++calls;
    status = st;
  });
  AwaitZombie(pid);
  reaper.Reap();
  reaper.Reap();
  EXPECT_EQ(calls, 1);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 7);
  EXPECT_FALSE(reaper.watching(pid));
}

TEST(ChildReaper, HeldChildWaitsUntilLetGo) {
  asio::io_context io;
  ChildReaper reaper(io);
  pid_t pid = Child(3);
  bool held = true;
  int calls = 0;
  reaper.Watch(pid, [&](int) { ++calls; }, [&] { return held; });
  AwaitZombie(pid);
  reaper.Reap();
  EXPECT_EQ(calls, 0);
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT), 0);
  EXPECT_EQ(info.si_pid, pid) << "a held child must not be reaped";
  held = false;
  reaper.Reap();
  EXPECT_EQ(calls, 1);
}

TEST(ChildReaper, UnwatchedChildIsReapedAndForgotten) {
  asio::io_context io;
  ChildReaper reaper(io);
  pid_t pid = Child(0);
  AwaitZombie(pid);
  reaper.Reap();
  EXPECT_EQ(waitpid(pid, nullptr, WNOHANG), -1) << "still there to be waited for";
  EXPECT_EQ(errno, ECHILD);
}

TEST(ChildReaper, ForgottenChildNoLongerCalls) {
  asio::io_context io;
  ChildReaper reaper(io);
  pid_t pid = Child(1);
  int calls = 0;
  reaper.Watch(pid, [&](int) { ++calls; });
  reaper.Forget(pid);
  AwaitZombie(pid);
  reaper.Reap();
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace roam
